//! The persistent state of casesync: one `CaseMapping` per synced case and one `Global`
//! record (docs/ARCHITECTURE.md#data-model). Field names follow the seed, so an operator who knows the original guide
//! recognises the documents in Firestore.
//!
//! Three writers share a mapping, and each owns its own fields, so none overwrites
//! another's: a sync (holding the lease) owns everything but the pending marks and the outage
//! flags; the polls own `*PendingSince`; detect-outages owns the outage flags.

use super::{CompanyCaseKey, GoogleCaseKey, Priority, Side};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SCHEMA_VERSION: u32 = 1;

/// Whether a mapping is synced (docs/ARCHITECTURE.md#mapping-lifecycle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum SyncState {
    #[default]
    Active,
    /// The CRM sync flag was removed after linking; setting it again resumes.
    Paused,
    /// A counterpart answered 404, which a brief permission change also causes: its messages
    /// are acked, detect-outages re-checks it hourly, and only `sync.unlink_after_checks`
    /// 404s spanning `sync.unlink_after` unlink it. A counterpart that answers relinks it.
    #[serde(rename_all = "camelCase")]
    Suspect {
        reason: String,
        since: DateTime<Utc>,
        checks: u32,
    },
    /// A counterpart is gone for good; only activity on the other side re-checks it.
    Unlinked { reason: String },
}

impl SyncState {
    /// A short name for logs, metrics and the status listing.
    pub fn name(&self) -> &'static str {
        match self {
            SyncState::Active => "active",
            SyncState::Paused => "paused",
            SyncState::Suspect { .. } => "suspect",
            SyncState::Unlinked { .. } => "unlinked",
        }
    }
}

/// A sync's claim on a mapping (docs/INVARIANTS.md#the-lease).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    pub holder: String,
    pub until: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LedgerOutcome {
    /// An upload was started; its reply has not been seen.
    Attempted,
    Mirrored,
    /// Not copied (too large); a marked comment said so.
    Skipped,
    /// The target refused it for good (a type or size it forbids, 403, 413); a marked
    /// comment said so, and it is not tried again.
    Refused,
}

/// One source attachment in the mapping's ledger (docs/INVARIANTS.md#the-attachment-ledger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    pub outcome: LedgerOutcome,
    pub target_id: Option<String>,
    pub attempted_at: DateTime<Utc>,
    /// Why it was refused or skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One item of a case (a comment, the priority, the close) that the target refused for good.
