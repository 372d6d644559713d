//! sync-google-to-company and sync-company-to-google (docs/ARCHITECTURE.md#sync-google-to-company-and-sync-company-to-google): one body for both
//! directions. A sync takes the mapping's lease, makes sure the counterpart exists exactly
//! once, mirrors comments and attachments that have no mirror yet, reconciles priority, and
//! closes last.
//!
//! Each comment, attachment, the priority and the close succeed or fail on their own: an
//! item the target refuses for good is recorded with a marked notice and the rest of the
//! case goes on; a transient failure of one item is retried by the message, after the other
//! items were done. A sync renews its lease before a write once half of it has passed, and
//! stops before its next write once another delivery holds it.

use super::sides::{AttachmentView, CaseSide, CompanySide, GoogleSide};
use super::{Engine, TaskError};
use crate::domain::markers::{self, MarkedKind};
use crate::domain::{
    AttachmentUpload, CaseMapping, CompanyCaseKey, CrmCase, Direction, GoogleCase, GoogleCaseKey,
    LedgerEntry, LedgerOutcome, NewCrmCase, NewGoogleCase, Parked, RefusedItem, Side, SyncState,
};
use crate::error::{ErrorClass, PortError, PortResult};
use crate::ports::LeaseOutcome;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::sync::Mutex;
use tracing::{info, warn};

/// The lease a sync holds, with the expiry it last wrote.
pub(crate) struct LeaseGuard {
    mapping_id: String,
    holder: String,
    until: Mutex<DateTime<Utc>>,
}

impl LeaseGuard {
    fn holder(&self) -> &str {
        &self.holder
    }

    fn until(&self) -> DateTime<Utc> {
        *self.until.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The failures of single items in one sync: the first transient one is answered at the
/// end (so the message is retried), after every other item had its turn.
#[derive(Default)]
struct ItemFailures {
    first: Option<PortError>,
    /// A comment or attachment is still to be mirrored: the close waits (close last).
    mirror_pending: bool,
}

impl ItemFailures {
    /// Keeps a transient failure of one item, or returns the error when it must stop the
    /// whole sync: the lease is gone, or the configuration is wrong for every item alike.
    fn defer(&mut self, e: PortError) -> PortResult<()> {
        if e.is_lease_conflict() || matches!(e, PortError::Config(_)) {
            return Err(e);
        }
        if self.first.is_none() {
            // A 404 on a write means the case went away mid-sync; the next sync's read
            // finds that out, so the message is retried instead of dead-lettered.
            self.first = Some(if e.is_not_found() {
                PortError::retryable("sync an item", e.to_string())
            } else {
                e
            });
        }
        Ok(())
    }
}

/// Whether a failed write refuses this one item for good (not the whole side).
fn refuses_item(e: &PortError, attachment: bool) -> bool {
    if e.is_not_found() || matches!(e, PortError::Config(_)) {
        return false;
    }
    // A CRM that forbids a file's type or size answers 403, 413 or 415 to that file only.
    e.class() == ErrorClass::Permanent
        || (attachment && matches!(e.status(), Some(403 | 413 | 415)))
}

/// An error message as a comment, a log line and the mapping may carry it.
fn short_reason(e: &PortError) -> String {
    crate::echo::capped(&e.to_string()).into_owned()
}

/// What one sync did, for the running log and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    pub mapping_id: Option<String>,
    /// Why nothing was done, when nothing was.
    pub skipped: Option<String>,
    pub created_counterpart: Option<String>,
    pub linked_existing: Option<String>,
    pub comments_mirrored: usize,
    pub attachments_mirrored: usize,
    pub attachments_skipped: usize,
    pub priority_changed: bool,
    pub closed_counterpart: bool,
    pub paused: bool,
    /// A counterpart answered 404 and the mapping is suspect (not yet unlinked).
    pub suspect: Option<String>,
    pub unlinked: Option<String>,
}

impl SyncReport {
    fn skipped(reason: impl Into<String>) -> Self {
        SyncReport {
            skipped: Some(reason.into()),
            ..SyncReport::default()
        }
    }

    /// Anything new from a person was seen and carried over.
    fn saw_new_content(&self) -> bool {
        self.comments_mirrored > 0
            || self.attachments_mirrored > 0
            || self.attachments_skipped > 0
            || self.priority_changed
            || self.closed_counterpart
    }
}

impl Engine {
    pub async fn sync_google_to_company(&self, key: &str) -> Result<SyncReport, TaskError> {
        self.sync(Direction::GoogleToCompany, key).await
    }

    pub async fn sync_company_to_google(&self, key: &str) -> Result<SyncReport, TaskError> {
        self.sync(Direction::CompanyToGoogle, key).await
    }

