//! Turns one queued delivery into a sync and its outcome into ack, retry or dead letter —
//! the local runner's equivalent of a push subscription calling a sync function and of the
//! HTTP status mapping in docs/FAILURES.md#what-the-shim-answers.

use crate::adapters::sqlite_queue::{Delivery, EmbeddedQueue, NackOutcome};
use crate::error::{ErrorClass, PortResult};
use crate::tasks::{Engine, SyncReport};
use tracing::{error, info, warn};

/// What became of one delivery.
#[derive(Debug)]
pub enum DeliveryOutcome {
    Synced(Box<SyncReport>),
    Retrying { class: ErrorClass, reason: String },
    DeadLettered { class: ErrorClass, reason: String },
}

/// Runs the sync a delivery asks for and settles the delivery. Only a queue failure is an
/// error here; a sync failure is an outcome.
pub async fn process_delivery(
    engine: &Engine,
    queue: &EmbeddedQueue,
    delivery: &Delivery,
) -> PortResult<DeliveryOutcome> {
    let (direction, message) = match delivery.decode() {
        Ok(decoded) => decoded,
        Err(e) => {
            let reason = e.to_string();
            error!(message_id = delivery.id, topic = %delivery.topic, error = %reason, "undecodable sync message: dead-lettered");
            queue.nack(delivery, ErrorClass::Permanent, &reason)?;
            return Ok(DeliveryOutcome::DeadLettered {
                class: ErrorClass::Permanent,
                reason,
            });
        }
    };
    match engine.sync(direction, &message.key).await {
        Ok(report) => {
            queue.ack(delivery.id)?;
            if report.skipped.is_none() {
                info!(case_key = %message.key, direction = direction.as_str(), comments = report.comments_mirrored, attachments = report.attachments_mirrored, created = ?report.created_counterpart, closed = report.closed_counterpart, priority = report.priority_changed, "synced");
            }
            Ok(DeliveryOutcome::Synced(Box::new(report)))
        }
        Err(e) => {
            let class = e.class();
            let reason = e.to_string();
            match queue.nack(delivery, class, &reason)? {
                NackOutcome::RetryAt(at) => {
                    warn!(case_key = %message.key, direction = direction.as_str(), attempt = delivery.attempt, class = class.as_str(), error = %reason, retry_at = %at, "sync failed: will retry");
                    Ok(DeliveryOutcome::Retrying { class, reason })
                }
                NackOutcome::DeadLettered => {
                    error!(case_key = %message.key, direction = direction.as_str(), attempt = delivery.attempt, class = class.as_str(), error = %reason, "sync failed: dead-lettered");
                    Ok(DeliveryOutcome::DeadLettered { class, reason })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sqlite_store::SqliteStore;
    use crate::clock::ManualClock;
    use crate::domain::{Direction, Priority};
    use crate::ports::SyncQueue;
    use crate::retry_policy::FAST_QUEUE;
    use crate::tasks::SyncSettings;
    use crate::testing::{Fault, MemoryCrm, MemorySupportApi};
    use chrono::TimeZone;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_dead_lettered_sync_is_replayed_after_the_fix_and_then_synced_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("casesync.sqlite");
        let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap());
        let own = "casesync@demo.iam.gserviceaccount.com";
        let google = Arc::new(MemorySupportApi::new(Arc::new(clock.clone()), own));
        let crm = Arc::new(MemoryCrm::new(Arc::new(clock.clone())));
        let queue =
            Arc::new(EmbeddedQueue::open(&path, FAST_QUEUE, Arc::new(clock.clone())).unwrap());
        let engine = Engine {
            support: google.clone(),
            crm: crm.clone(),
            store: Arc::new(SqliteStore::open(&path).unwrap()),
            queue: queue.clone(),
            clock: Arc::new(clock.clone()),
            settings: Arc::new(SyncSettings::with_defaults("projects/demo", own)),
        };
        let case = google.open_case_as_customer("projects/demo", "t", "d", Priority::P2, None);
        // The CRM rejects the create with a 400 (say, a misconfigured required field).
        crm.faults.plan(
            "create_case",
            1,
            Fault::Fail(crate::PortError::from_http(
                "create",
                400,
                "field X is required",
                None,
            )),
        );
        engine.poll_google().await.unwrap();
        let d = queue.receive().unwrap().unwrap();
        match process_delivery(&engine, &queue, &d).await.unwrap() {
            DeliveryOutcome::DeadLettered { class, reason } => {
                assert_eq!(class, ErrorClass::Permanent);
                assert!(reason.contains("field X is required"), "{reason}");
            }
            other => panic!("expected a dead letter, got {other:?}"),
        }
        assert_eq!(
            queue.dead_letters().unwrap()[0].reason,
            "create failed (permanent, HTTP 400): field X is required"
        );
        // Fixed; replayed; synced once, however often it is delivered.
        assert_eq!(queue.replay(None).unwrap(), 1);
        queue
            .publish(
                Direction::GoogleToCompany,
                case.name.rsplit('/').next().unwrap(),
            )
            .await
            .unwrap();
        while let Some(d) = queue.receive().unwrap() {
            assert!(matches!(
                process_delivery(&engine, &queue, &d).await.unwrap(),
                DeliveryOutcome::Synced(_)
            ));
        }
        assert_eq!(crm.cases().len(), 1);
        assert_eq!(queue.depth().unwrap(), 0);
    }

    #[tokio::test]
    async fn an_undecodable_message_is_dead_lettered_with_a_reason_that_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("casesync.sqlite");
        let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap());
        let queue =
            Arc::new(EmbeddedQueue::open(&path, FAST_QUEUE, Arc::new(clock.clone())).unwrap());
        let engine = Engine {
            support: Arc::new(MemorySupportApi::new(Arc::new(clock.clone()), "x@y")),
            crm: Arc::new(MemoryCrm::new(Arc::new(clock.clone()))),
            store: Arc::new(SqliteStore::open(&path).unwrap()),
            queue: queue.clone(),
            clock: Arc::new(clock.clone()),
            settings: Arc::new(SyncSettings::with_defaults("projects/demo", "x@y")),
        };
        queue
            .publish_raw("casesync-google-case-updates", "?", r#"{"v":2,"key":"1"}"#)
            .unwrap();
        let d = queue.receive().unwrap().unwrap();
        assert!(matches!(
            process_delivery(&engine, &queue, &d).await.unwrap(),
            DeliveryOutcome::DeadLettered { .. }
        ));
        assert!(
            queue.dead_letters().unwrap()[0]
                .reason
                .contains("version 2")
        );
    }
}