/// It is recorded so the rest of the case goes on syncing and the item is not retried on
/// every sync; an operator sees it in the status listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusedItem {
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// A sync of one direction failed permanently: neither a poll nor detect-outages re-runs
/// it until the source case's update time moves past `sourceUpdateTime` or it is replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parked {
    /// The side whose sync failed (the source of the direction).
    pub side: Side,
    pub reason: String,
    /// The source case's update time when it failed, if it was read.
    pub source_update_time: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseMapping {
    /// Deterministic document id, derived from the key of the side that created it.
    pub id: String,
    pub schema_version: u32,
    /// The side the case was first seen on.
    pub origin: Side,
    pub google_case_name: Option<String>,
    #[serde(rename = "companyCaseID")]
    pub company_case_id: Option<String>,
    pub new_content_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub company_updates_synced_at: Option<DateTime<Utc>>,
    pub google_updates_synced_at: Option<DateTime<Utc>>,
    pub outage_comment_sent_to_google: bool,
    pub outage_comment_sent_to_company: bool,
    /// The last agreed priority (docs/INVARIANTS.md#priority-and-close).
    pub priority: Priority,
    pub created_at: DateTime<Utc>,
    pub sync_state: SyncState,
    pub lease: Option<Lease>,
    /// When a create of the Google counterpart was last attempted (docs/INVARIANTS.md#create-intents-and-the-lookup-lag).
    pub google_create_intent_at: Option<DateTime<Utc>>,
    pub company_create_intent_at: Option<DateTime<Utc>>,
    /// Source attachment (`google:{name}` / `company:{id}`) → what became of it.
    pub attachment_ledger: BTreeMap<String, LedgerEntry>,
    /// The source case's update time at its last successful sync, so a poll can skip a case
    /// that has not moved since (invariant 7).
    pub google_update_time_synced: Option<DateTime<Utc>>,
    pub company_update_time_synced: Option<DateTime<Utc>>,
    pub now_syncing_comment_posted: bool,
    pub reopen_notice_sent: bool,
    /// The latest time a poll enqueued a sync of that side, cleared by the success of a sync
    /// that started after it: while set, that side has work pending.
    pub google_pending_since: Option<DateTime<Utc>>,
    pub company_pending_since: Option<DateTime<Utc>>,
    /// Items refused for good, by `{side}:{kind}:{id}` of their source.
    #[serde(default)]
    pub refused_items: BTreeMap<String, RefusedItem>,
    #[serde(default)]
    pub parked: Option<Parked>,
    /// When the mapping was paused; on resume both directions sync from here.
    #[serde(default)]
    pub paused_at: Option<DateTime<Utc>>,
    /// Whether a read ever showed the CRM case flagged for sync. Only a flag removed after
    /// that pauses the mapping: a CRM case casesync created whose flag the CRM refused is
    /// not a person's "stop syncing". Mappings written before this field existed had it.
    #[serde(default = "seen_by_default")]
    pub company_flag_seen: bool,
    /// False while the Google case name was typed into the CRM by a person and not yet
    /// checked against `google.parent` and `sync.include` (a typed name must not link a case
    /// outside casesync's scope).
    #[serde(default = "seen_by_default")]
    pub google_link_checked: bool,
}

fn seen_by_default() -> bool {
    true
}

impl CaseMapping {
    /// The document id of the mapping a side's key creates.
    pub fn id_for_google(key: &GoogleCaseKey) -> String {
        format!("google-{key}")
    }