    /// Runs the sync a message on `direction`'s topic asks for.
    pub async fn sync(&self, direction: Direction, key: &str) -> Result<SyncReport, TaskError> {
        let started = self.clock.now();
        let mapping = match direction.source() {
            Side::Google => {
                let key = GoogleCaseKey::from_case_name(key)?;
                self.store.find_by_google(&key).await?
            }
            Side::Company => {
                let key = CompanyCaseKey::new(key)?;
                self.store.find_by_company(&key).await?
            }
        };
        let Some(mapping) = mapping else {
            info!(
                case_key = key,
                direction = direction.as_str(),
                "no mapping for this case (never picked up, or cleaned up): nothing to sync"
            );
            return Ok(SyncReport::skipped("no mapping"));
        };
        let holder = uuid::Uuid::new_v4().to_string();
        let until = started + self.settings.lease_duration;
        let mapping = match self
            .store
            .acquire_lease(&mapping.id, &holder, until, started)
            .await?
        {
            LeaseOutcome::Acquired(m) => *m,
            LeaseOutcome::Missing => return Ok(SyncReport::skipped("mapping deleted meanwhile")),
        };
        let id = mapping.id.clone();
        let lease = LeaseGuard {
            mapping_id: id.clone(),
            holder,
            until: Mutex::new(until),
        };
        let mut source_update_time = None;
        let result = self
            .sync_leased(direction, mapping, &lease, started, &mut source_update_time)
            .await;
        if let Err(e) = &result
            && e.class() == ErrorClass::Permanent
        {
            self.park(&id, direction.source(), e, source_update_time, &lease)
                .await;
        }
        if let Err(e) = self.store.release_lease(&id, lease.holder()).await {
            // The lease expires on its own; a failed release only delays the next sync.
            warn!(mapping = %id, error = %e, "could not release the lease");
        }
        let mut report = result?;
        report.mapping_id = Some(id);
        Ok(report)
    }

    /// Records a permanent failure on the mapping, so neither a poll nor detect-outages runs
    /// it again until the source case moves or the dead letter is replayed.
    async fn park(
        &self,
        id: &str,
        side: Side,
        e: &TaskError,
        source_update_time: Option<DateTime<Utc>>,
        lease: &LeaseGuard,
    ) {
        let parked = async {
            let Some(mut m) = self.store.get(id).await? else {
                return Ok(());
            };
            m.parked = Some(Parked {
                side,
                reason: e.to_string(),
                source_update_time,
                at: self.clock.now(),
            });
            self.store.save_synced(&m, lease.holder()).await
        };
        match parked.await {
            Ok(()) => {
                info!(mapping = %id, side = side.as_str(), "sync failed permanently: parked until the case changes or is replayed")
            }
            Err(err) => {
                warn!(mapping = %id, error = %err, "could not park the mapping after a permanent failure")
            }
        }
    }

    /// Renews the lease once half of it has passed; fails with `LeaseLost` once another
    /// delivery holds it. Called before every write to either system.
    async fn keep_lease(&self, lease: &LeaseGuard) -> PortResult<()> {
        let now = self.clock.now();
        let half = self.settings.lease_duration / 2;
        if now + half < lease.until() {
            return Ok(());
        }
        let until = now + self.settings.lease_duration;
        self.store
            .renew_lease(&lease.mapping_id, lease.holder(), until)
            .await?;
        *lease.until.lock().unwrap_or_else(|e| e.into_inner()) = until;
        Ok(())
    }

