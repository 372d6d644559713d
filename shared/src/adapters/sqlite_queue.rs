//! The embedded durable `SyncQueue`: the local runner's stand-in for the two Pub/Sub topics,
//! their push subscriptions and dead-letter topics, in the same SQLite file as the store.
//! Same semantics as production (docs/ARCHITECTURE.md#local-topology): at-least-once delivery, exponential backoff from
//! [`QueuePolicy`], dead letters kept with their reason after the last attempt or at once
//! for a permanent error, and replay.

use super::{from_millis, open_sqlite, to_millis};
use crate::clock::Clock;
use crate::domain::{Direction, SyncMessage};
use crate::error::{ErrorClass, PortError, PortResult};
use crate::ports::{DeadLetterMessage, DeadLetterQueue, SyncQueue};
use crate::retry_policy::QueuePolicy;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    case_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at INTEGER NOT NULL,
    leased_until INTEGER,
    last_error TEXT,
    enqueued_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_by_available_at ON queue(available_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    case_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error_class TEXT NOT NULL,
    reason TEXT NOT NULL,
    dead_at INTEGER NOT NULL
);
";

/// A message handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub topic: String,
    pub case_key: String,
    pub payload: String,
    /// 1 on the first delivery.
    pub attempt: u32,
}

impl Delivery {
    /// The direction and key this delivery asks to sync, or why it cannot be decoded.
    pub fn decode(&self) -> PortResult<(Direction, SyncMessage)> {
        let direction = Direction::from_topic(&self.topic)
            .ok_or_else(|| PortError::Invalid(format!("unknown topic `{}`", self.topic)))?;
        Ok((direction, SyncMessage::decode(self.payload.as_bytes())?))
    }
}

/// A message that will not be delivered again until replayed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub topic: String,
    pub case_key: String,
    pub payload: String,
    pub attempts: u32,
    pub error_class: String,
    pub reason: String,
    pub dead_at: DateTime<Utc>,
}

/// What became of a failed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NackOutcome {
    RetryAt(DateTime<Utc>),
    DeadLettered,
}

pub struct EmbeddedQueue {
    conn: Mutex<Connection>,
    policy: QueuePolicy,
    clock: Arc<dyn Clock>,
    ready: Notify,
}

fn db_err(operation: &str) -> impl Fn(rusqlite::Error) -> PortError + '_ {
    move |e| PortError::store(operation, e)
}

impl EmbeddedQueue {
    pub fn open(path: &Path, policy: QueuePolicy, clock: Arc<dyn Clock>) -> PortResult<Self> {
        let conn = open_sqlite(path).map_err(db_err("open the queue"))?;
        conn.execute_batch(SCHEMA)
            .map_err(db_err("create the queue tables"))?;
        Ok(EmbeddedQueue {
            conn: Mutex::new(conn),
            policy,
            clock,
            ready: Notify::new(),
        })
    }

    pub fn policy(&self) -> QueuePolicy {
        self.policy
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes a raw payload on a topic, as anyone with publish rights could: the worker
    /// must cope with whatever arrives.
    pub fn publish_raw(&self, topic: &str, case_key: &str, payload: &str) -> PortResult<()> {
        let now = to_millis(self.clock.now());
        self.lock()
            .execute(
                "INSERT INTO queue (topic, case_key, payload, available_at, enqueued_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![topic, case_key, payload, now],
            )
            .map_err(db_err("publish"))?;
        self.ready.notify_waiters();
        Ok(())
    }

    /// Takes the next message that is due, hiding it for the ack deadline.
    pub fn receive(&self) -> PortResult<Option<Delivery>> {
        let now = self.clock.now();
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db_err("receive"))?;
        let row = tx
            .query_row(
                "SELECT id, topic, case_key, payload, attempts FROM queue
                 WHERE available_at <= ?1 AND (leased_until IS NULL OR leased_until <= ?1)
                 ORDER BY available_at, id LIMIT 1",
                params![to_millis(now)],
                |r| {
                    Ok(Delivery {
                        id: r.get(0)?,
                        topic: r.get(1)?,
                        case_key: r.get(2)?,
                        payload: r.get(3)?,
                        attempt: r.get::<_, u32>(4)? + 1,
                    })
                },
            )
            .optional()
            .map_err(db_err("receive"))?;
        if let Some(d) = &row {
            let deadline =
                now + chrono::Duration::from_std(self.policy.ack_deadline).unwrap_or_default();
            tx.execute(
                "UPDATE queue SET attempts = ?2, leased_until = ?3 WHERE id = ?1",
                params![d.id, d.attempt, to_millis(deadline)],
            )
            .map_err(db_err("receive"))?;
        }
        tx.commit().map_err(db_err("receive"))?;
        Ok(row)
    }