    /// CRM ids may hold characters a document id cannot. Every other character becomes `_`
    /// and six hex digits (every Unicode scalar value fits), so the encoding is injective:
    /// `_` itself is always escaped, and an escape always has the same width. (Until schema
    /// 1.1 the width varied, so `x 0` and `x\u{200}` shared an id. Existing mappings keep
    /// their ids: lookups go through the key documents, never through this function.)
    pub fn id_for_company(key: &CompanyCaseKey) -> String {
        let safe: String = key
            .as_str()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c.to_string()
                } else {
                    format!("_{:06x}", c as u32)
                }
            })
            .collect();
        format!("company-{safe}")
    }

    fn empty(id: String, origin: Side, priority: Priority, now: DateTime<Utc>) -> Self {
        CaseMapping {
            id,
            schema_version: SCHEMA_VERSION,
            origin,
            google_case_name: None,
            company_case_id: None,
            new_content_at: Some(now),
            resolved_at: None,
            company_updates_synced_at: None,
            google_updates_synced_at: None,
            outage_comment_sent_to_google: false,
            outage_comment_sent_to_company: false,
            priority,
            created_at: now,
            sync_state: SyncState::Active,
            lease: None,
            google_create_intent_at: None,
            company_create_intent_at: None,
            attachment_ledger: BTreeMap::new(),
            google_update_time_synced: None,
            company_update_time_synced: None,
            now_syncing_comment_posted: false,
            reopen_notice_sent: false,
            google_pending_since: None,
            company_pending_since: None,
            refused_items: BTreeMap::new(),
            parked: None,
            paused_at: None,
            company_flag_seen: origin == Side::Company,
            google_link_checked: true,
        }
    }

    /// A mapping for a case first seen on Google (docs/ARCHITECTURE.md#poll-google-and-poll-company): the company side is
    /// considered synced now, the Google side not yet.
    pub fn from_google(
        case_name: &str,
        key: &GoogleCaseKey,
        priority: Priority,
        now: DateTime<Utc>,
    ) -> Self {
        let mut m = Self::empty(Self::id_for_google(key), Side::Google, priority, now);
        m.google_case_name = Some(case_name.to_string());
        m.company_updates_synced_at = Some(now);
        m.google_updates_synced_at = None;
        m
    }

    /// The mirror image for a case first seen in the CRM.
    pub fn from_company(key: &CompanyCaseKey, priority: Priority, now: DateTime<Utc>) -> Self {
        let mut m = Self::empty(Self::id_for_company(key), Side::Company, priority, now);
        m.company_case_id = Some(key.as_str().to_string());
        m.google_updates_synced_at = Some(now);
        m.company_updates_synced_at = None;
        m
    }

    pub fn google_key(&self) -> Option<GoogleCaseKey> {
        self.google_case_name
            .as_deref()
            .and_then(|n| GoogleCaseKey::from_case_name(n).ok())
    }

    pub fn company_key(&self) -> Option<CompanyCaseKey> {
        self.company_case_id
            .as_deref()
            .and_then(|id| CompanyCaseKey::new(id).ok())
    }

    /// Both keys set: the creation phase is over (docs/ARCHITECTURE.md#data-model).
    pub fn is_linked(&self) -> bool {
        self.google_case_name.is_some() && self.company_case_id.is_some()
    }

    pub fn synced_at(&self, side: Side) -> Option<DateTime<Utc>> {
        match side {
            Side::Google => self.google_updates_synced_at,
            Side::Company => self.company_updates_synced_at,
        }
    }

    pub fn pending_since(&self, side: Side) -> Option<DateTime<Utc>> {
        match side {
            Side::Google => self.google_pending_since,
            Side::Company => self.company_pending_since,
        }
    }

    /// Whether a sync from `side` is parked for a case whose update time is `update_time`.
    pub fn is_parked(&self, side: Side, update_time: Option<DateTime<Utc>>) -> bool {
        self.parked.as_ref().is_some_and(|p| {
            p.side == side
                && match (update_time, p.source_update_time) {
                    (Some(now), Some(failed_at)) => now <= failed_at,
                    (None, _) => true,
                    (Some(_), None) => false,
                }
        })
    }

    pub fn outage_flag(&self, side: Side) -> bool {
        match side {
            Side::Google => self.outage_comment_sent_to_google,
            Side::Company => self.outage_comment_sent_to_company,
        }
    }

    /// The time a side's updates count as synced (docs/INVARIANTS.md#derived-synced-at): with nothing pending, the later of
    /// the last successful sync and the last good poll of that side.
    pub fn effective_synced_at(
        &self,
        side: Side,
        last_good_poll: Option<DateTime<Utc>>,
    ) -> DateTime<Utc> {
        let synced = self.synced_at(side).unwrap_or(self.created_at);
        match (self.pending_since(side), last_good_poll) {
            (None, Some(poll)) => synced.max(poll),
            _ => synced,
        }
    }
}

/// The poll bookkeeping (docs/ARCHITECTURE.md#data-model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Global {
    pub google_last_polled_at: Option<DateTime<Utc>>,
    pub company_last_polled_at: Option<DateTime<Utc>>,
    pub google_last_good_poll_at: Option<DateTime<Utc>>,
    pub company_last_good_poll_at: Option<DateTime<Utc>>,
}

impl Global {
    pub fn last_polled_at(&self, side: Side) -> Option<DateTime<Utc>> {
        match side {
            Side::Google => self.google_last_polled_at,
            Side::Company => self.company_last_polled_at,
        }
    }

    pub fn last_good_poll_at(&self, side: Side) -> Option<DateTime<Utc>> {
        match side {
            Side::Google => self.google_last_good_poll_at,
            Side::Company => self.company_last_good_poll_at,
        }
    }