    async fn sync_leased(
        &self,
        direction: Direction,
        mut m: CaseMapping,
        lease: &LeaseGuard,
        started: DateTime<Utc>,
        source_update_time: &mut Option<DateTime<Utc>>,
    ) -> Result<SyncReport, TaskError> {
        let mut report = SyncReport::default();
        let source = direction.source();

        let mut google_case = match m.google_case_name.clone() {
            Some(name) => match self.support.get_case(&name).await {
                Ok(c) => Some(c),
                Err(e) if e.is_not_found() => {
                    return self
                        .counterpart_missing(m, lease, format!("Google case {name} answers 404"))
                        .await;
                }
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let mut crm_case = match m.company_case_id.clone() {
            Some(id) => match self.crm.get_case(&id).await {
                Ok(c) => Some(c),
                Err(e) if e.is_not_found() => {
                    let reason = format!("{} case {id} answers 404", self.crm.kind());
                    return self.counterpart_missing(m, lease, reason).await;
                }
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        if !m.google_link_checked
            && let (Some(g), Some(c)) = (&google_case, &crm_case)
        {
            self.check_typed_link(&mut m, g, c, lease).await?;
        }
        if matches!(
            m.sync_state,
            SyncState::Suspect { .. } | SyncState::Unlinked { .. }
        ) {
            info!(mapping = %m.id, was = m.sync_state.name(), metric = "casesync_mapping_relinked", "every counterpart answers again: relinked");
            m.sync_state = SyncState::Active;
            self.store.save_synced(&m, lease.holder()).await?;
        }
        *source_update_time = match source {
            Side::Google => google_case.as_ref().map(|g| g.update_time),
            Side::Company => crm_case.as_ref().map(|c| c.updated_at),
        };

        // The CRM flag says whether a linked case syncs at all (docs/ARCHITECTURE.md#mapping-lifecycle).
        if let Some(c) = &crm_case
            && m.is_linked()
        {
            if !c.sync_flag && m.company_flag_seen {
                if m.sync_state != SyncState::Paused {
                    m.sync_state = SyncState::Paused;
                    m.paused_at = Some(self.clock.now());
                    self.store.save_synced(&m, lease.holder()).await?;
                    info!(mapping = %m.id, "sync flag removed in the CRM: mapping paused");
                }
                report.paused = true;
                return Ok(report);
            }
            if c.sync_flag {
                m.company_flag_seen = true;
            }
            if m.sync_state == SyncState::Paused {
                m.sync_state = SyncState::Active;
                m.paused_at = None;
                // poll-google ignored the case while paused: what Google did meanwhile is
                // older than its window, so the other direction is synced now too.
                let (other, key) = match direction {
                    Direction::CompanyToGoogle => (
                        Direction::GoogleToCompany,
                        m.google_key().map(|k| k.to_string()),
                    ),
                    Direction::GoogleToCompany => {
                        (Direction::CompanyToGoogle, m.company_case_id.clone())
                    }
                };
                if let Some(key) = key {
                    self.queue.publish(other, &key).await?;
                }
                info!(mapping = %m.id, "sync flag set again: mapping resumed, both directions sync from the pause");
            }
        }

        match direction {
            Direction::GoogleToCompany => {
                let Some(g) = google_case.as_ref() else {
                    return Err(PortError::Invalid(format!(
                        "mapping {} has no Google case to sync from",
                        m.id
                    ))
                    .into());
                };
                if crm_case.is_none() {
                    crm_case = Some(
                        self.ensure_crm_counterpart(&mut m, g, lease, &mut report)
                            .await?,
                    );
                }
            }
            Direction::CompanyToGoogle => {
                let Some(c) = crm_case.as_ref() else {
                    return Err(PortError::Invalid(format!(
                        "mapping {} has no CRM case to sync from",
                        m.id
                    ))
                    .into());
                };
                if google_case.is_none() {
                    google_case = Some(
                        self.ensure_google_counterpart(&mut m, c, lease, &mut report)
                            .await?,
                    );
                }
            }
        }
        let (Some(g), Some(mut c)) = (google_case, crm_case) else {
            return Err(PortError::Invalid(format!(
                "mapping {} is not linked after creation",
                m.id
            ))
            .into());
        };
        let mut failures = ItemFailures::default();

        // The CRM's Google-name field links the pair for people and for the lookup of
        // docs/INVARIANTS.md#create-intents-and-the-lookup-lag: written until it sticks, whatever failed when the pair was linked.
        let field_names_case = c
            .google_case_name
            .as_deref()
            .and_then(|n| GoogleCaseKey::from_case_name(n.trim()).ok())
            == m.google_key();
        if !field_names_case {
            self.keep_lease(lease).await?;
            match self.crm.set_google_case_name(&c.id, &g.name).await {
                Ok(()) => {
                    c.google_case_name = Some(g.name.clone());
                    info!(mapping = %m.id, crm_case = %c.id, "wrote the Google case name into the CRM case");
                }
                Err(e) => {
                    warn!(mapping = %m.id, crm_case = %c.id, error = %e, "could not write the Google case name into the CRM case: retried next sync");
                    failures.defer(e)?;
                }
            }
        }

        let google = GoogleSide::new(
            self.support.as_ref(),
            &g.name,
            &self.settings.own_google_identities,
        );
        let company = CompanySide {
            crm: self.crm.as_ref(),
            case_id: &c.id,
        };

        if direction == Direction::GoogleToCompany
            && m.origin == Side::Google
            && !m.now_syncing_comment_posted
        {
            match self.post_now_syncing_once(&google, &c.id, lease).await {
                Ok(()) => {
                    m.now_syncing_comment_posted = true;
                    self.store.save_synced(&m, lease.holder()).await?;
                }
                Err(e) => failures.defer(e)?,
            }
        }

        let window_start = m
            .synced_at(source)
            .map(|t| t - self.settings.polling_window(source));
        let (from, to): (&dyn CaseSide, &dyn CaseSide) = match direction {
            Direction::GoogleToCompany => (&google, &company),
            Direction::CompanyToGoogle => (&company, &google),
        };
        match self
            .mirror_comments(&mut m, lease, from, to, window_start, &mut failures)
            .await
        {
            Ok(posted) => report.comments_mirrored = posted,
            Err(e) => {
                failures.defer(e)?;
                failures.mirror_pending = true;
            }
        }
        if let Err(e) = self
            .mirror_attachments(
                &mut m,
                lease,
                from,
                to,
                window_start,
                &mut report,
                &mut failures,
            )
            .await
        {
            failures.defer(e)?;
            failures.mirror_pending = true;
        }
        match self.reconcile_priority(&mut m, &g, &c, lease).await {
            Ok(changed) => report.priority_changed = changed,
            Err(e) if refuses_item(&e, false) => {
                self.refuse(&mut m, "priority", &e, lease).await?;
            }
            Err(e) => failures.defer(e)?,
        }
        if failures.mirror_pending {
            info!(mapping = %m.id, "an item is still to be mirrored: the close waits for it");
        } else if let Err(e) = self
            .reconcile_status(direction, &mut m, &g, &c, lease, &mut report)
            .await
        {
            if refuses_item(&e, false) {
                let target = match direction {
                    Direction::GoogleToCompany => Side::Company,
                    Direction::CompanyToGoogle => Side::Google,
                };
                let what = format!("{}:close", target.as_str());
                self.refuse(&mut m, &what, &e, lease).await?;
            } else {
                failures.defer(e)?;
            }
        }

        let now = self.clock.now();
        if report.saw_new_content() {
            m.new_content_at = Some(now);
        }
        if let Some(e) = failures.first {
            // Keep what was done (ledger, refusals); the message is retried for the rest.
            self.store.save_synced(&m, lease.holder()).await?;
            return Err(e.into());
        }
        match source {
            Side::Google => {
                m.google_updates_synced_at = Some(started);
                m.google_update_time_synced = Some(g.update_time);
            }
            Side::Company => {
                m.company_updates_synced_at = Some(started);
                m.company_update_time_synced = Some(c.updated_at);
            }
        }
        if m.parked.as_ref().is_some_and(|p| p.side == source) {
            info!(mapping = %m.id, side = source.as_str(), "parked sync succeeded: unparked");
            m.parked = None;
        }
        self.store.save_synced(&m, lease.holder()).await?;
        self.store.clear_pending(&m.id, source, started).await?;
        Ok(report)
    }

    /// A person typed a Google case name into the CRM case: link it only if that case is
    /// readable under `google.parent` and admitted by `sync.include`; otherwise say so on
    /// the CRM case once and fail permanently (the mapping parks until the ticket changes).
    async fn check_typed_link(
        &self,
        m: &mut CaseMapping,
        g: &GoogleCase,
        c: &CrmCase,
        lease: &LeaseGuard,
    ) -> PortResult<()> {
        let key = GoogleCaseKey::from_case_name(&g.name)?;
        let under_parent = format!("{}/cases/{key}", self.settings.google_parent);
        let in_parent = match self.support.get_case(&under_parent).await {
            Ok(_) => true,
            Err(e) if e.is_not_found() => false,
            Err(e) => return Err(e),
        };
        if in_parent && self.settings.include.admits(g) {
            m.google_link_checked = true;
            self.store.save_synced(m, lease.holder()).await?;
            info!(mapping = %m.id, google_case = %g.name, "the Google case typed into the CRM case is in scope: linked");
            return Ok(());
        }
        let why = if in_parent {
            "it is outside sync.include"
        } else {
            "it is not under google.parent"
        };
        const NOTICE: &str = "company:typed-link";
        if !m.refused_items.contains_key(NOTICE) {
            self.keep_lease(lease).await?;
            self.crm
                .add_comment(&c.id, &markers::typed_link_refused_notice(&g.name, why))
                .await?;
            m.refused_items.insert(
                NOTICE.into(),
                RefusedItem {
                    reason: format!("typed Google case {}: {why}", g.name),
                    at: self.clock.now(),
                },
            );
            self.store.save_synced(m, lease.holder()).await?;
        }
        warn!(mapping = %m.id, google_case = %g.name, reason = why, "a Google case typed into the CRM case is outside casesync's scope: not linked");
        Err(PortError::permanent(
            "link a typed Google case",
            format!("{} named in CRM case {}: {why}", g.name, c.id),
        ))
    }

    /// Records an item the target refused for good, so it is reported and not retried.
    async fn refuse(
        &self,
        m: &mut CaseMapping,
        what: &str,
        e: &PortError,
        lease: &LeaseGuard,
    ) -> PortResult<()> {
        warn!(mapping = %m.id, item = what, error = %e, "the target refused an item for good: recorded, the rest of the case goes on");
        m.refused_items.insert(
            what.to_string(),
            RefusedItem {
                reason: short_reason(e),
                at: self.clock.now(),
            },
        );
        self.store.save_synced(m, lease.holder()).await
    }

    /// A counterpart answered 404 (docs/ARCHITECTURE.md#mapping-lifecycle): the mapping becomes suspect, and
    /// only repeated 404s over `sync.unlink_after` unlink it. The message is acked either way.
    async fn counterpart_missing(
        &self,
        mut m: CaseMapping,
        lease: &LeaseGuard,
        reason: String,
    ) -> Result<SyncReport, TaskError> {
        let now = self.clock.now();
        let next = match &m.sync_state {
            SyncState::Unlinked { .. } => None,
            SyncState::Suspect { since, checks, .. } => {
                let checks = checks + 1;
                if checks >= self.settings.unlink_after_checks
                    && now - *since >= self.settings.unlink_after
                {
                    Some(SyncState::Unlinked {
                        reason: reason.clone(),
                    })
                } else {
                    Some(SyncState::Suspect {
                        reason: reason.clone(),
                        since: *since,
                        checks,
                    })
                }
            }
            SyncState::Active | SyncState::Paused => Some(SyncState::Suspect {
                reason: reason.clone(),
                since: now,
                checks: 1,
            }),
        };
        let mut report = SyncReport::default();
        if let Some(state) = next {
            let changed = state.name() != m.sync_state.name();
            m.sync_state = state;
            self.store.save_synced(&m, lease.holder()).await?;
            if changed {
                warn!(mapping = %m.id, state = m.sync_state.name(), reason = %reason, metric = "casesync_mapping_state_changed", "a counterpart answers 404: mapping state changed");
            }
        }
        match &m.sync_state {
            SyncState::Unlinked { .. } => report.unlinked = Some(reason),
            _ => report.suspect = Some(reason),
        }
        Ok(report)
    }

    /// Finds or creates the CRM case for a Google case, exactly once (docs/INVARIANTS.md#create-intents-and-the-lookup-lag).
    async fn ensure_crm_counterpart(
        &self,
        m: &mut CaseMapping,
        g: &GoogleCase,
        lease: &LeaseGuard,
        report: &mut SyncReport,
    ) -> PortResult<CrmCase> {
        let key = GoogleCaseKey::from_case_name(&g.name)?;
        if let Some(found) = self.crm.find_by_google_case(&key).await? {
            m.company_case_id = Some(found.id.clone());
            m.company_flag_seen = found.sync_flag;
            self.store.save_synced(m, lease.holder()).await?;
            info!(mapping = %m.id, crm_case = %found.id, "linked the existing CRM case that names this Google case");
            report.linked_existing = Some(found.id.clone());
            return Ok(found);
        }
        let now = self.clock.now();
        if let Some(intent) = m.company_create_intent_at
            && now < intent + self.settings.lookup_lag
        {
            return Err(PortError::retryable(
                "create CRM case",
                format!(
                    "a CRM case for Google case {key} may have been created at {intent}; waiting for CRM search to show it before creating another"
                ),
            ));
        }
        m.company_create_intent_at = Some(now);
        self.store.save_synced(m, lease.holder()).await?;
        self.keep_lease(lease).await?;
        let url = format!("{}{}", self.settings.google_case_url_base, key);
        let created = self
            .crm
            .create_case(&NewCrmCase {
                summary: g.display_name.clone(),
                description: markers::mirrored_crm_description(&g.description, &url),
                priority: g.priority,
                google_case_name: g.name.clone(),
                google_case_number: key.to_string(),
            })
            .await;
        let created = match created {
            Err(PortError::PartlyApplied { id, cause }) => {
                // The ticket exists but refused a field: link it now, before anything else
                // can fail, so no second one is ever created; the field is retried.
                m.company_case_id = Some(id.clone());
                m.company_flag_seen = false;
                m.priority = g.priority;
                self.store.save_synced(m, lease.holder()).await?;
                warn!(mapping = %m.id, crm_case = %id, error = %cause, "the CRM created the case but refused a field: linked, the field is retried");
                report.created_counterpart = Some(id.clone());
                return self.crm.get_case(&id).await;
            }
            other => {
                self.forget_intent_if_refused(other, m, Side::Company, lease)
                    .await?
            }
        };
        m.company_case_id = Some(created.id.clone());
        m.company_flag_seen = created.sync_flag;
        m.priority = g.priority;
        self.store.save_synced(m, lease.holder()).await?;
        info!(mapping = %m.id, crm_case = %created.id, "created the CRM counterpart");
        report.created_counterpart = Some(created.id.clone());
        Ok(created)
    }

    /// Finds or creates the Google case for a CRM case, exactly once (docs/INVARIANTS.md#create-intents-and-the-lookup-lag).
    async fn ensure_google_counterpart(
        &self,
        m: &mut CaseMapping,
        c: &CrmCase,
        lease: &LeaseGuard,
        report: &mut SyncReport,
    ) -> PortResult<GoogleCase> {
        let kind = self.crm.kind().to_string();
        let line = markers::description_line(&kind, &c.id);
        let own = self
            .settings
            .own_google_identities
            .first()
            .ok_or_else(|| PortError::Config("google.own_identities is empty".into()))?;
        let found = self
            .support
            .find_cases_by_creator_and_text(&self.settings.google_create_parent, own, &line)
            .await?
            .into_iter()
            .find(|g| {
                self.settings
                    .is_own_google_identity(g.creator.email.as_deref())
                    && markers::parse_description_line(&g.description)
                        == Some((kind.clone(), c.id.clone()))
            });
        let case = match found {
            Some(g) => {
                info!(mapping = %m.id, google_case = %g.name, "linked the Google case created earlier for this CRM case");
                report.linked_existing = Some(g.name.clone());
                g
            }
            None => {
                let now = self.clock.now();
                if let Some(intent) = m.google_create_intent_at
                    && now < intent + self.settings.lookup_lag
                {
                    return Err(PortError::retryable(
                        "create Google case",
                        format!(
                            "a Google case for CRM case {} may have been created at {intent}; waiting for case search to show it before creating another",
                            c.id
                        ),
                    ));
                }
                m.google_create_intent_at = Some(now);
                self.store.save_synced(m, lease.holder()).await?;
                self.keep_lease(lease).await?;
                let priority = c.priority.unwrap_or(m.priority);
                let summary = if c.summary.trim().is_empty() {
                    format!("{} case {}", kind, c.id)
                } else {
                    c.summary.clone()
                };
                let created = self
                    .support
                    .create_case(
                        &self.settings.google_create_parent,
                        &NewGoogleCase {
                            display_name: summary,
                            description: markers::google_description_for_crm_case(
                                &c.description,
                                c.url.as_deref(),
                                &kind,
                                &c.id,
                            ),
                            classification_id: self.settings.classification_id.clone(),
                            priority,
                            subscriber_emails: self.settings.subscriber_emails.clone(),
                            test_case: self.settings.test_case,
                        },
                    )
                    .await;
                let created = self
                    .forget_intent_if_refused(created, m, Side::Google, lease)
                    .await?;
                info!(mapping = %m.id, google_case = %created.name, "created the Google counterpart");
                report.created_counterpart = Some(created.name.clone());
                m.priority = priority;
                // Recorded before the identity check, so a mismatch never makes a second case.
                m.google_case_name = Some(created.name.clone());
                self.store.save_synced(m, lease.holder()).await?;
                self.check_own_identity(created.creator.email.as_deref(), "a case")?;
                created
            }
        };
        m.google_case_name = Some(case.name.clone());
        self.store.save_synced(m, lease.holder()).await?;
        // The CRM's Google-name field is written by the caller, retried until it sticks.
        Ok(case)
    }

    /// casesync tells its own items by their author (docs/INVARIANTS.md#own-identity): if Google reports casesync's
    /// writes under an identity that is not configured, every mirror would look like a
    /// person's and echo both ways. Stop with the key to fix instead.
    fn check_own_identity(&self, reported: Option<&str>, what: &str) -> PortResult<()> {
        match reported {
            Some(email) if !self.settings.is_own_google_identity(Some(email)) => {
                Err(PortError::Config(format!(
                    "google.own_identities: Google reports {what} casesync wrote as by `{email}`, which is not listed; add it, or casesync's mirrors would be mirrored back"
                )))
            }
            _ => Ok(()),
        }
    }

    /// A create that was refused outright (a permanent error) created nothing, so its intent
    /// must not hold the next attempt back for the lookup lag; any other failure may have
    /// been a lost reply and keeps it.
    async fn forget_intent_if_refused<T>(
        &self,
        result: PortResult<T>,
        m: &mut CaseMapping,
        side: Side,
        lease: &LeaseGuard,
    ) -> PortResult<T> {
        if let Err(e) = &result
            && e.class() == ErrorClass::Permanent
        {
            match side {
                Side::Google => m.google_create_intent_at = None,
                Side::Company => m.company_create_intent_at = None,
            }
            self.store.save_synced(m, lease.holder()).await?;
        }
        result
    }

    /// Posts "now syncing" on the Google case unless casesync already did (a lost reply).
    async fn post_now_syncing_once(
        &self,
        google: &GoogleSide<'_>,
        crm_id: &str,
        lease: &LeaseGuard,
    ) -> PortResult<()> {
        let already = google
            .comments(None)
            .await?
            .iter()
            .any(|c| c.by_connector && markers::parse_now_syncing(&c.body) == Some(crm_id));
        if !already {
            self.keep_lease(lease).await?;
            let author = google
                .add_comment(&markers::now_syncing_comment(crm_id))
                .await?;
            self.check_own_identity(author.as_deref(), "a comment")?;
        }
        Ok(())
    }

    /// Posts one comment on the target; for Google, checks the author Google reports.
    async fn post(&self, to: &dyn CaseSide, body: &str, lease: &LeaseGuard) -> PortResult<()> {
        self.keep_lease(lease).await?;
        let author = to.add_comment(body).await?;
        if to.side() == Side::Google {
            self.check_own_identity(author.as_deref(), "a comment")?;
        }
        Ok(())
    }

    /// Mirrors every candidate comment of `from` that has no mirror on `to` (docs/INVARIANTS.md#what-counts-as-mirrored). A
    /// comment the target refuses for good is recorded and announced; a transient failure
    /// of one comment does not stop the others.
    async fn mirror_comments(
        &self,
        m: &mut CaseMapping,
        lease: &LeaseGuard,
        from: &dyn CaseSide,
        to: &dyn CaseSide,
        window_start: Option<DateTime<Utc>>,
        failures: &mut ItemFailures,
    ) -> PortResult<usize> {
        let mut candidates: Vec<_> = from
            .comments(window_start)
            .await?
            .into_iter()
            .filter(|c| !c.by_connector && window_start.is_none_or(|w| c.created_at >= w))
            .filter(|c| {
                !m.refused_items
                    .contains_key(&item_key(from.side(), "comment", &c.id))
            })
            .collect();
        if candidates.is_empty() {
            return Ok(0);
        }
        candidates.sort_by_key(|c| c.created_at);
        let read_back = candidates[0].created_at - self.settings.clock_skew;
        let mirrored: HashSet<(String, usize)> = to
            .comments(Some(read_back))
            .await?
            .into_iter()
            .filter(|c| c.by_connector)
            .filter_map(|c| markers::parse_marker(&c.body))
            .filter(|mk| mk.source == from.side() && mk.kind == MarkedKind::Comment)
            .map(|mk| (mk.source_id, mk.part.0))
            .collect();
        let mut posted = 0;
        'comments: for c in &candidates {
            let parts = markers::mirror_comment_parts(from.side(), &c.id, &c.author, &c.body);
            for (i, part) in parts.iter().enumerate() {
                if mirrored.contains(&(c.id.clone(), i + 1)) {
                    continue;
                }
                match self.post(to, part, lease).await {
                    Ok(()) => {
                        posted += 1;
                        info!(source = from.side().as_str(), comment = %c.id, part = i + 1, "mirrored a comment");
                    }
                    Err(e) if refuses_item(&e, false) => {
                        let notice = markers::refused_item_notice(
                            part,
                            &format!("this comment could not be copied: {}", short_reason(&e)),
                        );
                        match self.post(to, &notice, lease).await {
                            Ok(()) => {}
                            Err(notice_error) if refuses_item(&notice_error, false) => {}
                            Err(notice_error) => {
                                failures.defer(notice_error)?;
                                failures.mirror_pending = true;
                                continue 'comments;
                            }
                        }
                        let key = item_key(from.side(), "comment", &c.id);
                        self.refuse(m, &key, &e, lease).await?;
                        continue 'comments;
                    }
                    Err(e) => {
                        warn!(source = from.side().as_str(), comment = %c.id, error = %e, "could not mirror a comment: retried, the other items go on");
                        failures.defer(e)?;
                        failures.mirror_pending = true;
                        continue 'comments;
                    }
                }
            }
        }
        Ok(posted)
    }

    /// Copies every candidate attachment not yet in the ledger (docs/INVARIANTS.md#the-attachment-ledger), each on its
    /// own: one the target refuses is recorded and announced, the others go on.
    #[allow(clippy::too_many_arguments)]
    async fn mirror_attachments(
        &self,
        m: &mut CaseMapping,
        lease: &LeaseGuard,
        from: &dyn CaseSide,
        to: &dyn CaseSide,
        window_start: Option<DateTime<Utc>>,
        report: &mut SyncReport,
        failures: &mut ItemFailures,
    ) -> PortResult<()> {
        let mut candidates: Vec<AttachmentView> = from
            .attachments()
            .await?
            .into_iter()
            .filter(|a| !a.by_connector && window_start.is_none_or(|w| a.created_at >= w))
            .filter(|a| {
                let entry = m.attachment_ledger.get(&ledger_key(from.side(), &a.id));
                entry.is_none_or(|e| e.outcome == LedgerOutcome::Attempted)
            })
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        candidates.sort_by_key(|a| a.created_at);
        let mut target_listing: Option<Vec<AttachmentView>> = None;
        for a in candidates {
            let key = ledger_key(from.side(), &a.id);
            if let Some(entry) = m.attachment_ledger.get(&key).cloned() {
                // An earlier upload's outcome is unknown: a file by casesync with the same
                // name and size, created after the attempt, is its mirror.
                if target_listing.is_none() {
                    target_listing = Some(to.attachments().await?);
                }
                let claimed: HashSet<&str> = m
                    .attachment_ledger
                    .values()
                    .filter_map(|e| e.target_id.as_deref())
                    .collect();
                let earliest = entry.attempted_at - self.settings.clock_skew;
                let found = target_listing.iter().flatten().find(|t| {
                    t.by_connector
                        && t.filename == a.filename
                        && t.size_bytes == a.size_bytes
                        && t.created_at >= earliest
                        && !claimed.contains(t.id.as_str())
                });
                if let Some(t) = found {
                    let target_id = t.id.clone();
                    m.attachment_ledger.insert(
                        key,
                        LedgerEntry {
                            outcome: LedgerOutcome::Mirrored,
                            target_id: Some(target_id),
                            attempted_at: entry.attempted_at,
                            reason: None,
                        },
                    );
                    self.store.save_synced(m, lease.holder()).await?;
                    continue;
                }
            }
            let now = self.clock.now();
            if a.size_bytes > self.settings.max_attachment_bytes {
                if let Err(e) = self
                    .note_oversized_attachment_once(from, to, &a, lease)
                    .await
                {
                    failures.defer(e)?;
                    failures.mirror_pending = true;
                    continue;
                }
                m.attachment_ledger.insert(
                    key,
                    LedgerEntry {
                        outcome: LedgerOutcome::Skipped,
                        target_id: None,
                        attempted_at: now,
                        reason: Some("larger than sync.max_attachment_bytes".into()),
                    },
                );
                self.store.save_synced(m, lease.holder()).await?;
                report.attachments_skipped += 1;
                warn!(source = from.side().as_str(), attachment = %a.id, size = a.size_bytes, "attachment over the size limit: not copied, a comment says so");
                continue;
            }
            m.attachment_ledger.insert(
                key.clone(),
                LedgerEntry {
                    outcome: LedgerOutcome::Attempted,
                    target_id: None,
                    attempted_at: now,
                    reason: None,
                },
            );
            self.store.save_synced(m, lease.holder()).await?;
            match self.copy_attachment(from, to, &a, lease).await {
                Ok(target_id) => {
                    m.attachment_ledger.insert(
                        key,
                        LedgerEntry {
                            outcome: LedgerOutcome::Mirrored,
                            target_id: Some(target_id),
                            attempted_at: now,
                            reason: None,
                        },
                    );
                    self.store.save_synced(m, lease.holder()).await?;
                    report.attachments_mirrored += 1;
                    info!(source = from.side().as_str(), attachment = %a.id, "mirrored an attachment");
                }
                Err(e) if refuses_item(&e, true) => {
                    let marker =
                        markers::marker_line(from.side(), MarkedKind::Attachment, &a.id, &a.author);
                    let notice = markers::refused_item_notice(
                        &marker,
                        &format!(
                            "The attachment \"{}\" ({} bytes) could not be copied: {}. Download it from the {} case.",
                            a.filename,
                            a.size_bytes,
                            short_reason(&e),
                            side_name(from.side()),
                        ),
                    );
                    if let Err(notice_error) = self.post(to, &notice, lease).await
                        && !refuses_item(&notice_error, false)
                    {
                        failures.defer(notice_error)?;
                        failures.mirror_pending = true;
                        continue;
                    }
                    warn!(source = from.side().as_str(), attachment = %a.id, error = %e, "the target refused an attachment: recorded and announced, the rest goes on");
                    m.attachment_ledger.insert(
                        key,
                        LedgerEntry {
                            outcome: LedgerOutcome::Refused,
                            target_id: None,
                            attempted_at: now,
                            reason: Some(short_reason(&e)),
                        },
                    );
                    self.store.save_synced(m, lease.holder()).await?;
                }
                Err(e) => {
                    warn!(source = from.side().as_str(), attachment = %a.id, error = %e, "could not copy an attachment: retried, the other items go on");
                    failures.defer(e)?;
                    failures.mirror_pending = true;
                }
            }
        }
        Ok(())
    }

    async fn copy_attachment(
        &self,
        from: &dyn CaseSide,
        to: &dyn CaseSide,
        a: &AttachmentView,
        lease: &LeaseGuard,
    ) -> PortResult<String> {
        // An upload never carries more than the size that was declared and checked against
        // the limit (or the limit itself when the source declared none).
        let declared = if a.size_bytes > 0 {
            a.size_bytes
        } else {
            self.settings.max_attachment_bytes
        };
        let body = capped_stream(from.download(a).await?, declared);
        self.keep_lease(lease).await?;
        let (target_id, author) = to
            .upload(AttachmentUpload {
                filename: a.filename.clone(),
                mime_type: a.mime_type.clone(),
                size_bytes: a.size_bytes,
                body,
                marker: Some(markers::marker_line(
                    from.side(),
                    MarkedKind::Attachment,
                    &a.id,
                    &a.author,
                )),
            })
            .await?;
        if to.side() == Side::Google {
            self.check_own_identity(author.as_deref(), "an attachment")?;
        }
        Ok(target_id)
    }

    async fn note_oversized_attachment_once(
        &self,
        from: &dyn CaseSide,
        to: &dyn CaseSide,
        a: &AttachmentView,
        lease: &LeaseGuard,
    ) -> PortResult<()> {
        let already = to
            .comments(Some(a.created_at - self.settings.clock_skew))
            .await?
            .into_iter()
            .filter(|c| c.by_connector)
            .filter_map(|c| markers::parse_marker(&c.body))
            .any(|mk| {
                mk.source == from.side()
                    && mk.kind == MarkedKind::Attachment
                    && mk.source_id == a.id
            });
        if !already {
            let body = markers::oversized_attachment_comment(
                from.side(),
                &a.id,
                &a.author,
                &a.filename,
                a.size_bytes,
                self.settings.max_attachment_bytes,
            );
            self.post(to, &body, lease).await?;
        }
        Ok(())
    }

    /// Applies a priority change from whichever side made it (docs/INVARIANTS.md#priority-and-close). Both sides are read
    /// again right before a write, so a change made while this sync ran is never reverted:
    /// the conflict winner decides only when both changed since the last agreed value.
    async fn reconcile_priority(
        &self,
        m: &mut CaseMapping,
        g: &GoogleCase,
        c: &CrmCase,
        lease: &LeaseGuard,
    ) -> PortResult<bool> {
        let agreed = m.priority;
        if self.priority_winner(agreed, g, c).is_none() {
            return Ok(false);
        }
        let g = self.support.get_case(&g.name).await?;
        let c = self.crm.get_case(&c.id).await?;
        let Some(winner) = self.priority_winner(agreed, &g, &c) else {
            return Ok(false);
        };
        let company = c.priority.unwrap_or(agreed);
        if g.priority != winner {
            self.keep_lease(lease).await?;
            self.support.update_priority(&g.name, winner).await?;
        }
        if company != winner {
            self.keep_lease(lease).await?;
            self.crm.set_priority(&c.id, winner).await?;
        }
        info!(mapping = %m.id, from = %agreed, to = %winner, "priority reconciled");
        m.priority = winner;
        Ok(true)
    }

    /// The priority both sides should have, when a side changed it since `agreed`.
    fn priority_winner(
        &self,
        agreed: crate::domain::Priority,
        g: &GoogleCase,
        c: &CrmCase,
    ) -> Option<crate::domain::Priority> {
        let google = g.priority;
        let company = c.priority.unwrap_or(agreed);
        match (google != agreed, company != agreed) {
            (false, false) => None,
            (true, false) => Some(google),
            (false, true) => Some(company),
            (true, true) if google == company => Some(google),
            (true, true) => Some(match self.settings.conflict_winner {
                Side::Google => google,
                Side::Company => company,
            }),
        }
    }

    /// Closes the counterpart of a case closed on the source side, last (docs/INVARIANTS.md#priority-and-close).
    async fn reconcile_status(
        &self,
        direction: Direction,
        m: &mut CaseMapping,
        g: &GoogleCase,
        c: &CrmCase,
        lease: &LeaseGuard,
        report: &mut SyncReport,
    ) -> PortResult<()> {
        match direction {
            Direction::GoogleToCompany => {
                if g.closed && m.resolved_at.is_none() {
                    if !c.closed {
                        self.keep_lease(lease).await?;
                        self.crm.close_case(&c.id).await?;
                        report.closed_counterpart = true;
                    }
                    m.resolved_at = Some(self.clock.now());
                    info!(mapping = %m.id, "Google case closed: CRM case closed, mapping resolved");
                }
            }
            Direction::CompanyToGoogle => {
                if c.closed && m.resolved_at.is_none() {
                    if !g.closed {
                        self.keep_lease(lease).await?;
                        self.support.close_case(&g.name).await?;
                        report.closed_counterpart = true;
                    }
                    m.resolved_at = Some(self.clock.now());
                    info!(mapping = %m.id, "CRM case closed: Google case closed, mapping resolved");
                } else if !c.closed && m.resolved_at.is_some() && g.closed && !m.reopen_notice_sent
                {
                    self.keep_lease(lease).await?;
                    self.crm
                        .add_comment(&c.id, &markers::google_case_closed_notice(&g.name))
                        .await?;
                    m.reopen_notice_sent = true;
                    info!(mapping = %m.id, "CRM case reopened after its Google case closed: told the CRM case");
                }
            }
        }
        Ok(())
    }
}

/// `body`, failing permanently once it yields more than `limit` bytes.
pub(crate) fn capped_stream(
    body: crate::ports::ByteStream,
    limit: u64,
) -> crate::ports::ByteStream {
    use futures::StreamExt;
    let mut seen: u64 = 0;
    body.map(move |chunk| {
        let chunk = chunk?;
        seen += chunk.len() as u64;
        if seen > limit {
            return Err(PortError::permanent(
                "copy an attachment",
                format!("the file is longer than the {limit} bytes it declared"),
            ));
        }
        Ok(chunk)
    })
    .boxed()
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Google => "Google",
        Side::Company => "company",
    }
}

/// The key of a source item in `refused_items`: `{side}:{kind}:{id}`.
fn item_key(side: Side, kind: &str, id: &str) -> String {
    format!("{}:{kind}:{id}", side.as_str())
}

fn ledger_key(side: Side, id: &str) -> String {
    format!("{}:{id}", side.as_str())
}
