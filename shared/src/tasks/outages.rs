//! detect-outages (docs/ARCHITECTURE.md#detect-outages, docs/INVARIANTS.md#the-requeue-rule): tells both sides once
//! when a case lags beyond its tolerance and once when it recovers, re-enqueues lagging
//! syncs so convergence never waits for a person, and fails while any outage lasts so
//! monitoring sees it.
//!
//! Re-enqueueing is bounded and fair: a side is re-enqueued only when its last enqueue (its
//! pending mark, set by a poll or by this scan) is older than its requeue interval — the
//! tolerance at first, then half the side's lag, so the interval doubles with each
//! re-enqueue that did not lead to a successful sync, capped at six hours. Lagging sides are
//! served oldest last enqueue first. A scan that Cloud Scheduler retries finds its own
//! marks fresh and publishes nothing again. Mappings still without a counterpart are
//! scanned too, so a creation that ran out of delivery attempts is retried until it links;
//! suspect mappings are re-checked hourly; unlinked and never-linked mappings without a
//! successful sync for `sync.abandon_after` are resolved, so cleanup removes them.

use super::tolerance::{Freshness, tolerance};
use super::{Engine, TaskError};
use crate::domain::markers;
use crate::domain::{CaseMapping, Direction, Side, SyncState};
use crate::error::PortResult;
use crate::ports::LeaseOutcome;
use chrono::{DateTime, Duration, Utc};
use tracing::{error, info, warn};

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutageReport {
    pub scanned: usize,
    pub lagging: Vec<String>,
    pub outage_comments_posted: usize,
    pub resume_comments_posted: usize,
    pub requeued: usize,
    pub unlinked: Vec<String>,
    /// Mappings whose counterpart answered 404 recently; re-checked hourly.
    pub suspect: Vec<String>,
    /// Mappings whose last sync failed permanently: they wait for a change or a replay.
    pub parked: Vec<String>,
    /// Unlinked or never-linked mappings given up after `sync.abandon_after`.
    pub abandoned: Vec<String>,
    /// Comments that could not be posted (that side is down); retried next scan.
    pub comment_failures: usize,
}

/// The longest wait between two re-enqueues of one lagging side.
const MAX_REQUEUE_INTERVAL_HOURS: i64 = 6;
/// How often a suspect mapping's counterpart is checked again.
const SUSPECT_RECHECK_MINUTES: i64 = 60;

/// One side that is due to be re-enqueued.
struct Requeue {
    mapping_id: String,
    side: Side,
    key: String,
    /// The latest enqueue of either side of the mapping: a mapping just served waits.
    mapping_last_enqueue: Option<DateTime<Utc>>,
    last_enqueue: Option<DateTime<Utc>>,
}

fn latest_enqueue(m: &CaseMapping) -> Option<DateTime<Utc>> {
    m.pending_since(Side::Google)
        .max(m.pending_since(Side::Company))
}

impl Engine {
    pub async fn detect_outages(&self) -> Result<OutageReport, TaskError> {
        let now = self.clock.now();
        let global = self.store.global().await?;
        let open = self.store.list_open().await?;
        let mut report = OutageReport {
            scanned: open.len(),
            ..OutageReport::default()
        };
        let mut due: Vec<Requeue> = Vec::new();
        for m in &open {
            if self.abandon_if_stale(m, now, &mut report).await? {
                continue;
            }
            match &m.sync_state {
                SyncState::Unlinked { .. } => {
                    report.unlinked.push(m.id.clone());
                    continue;
                }
                SyncState::Paused => continue,
                SyncState::Suspect { .. } => {
                    report.suspect.push(m.id.clone());
                    let side = m.origin;
                    if let Some(key) = side_key(m, side)
                        && is_due(
                            m.pending_since(side),
                            now,
                            Duration::minutes(SUSPECT_RECHECK_MINUTES),
                        )
                    {
                        due.push(Requeue {
                            mapping_id: m.id.clone(),
                            side,
                            key,
                            mapping_last_enqueue: latest_enqueue(m),
                            last_enqueue: m.pending_since(side),
                        });
                    }
                    continue;
                }
                SyncState::Active => {}
            }
            if m.parked.is_some() {
                report.parked.push(m.id.clone());
            }
            let age = now - m.new_content_at.unwrap_or(m.created_at);
            let allowed = tolerance(m.priority, Freshness::of_age(age));
            let lag_of =
                |side: Side| now - m.effective_synced_at(side, global.last_good_poll_at(side));
            if !m.is_linked() {
                // Still without its counterpart: only the origin side can sync, and there is
                // no other side to post on. Re-enqueue it until it links.
                let side = m.origin;
                if lag_of(side) > allowed && !m.is_parked(side, None) {
                    report.lagging.push(m.id.clone());
                    warn!(mapping = %m.id, lag_minutes = lag_of(side).num_minutes(), "case has no counterpart yet beyond its tolerance: re-enqueued");
                    self.collect_due(m, side, lag_of(side), allowed, now, &mut due);
                }
                continue;
            }
            let lagging_sides: Vec<Side> = [Side::Google, Side::Company]
                .into_iter()
                .filter(|s| lag_of(*s) > allowed && !m.is_parked(*s, None))
                .collect();
            if lagging_sides.is_empty() {
                for side in [Side::Google, Side::Company] {
                    if m.outage_flag(side) {
                        match self.post_on(m, side, markers::RESUMED_COMMENT).await {
                            Ok(()) => {
                                self.store.set_outage_flag(&m.id, side, false).await?;
                                report.resume_comments_posted += 1;
                                info!(mapping = %m.id, side = side.as_str(), "syncing resumed: said so");
                            }
                            Err(e) => {
                                warn!(mapping = %m.id, side = side.as_str(), error = %e, "could not post the resume comment");
                                report.comment_failures += 1;
                            }
                        }
                    }
                }
                continue;
            }
            let lag = lag_of(Side::Google).max(lag_of(Side::Company));
            report.lagging.push(m.id.clone());
            error!(mapping = %m.id, lag_minutes = lag.num_minutes(), tolerance_minutes = allowed.num_minutes(), "case sync lags beyond its tolerance");
            for side in &lagging_sides {
                self.collect_due(m, *side, lag_of(*side), allowed, now, &mut due);
            }
            for side in [Side::Google, Side::Company] {
                if m.outage_flag(side) {
                    continue;
                }
                match self.post_on(m, side, &markers::outage_comment(lag)).await {
                    Ok(()) => {
                        self.store.set_outage_flag(&m.id, side, true).await?;
                        report.outage_comments_posted += 1;
                    }
                    Err(e) => {
                        warn!(mapping = %m.id, side = side.as_str(), error = %e, "could not post the outage comment");
                        report.comment_failures += 1;
                    }
                }
            }
        }
        // Fair: the mapping waiting longest since its last enqueue goes first.
        due.sort_by_key(|r| (r.mapping_last_enqueue, r.last_enqueue));
        for r in due.into_iter().take(self.settings.outage_requeue_batch) {
            self.store.mark_pending(&r.mapping_id, r.side, now).await?;
            self.queue
                .publish(Direction::from_source(r.side), &r.key)
                .await?;
            report.requeued += 1;
        }
        if report.lagging.is_empty() {
            Ok(report)
        } else {
            Err(TaskError::OutageDetected {
                lagging: report.lagging.len(),
                report,
            })
        }
    }