    /// Moves a side's poll times forward to `polled_at`, never back.
    pub fn advance(&mut self, side: Side, polled_at: DateTime<Utc>) {
        let (last, good) = match side {
            Side::Google => (
                &mut self.google_last_polled_at,
                &mut self.google_last_good_poll_at,
            ),
            Side::Company => (
                &mut self.company_last_polled_at,
                &mut self.company_last_good_poll_at,
            ),
        };
        *last = Some(last.map_or(polled_at, |t| t.max(polled_at)));
        *good = Some(good.map_or(polled_at, |t| t.max(polled_at)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    #[test]
    fn mappings_serialise_with_the_seed_field_names() {
        let key = GoogleCaseKey::from_case_name("projects/p/cases/42").unwrap();
        let m = CaseMapping::from_google("projects/p/cases/42", &key, Priority::P1, t(0));
        let json = serde_json::to_value(&m).unwrap();
        for field in [
            "googleCaseName",
            "companyCaseID",
            "newContentAt",
            "resolvedAt",
            "companyUpdatesSyncedAt",
            "googleUpdatesSyncedAt",
            "outageCommentSentToGoogle",
            "outageCommentSentToCompany",
            "priority",
            "schemaVersion",
        ] {
            assert!(json.get(field).is_some(), "missing {field}");
        }
        assert_eq!(json["priority"], 1);
        assert_eq!(m.id, "google-42");
    }

    #[test]
    fn company_ids_become_legal_deterministic_document_ids() {
        let a = CaseMapping::id_for_company(&CompanyCaseKey::new("SUP/1").unwrap());
        let b = CaseMapping::id_for_company(&CompanyCaseKey::new("SUP_1").unwrap());
        assert_ne!(a, b);
        assert!(!a.contains('/'));
        assert_eq!(
            a,
            CaseMapping::id_for_company(&CompanyCaseKey::new("SUP/1").unwrap())
        );
    }

    #[test]
    fn company_ids_with_escapes_of_different_widths_never_share_a_mapping_id() {
        let a = CaseMapping::id_for_company(&CompanyCaseKey::new("x 0").unwrap());
        let b = CaseMapping::id_for_company(&CompanyCaseKey::new("x\u{200}").unwrap());
        assert_ne!(a, b);
        assert_eq!(a, "company-x_0000200");
        assert_eq!(b, "company-x_000200");
        let c = CaseMapping::id_for_company(&CompanyCaseKey::new("x_000020").unwrap());
        assert_ne!(c, a);
    }

    proptest::proptest! {
        /// Injective: two different CRM ids never share one mapping id.
        #[test]
        fn different_company_ids_never_share_a_mapping_id(
            a in "[ -~\u{80}-\u{10ffff}_]{1,6}",
            b in "[ -~\u{80}-\u{10ffff}_]{1,6}",
        ) {
            if let (Ok(ka), Ok(kb)) = (CompanyCaseKey::new(&a), CompanyCaseKey::new(&b))
                && ka != kb
            {
                proptest::prop_assert_ne!(
                    CaseMapping::id_for_company(&ka),
                    CaseMapping::id_for_company(&kb)
                );
            }
        }
    }

    #[test]
    fn global_times_only_move_forward() {
        let mut g = Global::default();
        g.advance(Side::Google, t(10));
        g.advance(Side::Google, t(5));
        assert_eq!(g.google_last_polled_at, Some(t(10)));
        assert_eq!(g.google_last_good_poll_at, Some(t(10)));
        assert_eq!(g.company_last_polled_at, None);
    }

    #[test]
    fn effective_synced_at_uses_the_last_good_poll_only_when_nothing_is_pending() {
        let key = CompanyCaseKey::new("1").unwrap();
        let mut m = CaseMapping::from_company(&key, Priority::P2, t(0));
        m.company_updates_synced_at = Some(t(1));
        assert_eq!(m.effective_synced_at(Side::Company, Some(t(30))), t(30));
        m.company_pending_since = Some(t(20));
        assert_eq!(m.effective_synced_at(Side::Company, Some(t(30))), t(1));
    }
}
