//! poll-google and poll-company (docs/ARCHITECTURE.md#poll-google-and-poll-company): find cases updated since the last poll (minus
//! a window that absorbs search lag), create mappings for new ones, and enqueue one sync per
//! case that moved. An idle poll writes one document, whatever the number of open cases.

use super::{Engine, TaskError};
use crate::domain::markers;
use crate::domain::{CaseMapping, CompanyCaseKey, Direction, GoogleCaseKey, Side, SyncState};
use crate::error::PortResult;
use crate::ports::InsertOutcome;
use chrono::{DateTime, Utc};
use tracing::{debug, info, warn};

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PollReport {
    pub seen: usize,
    pub new_mappings: usize,
    pub enqueued: usize,
    pub unchanged: usize,
    pub ignored: usize,
    /// Cases whose last sync failed permanently and that have not changed since.
    pub parked: usize,
}

impl Engine {
    pub async fn poll_google(&self) -> Result<PollReport, TaskError> {
        let now = self.clock.now();
        let since = self.poll_since(Side::Google, now).await?;
        let cases = self
            .support
            .search_cases_updated_since(&self.settings.google_parent, since)
            .await?;
        let mut report = PollReport {
            seen: cases.len(),
            ..PollReport::default()
        };
        for case in &cases {
            let key = match GoogleCaseKey::from_case_name(&case.name) {
                Ok(k) => k,
                Err(e) => {
                    warn!(error = %e, "search returned a case with an unusable name: ignored");
                    report.ignored += 1;
                    continue;
                }
            };
            if let Some(m) = self.store.find_by_google(&key).await? {
                self.enqueue_if_moved(
                    &m,
                    Side::Google,
                    key.as_str(),
                    case.update_time,
                    now,
                    &mut report,
                )
                .await?;
                continue;
            }
            // A case casesync created for a CRM case is never new: its CRM side links it.
            // Only casesync's own cases count: a person can copy the line into any case.
            if let Some((kind, crm_id)) = markers::parse_description_line(&case.description)
                && kind == self.crm.kind()
                && self
                    .settings
                    .is_own_google_identity(case.creator.email.as_deref())
            {
                self.queue
                    .publish(Direction::CompanyToGoogle, &crm_id)
                    .await?;
                report.enqueued += 1;
                continue;
            }
            if !self.settings.include.admits(case) {
                debug!(case_key = %key, "outside sync.include: not synced");
                report.ignored += 1;
                continue;
            }
            if now - case.create_time > self.settings.pickup_max_age {
                info!(case_key = %key, "created more than the pickup age ago and not mapped: ignored");
                report.ignored += 1;
                continue;
            }
            let mapping = CaseMapping::from_google(&case.name, &key, case.priority, now);
            if self.store.insert_new(&mapping).await? == InsertOutcome::Created {
                report.new_mappings += 1;
                info!(case_key = %key, "new Google case: mapping created");
            }
            self.enqueue(&mapping.id, Side::Google, key.as_str(), now)
                .await?;
            report.enqueued += 1;
        }
        self.store.advance_poll(Side::Google, now).await?;
        Ok(report)
    }