    /// Adds `side` of `m` to the re-enqueue list when its requeue interval has passed.
    fn collect_due(
        &self,
        m: &CaseMapping,
        side: Side,
        lag: Duration,
        allowed: Duration,
        now: DateTime<Utc>,
        due: &mut Vec<Requeue>,
    ) {
        // Half the lag: each re-enqueue that did not lead to a success doubles the wait.
        let interval = (lag / 2)
            .max(allowed)
            .min(Duration::hours(MAX_REQUEUE_INTERVAL_HOURS));
        let last = m.pending_since(side);
        if let Some(key) = side_key(m, side)
            && is_due(last, now, interval)
        {
            due.push(Requeue {
                mapping_id: m.id.clone(),
                side,
                key,
                mapping_last_enqueue: latest_enqueue(m),
                last_enqueue: last,
            });
        }
    }

    /// Resolves an unlinked or never-linked mapping that has not synced for
    /// `sync.abandon_after`, so cleanup removes it. Paused mappings are kept: their ledger
    /// matters when the flag comes back.
    async fn abandon_if_stale(
        &self,
        m: &CaseMapping,
        now: DateTime<Utc>,
        report: &mut OutageReport,
    ) -> PortResult<bool> {
        let unlinked = matches!(m.sync_state, SyncState::Unlinked { .. });
        let never_linked = !m.is_linked() && m.sync_state == SyncState::Active;
        if !(unlinked || never_linked) {
            return Ok(false);
        }
        let last_success = [
            m.google_updates_synced_at,
            m.company_updates_synced_at,
            Some(m.created_at),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(m.created_at);
        if now - last_success < self.settings.abandon_after {
            return Ok(false);
        }
        let holder = format!("detect-outages-{}", uuid::Uuid::new_v4());
        let until = now + Duration::minutes(1);
        let LeaseOutcome::Acquired(current) =
            (match self.store.acquire_lease(&m.id, &holder, until, now).await {
                Ok(o) => o,
                // A sync holds it: it is not abandoned after all.
                Err(e) if e.is_lease_conflict() => return Ok(false),
                Err(e) => return Err(e),
            })
        else {
            return Ok(true);
        };
        let mut current = *current;
        current.resolved_at = Some(now);
        let saved = self.store.save_synced(&current, &holder).await;
        self.store.release_lease(&m.id, &holder).await?;
        saved?;
        info!(mapping = %m.id, state = if unlinked { "unlinked" } else { "never linked" }, "no successful sync for sync.abandon_after: resolved, cleanup removes it");
        report.abandoned.push(m.id.clone());
        Ok(true)
    }

    async fn post_on(&self, m: &CaseMapping, side: Side, body: &str) -> PortResult<()> {
        match side {
            Side::Google => {
                let name = m.google_case_name.as_deref().unwrap_or_default();
                self.support.create_comment(name, body).await.map(|_| ())
            }
            Side::Company => {
                let id = m.company_case_id.as_deref().unwrap_or_default();
                self.crm.add_comment(id, body).await.map(|_| ())
            }
        }
    }
}

/// The key a sync message of `side` carries for `m`.
fn side_key(m: &CaseMapping, side: Side) -> Option<String> {
    match side {
        Side::Google => m.google_key().map(|k| k.to_string()),
        Side::Company => m.company_case_id.clone(),
    }
}

fn is_due(last_enqueue: Option<DateTime<Utc>>, now: DateTime<Utc>, interval: Duration) -> bool {
    last_enqueue.is_none_or(|t| now - t >= interval)
}
