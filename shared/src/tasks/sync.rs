//! sync-google-to-company and sync-company-to-google (§6, §11.4–§11.9): one body for both
//! directions. A sync takes the mapping's lease, makes sure the counterpart exists exactly
//! once, mirrors comments and attachments that have no mirror yet, reconciles priority, and
//! closes last.

use super::sides::{AttachmentView, CaseSide, CompanySide, GoogleSide};
use super::{Engine, TaskError};
use crate::domain::markers::{self, MarkedKind};
use crate::domain::{
    AttachmentUpload, CaseMapping, CompanyCaseKey, CrmCase, Direction, GoogleCase, GoogleCaseKey,
    LedgerEntry, LedgerOutcome, NewCrmCase, NewGoogleCase, Side, SyncState,
};
use crate::error::{PortError, PortResult};
use crate::ports::LeaseOutcome;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use tracing::{info, warn};

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
        if let SyncState::Unlinked { reason } = &mapping.sync_state {
            return Ok(SyncReport::skipped(format!("unlinked: {reason}")));
        }
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
        let result = self.sync_leased(direction, mapping, &holder, started).await;
        if let Err(e) = self.store.release_lease(&id, &holder).await {
            // The lease expires on its own; a failed release only delays the next sync.
            warn!(mapping = %id, error = %e, "could not release the lease");
        }
        let mut report = result?;
        report.mapping_id = Some(id);
        Ok(report)
    }

    async fn sync_leased(
        &self,
        direction: Direction,
        mut m: CaseMapping,
        holder: &str,
        started: DateTime<Utc>,
    ) -> Result<SyncReport, TaskError> {
        let mut report = SyncReport::default();
        let source = direction.source();

        let mut google_case = match m.google_case_name.clone() {
            Some(name) => match self.support.get_case(&name).await {
                Ok(c) => Some(c),
                Err(e) if e.is_not_found() => {
                    return self
                        .unlink(m, holder, format!("Google case {name} is gone"))
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
                    return self
                        .unlink(m, holder, format!("{} case {id} is gone", self.crm.kind()))
                        .await;
                }
                Err(e) => return Err(e.into()),
            },
            None => None,
        };

        // The CRM flag says whether a linked case syncs at all (§11.9).
        if let Some(c) = &crm_case
            && m.is_linked()
        {
            if !c.sync_flag {
                if m.sync_state != SyncState::Paused {
                    m.sync_state = SyncState::Paused;
                    self.store.save_synced(&m, holder).await?;
                    info!(mapping = %m.id, "sync flag removed in the CRM: mapping paused");
                }
                report.paused = true;
                return Ok(report);
            }
            if m.sync_state == SyncState::Paused {
                m.sync_state = SyncState::Active;
                info!(mapping = %m.id, "sync flag set again: mapping resumed");
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
                        self.ensure_crm_counterpart(&mut m, g, holder, &mut report)
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
                        self.ensure_google_counterpart(&mut m, c, holder, &mut report)
                            .await?,
                    );
                }
            }
        }
        let (Some(g), Some(c)) = (google_case, crm_case) else {
            return Err(PortError::Invalid(format!(
                "mapping {} is not linked after creation",
                m.id
            ))
            .into());
        };

        let google = GoogleSide {
            support: self.support.as_ref(),
            case_name: &g.name,
            own_identities: &self.settings.own_google_identities,
        };
        let company = CompanySide {
            crm: self.crm.as_ref(),
            case_id: &c.id,
        };

        if direction == Direction::GoogleToCompany
            && m.origin == Side::Google
            && !m.now_syncing_comment_posted
        {
            self.post_now_syncing_once(&google, &c.id).await?;
            m.now_syncing_comment_posted = true;
            self.store.save_synced(&m, holder).await?;
        }

        let window_start = m
            .synced_at(source)
            .map(|t| t - self.settings.polling_window(source));
        let (from, to): (&dyn CaseSide, &dyn CaseSide) = match direction {
            Direction::GoogleToCompany => (&google, &company),
            Direction::CompanyToGoogle => (&company, &google),
        };
        report.comments_mirrored = self.mirror_comments(from, to, window_start).await?;
        self.mirror_attachments(&mut m, holder, from, to, window_start, &mut report)
            .await?;
        report.priority_changed = self.reconcile_priority(&mut m, &g, &c).await?;
        self.reconcile_status(direction, &mut m, &g, &c, &mut report)
            .await?;

        let now = self.clock.now();
        if report.saw_new_content() {
            m.new_content_at = Some(now);
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
        self.store.save_synced(&m, holder).await?;
        self.store.clear_pending(&m.id, source, started).await?;
        Ok(report)
    }

    async fn unlink(
        &self,
        mut m: CaseMapping,
        holder: &str,
        reason: String,
    ) -> Result<SyncReport, TaskError> {
        tracing::error!(mapping = %m.id, reason = %reason, "counterpart gone: mapping unlinked, no more syncs for it");
        m.sync_state = SyncState::Unlinked {
            reason: reason.clone(),
        };
        self.store.save_synced(&m, holder).await?;
        Ok(SyncReport {
            unlinked: Some(reason),
            ..SyncReport::default()
        })
    }

    /// Finds or creates the CRM case for a Google case, exactly once (§11.6).
    async fn ensure_crm_counterpart(
        &self,
        m: &mut CaseMapping,
        g: &GoogleCase,
        holder: &str,
        report: &mut SyncReport,
    ) -> PortResult<CrmCase> {
        let key = GoogleCaseKey::from_case_name(&g.name)?;
        if let Some(found) = self.crm.find_by_google_case(&key).await? {
            m.company_case_id = Some(found.id.clone());
            self.store.save_synced(m, holder).await?;
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
        self.store.save_synced(m, holder).await?;
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
        let created = self
            .forget_intent_if_refused(created, m, Side::Company, holder)
            .await?;
        m.company_case_id = Some(created.id.clone());
        m.priority = g.priority;
        self.store.save_synced(m, holder).await?;
        info!(mapping = %m.id, crm_case = %created.id, "created the CRM counterpart");
        report.created_counterpart = Some(created.id.clone());
        Ok(created)
    }

    /// Finds or creates the Google case for a CRM case, exactly once (§11.6).
    async fn ensure_google_counterpart(
        &self,
        m: &mut CaseMapping,
        c: &CrmCase,
        holder: &str,
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
                markers::parse_description_line(&g.description)
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
                self.store.save_synced(m, holder).await?;
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
                    .forget_intent_if_refused(created, m, Side::Google, holder)
                    .await?;
                info!(mapping = %m.id, google_case = %created.name, "created the Google counterpart");
                report.created_counterpart = Some(created.name.clone());
                m.priority = priority;
                created
            }
        };
        m.google_case_name = Some(case.name.clone());
        self.store.save_synced(m, holder).await?;
        self.crm.set_google_case_name(&c.id, &case.name).await?;
        Ok(case)
    }

    /// A create that was refused outright (a permanent error) created nothing, so its intent
    /// must not hold the next attempt back for the lookup lag; any other failure may have
    /// been a lost reply and keeps it.
    async fn forget_intent_if_refused<T>(
        &self,
        result: PortResult<T>,
        m: &mut CaseMapping,
        side: Side,
        holder: &str,
    ) -> PortResult<T> {
        if let Err(e) = &result
            && e.class() == crate::error::ErrorClass::Permanent
        {
            match side {
                Side::Google => m.google_create_intent_at = None,
                Side::Company => m.company_create_intent_at = None,
            }
            self.store.save_synced(m, holder).await?;
        }
        result
    }

    /// Posts "now syncing" on the Google case unless casesync already did (a lost reply).
    async fn post_now_syncing_once(&self, google: &GoogleSide<'_>, crm_id: &str) -> PortResult<()> {
        let already = google
            .comments(None)
            .await?
            .iter()
            .any(|c| c.by_connector && markers::parse_now_syncing(&c.body) == Some(crm_id));
        if !already {
            google
                .add_comment(&markers::now_syncing_comment(crm_id))
                .await?;
        }
        Ok(())
    }

    /// Mirrors every candidate comment of `from` that has no mirror on `to` (§11.5).
    async fn mirror_comments(
        &self,
        from: &dyn CaseSide,
        to: &dyn CaseSide,
        window_start: Option<DateTime<Utc>>,
    ) -> PortResult<usize> {
        let mut candidates: Vec<_> = from
            .comments(window_start)
            .await?
            .into_iter()
            .filter(|c| !c.by_connector && window_start.is_none_or(|w| c.created_at >= w))
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
        for c in &candidates {
            let parts = markers::mirror_comment_parts(from.side(), &c.id, &c.author, &c.body);
            for (i, part) in parts.iter().enumerate() {
                if mirrored.contains(&(c.id.clone(), i + 1)) {
                    continue;
                }
                to.add_comment(part).await?;
                posted += 1;
                info!(source = from.side().as_str(), comment = %c.id, part = i + 1, "mirrored a comment");
            }
        }
        Ok(posted)
    }

    /// Copies every candidate attachment not yet in the ledger (§11.5, §11.13).
    async fn mirror_attachments(
        &self,
        m: &mut CaseMapping,
        holder: &str,
        from: &dyn CaseSide,
        to: &dyn CaseSide,
        window_start: Option<DateTime<Utc>>,
        report: &mut SyncReport,
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
                        },
                    );
                    self.store.save_synced(m, holder).await?;
                    continue;
                }
            }
            let now = self.clock.now();
            if a.size_bytes > self.settings.max_attachment_bytes {
                self.note_oversized_attachment_once(from, to, &a).await?;
                m.attachment_ledger.insert(
                    key,
                    LedgerEntry {
                        outcome: LedgerOutcome::Skipped,
                        target_id: None,
                        attempted_at: now,
                    },
                );
                self.store.save_synced(m, holder).await?;
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
                },
            );
            self.store.save_synced(m, holder).await?;
            let body = from.download(&a).await?;
            let target_id = to
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
            m.attachment_ledger.insert(
                key,
                LedgerEntry {
                    outcome: LedgerOutcome::Mirrored,
                    target_id: Some(target_id),
                    attempted_at: now,
                },
            );
            self.store.save_synced(m, holder).await?;
            report.attachments_mirrored += 1;
            info!(source = from.side().as_str(), attachment = %a.id, "mirrored an attachment");
        }
        Ok(())
    }

    async fn note_oversized_attachment_once(
        &self,
        from: &dyn CaseSide,
        to: &dyn CaseSide,
        a: &AttachmentView,
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
            to.add_comment(&body).await?;
        }
        Ok(())
    }

    /// Applies a priority change from whichever side made it (§11.8).
    async fn reconcile_priority(
        &self,
        m: &mut CaseMapping,
        g: &GoogleCase,
        c: &CrmCase,
    ) -> PortResult<bool> {
        let agreed = m.priority;
        let google = g.priority;
        let company = c.priority.unwrap_or(agreed);
        let winner = match (google != agreed, company != agreed) {
            (false, false) => return Ok(false),
            (true, false) => google,
            (false, true) => company,
            (true, true) if google == company => google,
            (true, true) => match self.settings.conflict_winner {
                Side::Google => google,
                Side::Company => company,
            },
        };
        if google != winner {
            self.support.update_priority(&g.name, winner).await?;
        }
        if company != winner {
            self.crm.set_priority(&c.id, winner).await?;
        }
        info!(mapping = %m.id, from = %agreed, to = %winner, "priority reconciled");
        m.priority = winner;
        Ok(true)
    }

    /// Closes the counterpart of a case closed on the source side, last (§11.8, §11.9).
    async fn reconcile_status(
        &self,
        direction: Direction,
        m: &mut CaseMapping,
        g: &GoogleCase,
        c: &CrmCase,
        report: &mut SyncReport,
    ) -> PortResult<()> {
        match direction {
            Direction::GoogleToCompany => {
                if g.closed && m.resolved_at.is_none() {
                    if !c.closed {
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
                        self.support.close_case(&g.name).await?;
                        report.closed_counterpart = true;
                    }
                    m.resolved_at = Some(self.clock.now());
                    info!(mapping = %m.id, "CRM case closed: Google case closed, mapping resolved");
                } else if !c.closed && m.resolved_at.is_some() && g.closed && !m.reopen_notice_sent
                {
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

fn ledger_key(side: Side, id: &str) -> String {
    format!("{}:{id}", side.as_str())
}