    /// Waits until something may be due (a publish or the poll interval), for workers.
    pub async fn wait_for_work(&self, at_most: std::time::Duration) {
        let _ = tokio::time::timeout(at_most, self.ready.notified()).await;
    }

    pub fn ack(&self, id: i64) -> PortResult<()> {
        self.lock()
            .execute("DELETE FROM queue WHERE id = ?1", params![id])
            .map_err(db_err("ack"))?;
        Ok(())
    }

    /// A delivery failed: retry it after the backoff, or dead-letter it when the error is
    /// permanent or the attempts are used up.
    pub fn nack(
        &self,
        delivery: &Delivery,
        class: ErrorClass,
        reason: &str,
    ) -> PortResult<NackOutcome> {
        let now = self.clock.now();
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db_err("nack"))?;
        let outcome = if class == ErrorClass::Permanent
            || delivery.attempt >= self.policy.max_delivery_attempts
        {
            tx.execute(
                "INSERT INTO dead_letters (topic, case_key, payload, attempts, error_class, reason, dead_at)
                 SELECT topic, case_key, payload, attempts, ?2, ?3, ?4 FROM queue WHERE id = ?1",
                params![delivery.id, class.as_str(), reason, to_millis(now)],
            )
            .map_err(db_err("dead-letter"))?;
            tx.execute("DELETE FROM queue WHERE id = ?1", params![delivery.id])
                .map_err(db_err("dead-letter"))?;
            NackOutcome::DeadLettered
        } else {
            let delay = chrono::Duration::from_std(self.policy.backoff_after(delivery.attempt))
                .unwrap_or_default();
            let at = now + delay;
            tx.execute(
                "UPDATE queue SET available_at = ?2, leased_until = NULL, last_error = ?3 WHERE id = ?1",
                params![delivery.id, to_millis(at), reason],
            )
            .map_err(db_err("nack"))?;
            NackOutcome::RetryAt(at)
        };
        tx.commit().map_err(db_err("nack"))?;
        Ok(outcome)
    }

    pub fn dead_letters(&self) -> PortResult<Vec<DeadLetter>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT id, topic, case_key, payload, attempts, error_class, reason, dead_at FROM dead_letters ORDER BY id")
            .map_err(db_err("list dead letters"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(DeadLetter {
                    id: r.get(0)?,
                    topic: r.get(1)?,
                    case_key: r.get(2)?,
                    payload: r.get(3)?,
                    attempts: r.get(4)?,
                    error_class: r.get(5)?,
                    reason: r.get(6)?,
                    dead_at: from_millis(r.get(7)?),
                })
            })
            .map_err(db_err("list dead letters"))?;
        rows.collect::<Result<_, _>>()
            .map_err(db_err("list dead letters"))
    }

    /// Moves dead letters back onto their topic with fresh attempts: all of them, or those
    /// of one case. Returns how many.
    pub fn replay(&self, case_key: Option<&str>) -> PortResult<usize> {
        let now = to_millis(self.clock.now());
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db_err("replay"))?;
        let filter = "(?1 IS NULL OR case_key = ?1)";
        let moved = tx
            .execute(
                &format!(
                    "INSERT INTO queue (topic, case_key, payload, available_at, enqueued_at)
                     SELECT topic, case_key, payload, ?2, ?2 FROM dead_letters WHERE {filter} ORDER BY id"
                ),
                params![case_key, now],
            )
            .map_err(db_err("replay"))?;
        tx.execute(
            &format!("DELETE FROM dead_letters WHERE {filter}"),
            params![case_key],
        )
        .map_err(db_err("replay"))?;
        tx.commit().map_err(db_err("replay"))?;
        drop(conn);
        self.ready.notify_waiters();
        Ok(moved)
    }

    /// Messages waiting or in flight.
    pub fn depth(&self) -> PortResult<usize> {
        self.lock()
            .query_row("SELECT COUNT(*) FROM queue", [], |r| r.get::<_, i64>(0))
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(db_err("count the queue"))
    }
}

