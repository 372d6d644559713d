//! detect-outages (§6, §11.10, §11.12): tells both sides once when a case lags beyond its
//! tolerance and once when it recovers, re-enqueues lagging syncs so convergence never
//! waits for a person, and fails while any outage lasts so monitoring sees it.

use super::tolerance::{Freshness, tolerance};
use super::{Engine, TaskError};
use crate::domain::markers;
use crate::domain::{CaseMapping, Direction, Side, SyncState};
use crate::error::PortResult;
use tracing::{error, info, warn};

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutageReport {
    pub scanned: usize,
    pub lagging: Vec<String>,
    pub outage_comments_posted: usize,
    pub resume_comments_posted: usize,
    pub requeued: usize,
    pub unlinked: Vec<String>,
    /// Comments that could not be posted (that side is down); retried next scan.
    pub comment_failures: usize,
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
        for m in &open {
            match &m.sync_state {
                SyncState::Unlinked { reason } => {
                    error!(mapping = %m.id, reason = %reason, "mapping is unlinked: its counterpart is gone");
                    report.unlinked.push(m.id.clone());
                    continue;
                }
                SyncState::Paused => continue,
                SyncState::Active => {}
            }
            if !m.is_linked() {
                continue;
            }
            let age = now - m.new_content_at.unwrap_or(m.created_at);
            let allowed = tolerance(m.priority, Freshness::of_age(age));
            let lag_of =
                |side: Side| now - m.effective_synced_at(side, global.last_good_poll_at(side));
            let lagging_sides: Vec<Side> = [Side::Google, Side::Company]
                .into_iter()
                .filter(|s| lag_of(*s) > allowed)
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
                if report.requeued >= self.settings.outage_requeue_batch {
                    break;
                }
                let key = match side {
                    Side::Google => m.google_key().map(|k| k.to_string()),
                    Side::Company => m.company_case_id.clone(),
                };
                if let Some(key) = key {
                    self.queue
                        .publish(Direction::from_source(*side), &key)
                        .await?;
                    report.requeued += 1;
                }
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
        if report.lagging.is_empty() {
            Ok(report)
        } else {
            Err(TaskError::OutageDetected {
                lagging: report.lagging.len(),
                report,
            })
        }
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