    pub async fn poll_company(&self) -> Result<PollReport, TaskError> {
        let now = self.clock.now();
        let since = self.poll_since(Side::Company, now).await?;
        let cases = self.crm.search_updated_since(since).await?;
        let mut report = PollReport {
            seen: cases.len(),
            ..PollReport::default()
        };
        for case in &cases {
            let key = match CompanyCaseKey::new(&case.id) {
                Ok(k) => k,
                Err(e) => {
                    warn!(error = %e, "CRM search returned an unusable case id: ignored");
                    report.ignored += 1;
                    continue;
                }
            };
            if let Some(m) = self.store.find_by_company(&key).await? {
                self.enqueue_if_moved(
                    &m,
                    Side::Company,
                    key.as_str(),
                    case.updated_at,
                    now,
                    &mut report,
                )
                .await?;
                continue;
            }
            // A CRM case that names a mapped Google case is that case's counterpart,
            // created by casesync before the mapping recorded it: the Google side links it.
            let google_key = case
                .google_case_name
                .as_deref()
                .and_then(|n| GoogleCaseKey::from_case_name(n).ok());
            if let Some(gk) = &google_key
                && self.store.find_by_google(gk).await?.is_some()
            {
                self.queue
                    .publish(Direction::GoogleToCompany, gk.as_str())
                    .await?;
                report.enqueued += 1;
                continue;
            }
            if now - case.created_at > self.settings.pickup_max_age {
                info!(case_key = %key, "created more than the pickup age ago and not mapped: ignored");
                report.ignored += 1;
                continue;
            }
            let mut mapping = CaseMapping::from_company(
                &key,
                case.priority.unwrap_or(crate::domain::Priority::P2),
                now,
            );
            // A person may link an existing Google case by typing its name into the field.
            mapping.google_case_name = case
                .google_case_name
                .clone()
                .filter(|_| google_key.is_some());
            mapping.google_link_checked = mapping.google_case_name.is_none();
            if self.store.insert_new(&mapping).await? == InsertOutcome::Created {
                report.new_mappings += 1;
                info!(case_key = %key, "new CRM case flagged for sync: mapping created");
            }
            self.enqueue(&mapping.id, Side::Company, key.as_str(), now)
                .await?;
            report.enqueued += 1;
        }
        self.store.advance_poll(Side::Company, now).await?;
        Ok(report)
    }

    /// The start of the search window: the last poll minus the window, or the pickup age
    /// back on the very first poll (docs/ARCHITECTURE.md#poll-google-and-poll-company).
    async fn poll_since(&self, side: Side, now: DateTime<Utc>) -> PortResult<DateTime<Utc>> {
        let global = self.store.global().await?;
        Ok(match global.last_polled_at(side) {
            Some(last) => last - self.settings.polling_window(side),
            None => now - self.settings.pickup_max_age,
        })
    }

    /// Skips a case whose update time has not moved since its last successful sync
    /// (invariant 7), but only once that sync's read is known to have seen everything up to
    /// that update time: a change made within the source's timestamp granularity or listing
    /// lag of it may carry the same update time and still have been missed.
    async fn enqueue_if_moved(
        &self,
        m: &CaseMapping,
        side: Side,
        key: &str,
        update_time: DateTime<Utc>,
        now: DateTime<Utc>,
        report: &mut PollReport,
    ) -> PortResult<()> {
        // Only the CRM side can resume a paused mapping (its flag set again).
        if m.sync_state == SyncState::Paused && side == Side::Google {
            report.ignored += 1;
            return Ok(());
        }
        if m.is_parked(side, Some(update_time)) {
            debug!(
                case_key = key,
                "parked after a permanent failure and unchanged since: not re-run"
            );
            report.parked += 1;
            return Ok(());
        }
        // A suspect or unlinked mapping is synced when its remaining side moves: that sync
        // checks the counterpart again and relinks it if it answers.
        if m.sync_state != SyncState::Paused && self.is_settled(m, side, update_time) {
            report.unchanged += 1;
            return Ok(());
        }
        self.enqueue(&m.id, side, key, now).await?;
        report.enqueued += 1;
        Ok(())
    }

    /// Whether the last successful sync of `side` saw every change up to `update_time`.
    pub(crate) fn is_settled(
        &self,
        m: &CaseMapping,
        side: Side,
        update_time: DateTime<Utc>,
    ) -> bool {
        let (synced_update_time, read_began) = match side {
            Side::Google => (m.google_update_time_synced, m.google_updates_synced_at),
            Side::Company => (m.company_update_time_synced, m.company_updates_synced_at),
        };
        let Some(synced_update_time) = synced_update_time else {
            return false;
        };
        let (Some(read_began), true) = (read_began, update_time <= synced_update_time) else {
            return false;
        };
        read_began >= synced_update_time + self.settle_time(side)
    }

    /// How long after an update time a read must begin to be sure it saw that update.
    fn settle_time(&self, side: Side) -> chrono::Duration {
        let granularity = match side {
            Side::Google => self.support.update_time_granularity(),
            Side::Company => self.crm.update_time_granularity(),
        };
        granularity.max(self.settings.listing_lag)
    }

    async fn enqueue(
        &self,
        mapping_id: &str,
        side: Side,
        key: &str,
        now: DateTime<Utc>,
    ) -> PortResult<()> {
        self.store.mark_pending(mapping_id, side, now).await?;
        self.queue.publish(Direction::from_source(side), key).await
    }
}