#[async_trait]
impl SyncQueue for EmbeddedQueue {
    async fn publish(&self, direction: Direction, key: &str) -> PortResult<()> {
        self.publish_raw(direction.topic(), key, &SyncMessage::new(key).to_json())
    }
}

/// The embedded queue's dead letters as cleanup reads them: each run walks them once, in
/// order, and acknowledging one deletes it.
pub struct EmbeddedDeadLetters<'a> {
    queue: &'a EmbeddedQueue,
    after_id: Mutex<i64>,
}

impl<'a> EmbeddedDeadLetters<'a> {
    pub fn new(queue: &'a EmbeddedQueue) -> Self {
        EmbeddedDeadLetters {
            queue,
            after_id: Mutex::new(0),
        }
    }
}

#[async_trait]
impl DeadLetterQueue for EmbeddedDeadLetters<'_> {
    async fn read_dead_letters(&self, max: usize) -> PortResult<Vec<DeadLetterMessage>> {
        let mut after = self.after_id.lock().unwrap_or_else(|e| e.into_inner());
        let letters: Vec<DeadLetter> = self
            .queue
            .dead_letters()?
            .into_iter()
            .filter(|d| d.id > *after)
            .take(max)
            .collect();
        if let Some(last) = letters.last() {
            *after = last.id;
        }
        Ok(letters
            .into_iter()
            .map(|d| DeadLetterMessage {
                handle: d.id.to_string(),
                direction: Direction::from_topic(&d.topic),
                case_key: d.case_key,
                dead_lettered_at: d.dead_at,
            })
            .collect())
    }

    async fn ack_dead_letters(&self, handles: &[String]) -> PortResult<()> {
        let conn = self.queue.lock();
        for h in handles {
            let id: i64 = h
                .parse()
                .map_err(|_| PortError::Invalid(format!("not a dead-letter id: {h}")))?;
            conn.execute("DELETE FROM dead_letters WHERE id = ?1", params![id])
                .map_err(db_err("acknowledge a dead letter"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::retry_policy::FAST_QUEUE;
    use chrono::TimeZone;

    fn setup() -> (tempfile::TempDir, ManualClock, EmbeddedQueue) {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap());
        let q = EmbeddedQueue::open(
            &dir.path().join("q.sqlite"),
            FAST_QUEUE,
            Arc::new(clock.clone()),
        )
        .unwrap();
        (dir, clock, q)
    }

    #[tokio::test]
    async fn a_failing_message_is_retried_with_growing_delays_then_dead_lettered_with_its_reason() {
        let (_dir, clock, q) = setup();
        let policy = QueuePolicy {
            max_backoff: std::time::Duration::from_secs(60),
            ..FAST_QUEUE
        };
        let q = EmbeddedQueue { policy, ..q };
        q.publish(Direction::GoogleToCompany, "42").await.unwrap();
        let mut delays = Vec::new();
        for attempt in 1..=policy.max_delivery_attempts {
            let d = q.receive().unwrap().expect("due");
            assert_eq!(d.attempt, attempt);
            assert!(q.receive().unwrap().is_none(), "in flight: hidden");
            match q
                .nack(&d, ErrorClass::Retryable, &format!("CRM down ({attempt})"))
                .unwrap()
            {
                NackOutcome::RetryAt(at) => {
                    delays.push((at - clock.now()).num_seconds());
                    assert!(q.receive().unwrap().is_none(), "not due before its backoff");
                    clock.set(at);
                }
                NackOutcome::DeadLettered => assert_eq!(attempt, policy.max_delivery_attempts),
            }
        }
        assert_eq!(delays, vec![1, 2, 4, 8]);
        assert!(q.receive().unwrap().is_none());
        let dead = q.dead_letters().unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].case_key, "42");
        assert_eq!(dead[0].reason, "CRM down (5)");
        assert_eq!(dead[0].error_class, "retryable");
        assert_eq!(dead[0].attempts, 5);
    }

    #[tokio::test]
    async fn a_permanent_failure_is_dead_lettered_at_once_and_replay_brings_it_back() {
        let (_dir, _clock, q) = setup();
        q.publish_raw("casesync-company-case-updates", "7", "garbage")
            .unwrap();
        let d = q.receive().unwrap().unwrap();
        assert!(d.decode().is_err());
        assert_eq!(
            q.nack(&d, ErrorClass::Permanent, "bad body").unwrap(),
            NackOutcome::DeadLettered
        );
        assert_eq!(q.depth().unwrap(), 0);
        assert_eq!(q.replay(Some("other")).unwrap(), 0);
        assert_eq!(q.replay(Some("7")).unwrap(), 1);
        assert!(q.dead_letters().unwrap().is_empty());
        let again = q.receive().unwrap().unwrap();
        assert_eq!((again.attempt, again.payload.as_str()), (1, "garbage"));
    }

    #[tokio::test]
    async fn cleanup_reads_each_dead_letter_once_per_run_and_acking_deletes_it() {
        let (_dir, _clock, q) = setup();
        for key in ["1", "2", "3"] {
            q.publish(Direction::CompanyToGoogle, key).await.unwrap();
            let d = q.receive().unwrap().unwrap();
            q.nack(&d, ErrorClass::Permanent, "refused").unwrap();
        }
        let reader = EmbeddedDeadLetters::new(&q);
        let first = reader.read_dead_letters(2).await.unwrap();
        assert_eq!(
            first
                .iter()
                .map(|l| l.case_key.as_str())
                .collect::<Vec<_>>(),
            vec!["1", "2"]
        );
        assert_eq!(first[0].direction, Some(Direction::CompanyToGoogle));
        let second = reader.read_dead_letters(2).await.unwrap();
        assert_eq!(second.len(), 1);
        assert!(reader.read_dead_letters(2).await.unwrap().is_empty());
        reader
            .ack_dead_letters(&[first[1].handle.clone()])
            .await
            .unwrap();
        let left: Vec<String> = q
            .dead_letters()
            .unwrap()
            .into_iter()
            .map(|d| d.case_key)
            .collect();
        assert_eq!(left, vec!["1", "3"]);
    }

    #[tokio::test]
    async fn an_unacked_delivery_comes_back_after_the_ack_deadline() {
        let (_dir, clock, q) = setup();
        q.publish(Direction::CompanyToGoogle, "9").await.unwrap();
        let first = q.receive().unwrap().unwrap();
        clock.advance(chrono::Duration::from_std(FAST_QUEUE.ack_deadline).unwrap());
        let second = q.receive().unwrap().unwrap();
        assert_eq!((first.id, second.attempt), (second.id, 2));
    }

    #[tokio::test]
    async fn reopening_the_file_loses_nothing() {
        let (dir, clock, q) = setup();
        q.publish(Direction::GoogleToCompany, "1").await.unwrap();
        q.publish(Direction::CompanyToGoogle, "2").await.unwrap();
        let d = q.receive().unwrap().unwrap();
        q.nack(&d, ErrorClass::Permanent, "why").unwrap();
        let in_flight = q.receive().unwrap().unwrap();
        drop(q);
        let q = EmbeddedQueue::open(
            &dir.path().join("q.sqlite"),
            FAST_QUEUE,
            Arc::new(clock.clone()),
        )
        .unwrap();
        assert_eq!(q.dead_letters().unwrap().len(), 1);
        clock.advance(chrono::Duration::from_std(FAST_QUEUE.ack_deadline).unwrap());
        let back = q
            .receive()
            .unwrap()
            .expect("the in-flight message survived");
        assert_eq!(back.case_key, in_flight.case_key);
    }
}
