//! The ports: what the task bodies need from the outside world, and nothing more. Each has
//! an in-memory or embedded implementation and a real one (docs/ARCHITECTURE.md#ports), so the task bodies
//! run unchanged in tests, in the local runner and in the Cloud Run functions.

use crate::domain::{
    AttachmentUpload, CaseMapping, CompanyCaseKey, CrmAttachment, CrmCase, CrmComment, Direction,
    Global, GoogleAttachment, GoogleCase, GoogleCaseKey, GoogleComment, NewCrmCase, NewGoogleCase,
    Priority, Side,
};
use crate::error::PortResult;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

/// Attachment bytes in flight, streamed so memory does not grow with the file.
pub type ByteStream = BoxStream<'static, PortResult<Bytes>>;

/// The Cloud Support API v2, as casesync uses it.
#[async_trait]
pub trait SupportApi: Send + Sync {
    async fn get_case(&self, name: &str) -> PortResult<GoogleCase>;
    /// Every case under `parent` updated after `since`, all pages.
    async fn search_cases_updated_since(
        &self,
        parent: &str,
        since: DateTime<Utc>,
    ) -> PortResult<Vec<GoogleCase>>;
    /// Cases under `parent` created by `creator_email` whose text contains `text` (used to
    /// find a counterpart created before a lost reply, docs/INVARIANTS.md#create-intents-and-the-lookup-lag).
    async fn find_cases_by_creator_and_text(
        &self,
        parent: &str,
        creator_email: &str,
        text: &str,
    ) -> PortResult<Vec<GoogleCase>>;
    async fn create_case(&self, parent: &str, case: &NewGoogleCase) -> PortResult<GoogleCase>;
    async fn update_priority(&self, name: &str, priority: Priority) -> PortResult<GoogleCase>;
    async fn close_case(&self, name: &str) -> PortResult<GoogleCase>;
    /// All comments of a case, all pages, oldest first (sorted by the adapter: the API's
    /// order is undocumented).
    async fn list_comments(&self, case_name: &str) -> PortResult<Vec<GoogleComment>>;
    /// Posts one comment; bodies longer than the API allows are the caller's to split.
    async fn create_comment(&self, case_name: &str, body: &str) -> PortResult<GoogleComment>;
    async fn list_attachments(&self, case_name: &str) -> PortResult<Vec<GoogleAttachment>>;
    async fn download_attachment(&self, attachment: &GoogleAttachment) -> PortResult<ByteStream>;
    async fn upload_attachment(
        &self,
        case_name: &str,
        upload: AttachmentUpload,
    ) -> PortResult<GoogleAttachment>;
    /// Whether a classification id exists (checked at start-up, README.md#configuration).
    async fn classification_exists(&self, classification_id: &str) -> PortResult<bool>;

    /// The coarsest step of the case update times this API reports. The Cloud Support API
    /// reports nanoseconds; the poll's skip rule allows for coarser ones.
    fn update_time_granularity(&self) -> chrono::Duration {
        chrono::Duration::microseconds(1)
    }
}

/// A company ticketing system. Every adapter passes the same contract suite.
#[async_trait]
pub trait Crm: Send + Sync {
    /// A short name (`jira`, `rt`, …) used in the description line (docs/INVARIANTS.md#markers).
    fn kind(&self) -> &str;
    /// The coarsest step of the update times this CRM reports (RT's `LastUpdated`: whole
    /// seconds). Two changes within one step carry the same update time, so the poll's skip
    /// rule must not trust an unchanged time read within one step of it.
    fn update_time_granularity(&self) -> chrono::Duration {
        chrono::Duration::seconds(1)
    }
    async fn get_case(&self, id: &str) -> PortResult<CrmCase>;
    /// Flagged cases updated at or after `since`, all pages, each once. The adapter widens
    /// the window for coarse timestamps and removes duplicates.
    async fn search_updated_since(&self, since: DateTime<Utc>) -> PortResult<Vec<CrmCase>>;
    /// The case carrying this Google case in its Google-name field (or label), if any.
    async fn find_by_google_case(&self, key: &GoogleCaseKey) -> PortResult<Option<CrmCase>>;
    async fn create_case(&self, case: &NewCrmCase) -> PortResult<CrmCase>;
    async fn set_google_case_name(&self, id: &str, google_case_name: &str) -> PortResult<()>;
    async fn set_priority(&self, id: &str, priority: Priority) -> PortResult<()>;
    async fn close_case(&self, id: &str) -> PortResult<()>;
    /// Comments created at or after `since` (all when `None`); may return older ones too.
    async fn list_comments(
        &self,
        id: &str,
        since: Option<DateTime<Utc>>,
    ) -> PortResult<Vec<CrmComment>>;
    async fn add_comment(&self, id: &str, body: &str) -> PortResult<CrmComment>;
    async fn list_attachments(&self, id: &str) -> PortResult<Vec<CrmAttachment>>;
    async fn download_attachment(
        &self,
        id: &str,
        attachment: &CrmAttachment,
    ) -> PortResult<ByteStream>;
    async fn upload_attachment(
        &self,
        id: &str,
        upload: AttachmentUpload,
    ) -> PortResult<CrmAttachment>;
}

/// What inserting a new mapping found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    Created,
    /// One of its keys already belongs to this mapping.
    AlreadyMapped(String),
}

/// What trying to take a mapping's lease found.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseOutcome {
    Acquired(Box<CaseMapping>),
    Missing,
}

/// Where mappings and the poll bookkeeping live: SQLite locally, Firestore in production.
#[async_trait]
pub trait MappingStore: Send + Sync {
    async fn find_by_google(&self, key: &GoogleCaseKey) -> PortResult<Option<CaseMapping>>;
    async fn find_by_company(&self, key: &CompanyCaseKey) -> PortResult<Option<CaseMapping>>;
    async fn get(&self, id: &str) -> PortResult<Option<CaseMapping>>;
    /// Writes a new mapping and its key entries in one transaction.
    async fn insert_new(&self, mapping: &CaseMapping) -> PortResult<InsertOutcome>;
    /// Takes the lease in a transaction; `PortError::LeaseHeld` while another holder's lease
    /// is live.
    async fn acquire_lease(
        &self,
        id: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<LeaseOutcome>;
    /// Writes the sync-owned fields, and key entries for newly linked keys, only while
    /// `holder` holds the lease (`PortError::LeaseLost` otherwise). A key that already names
    /// another mapping is a permanent error.
    async fn save_synced(&self, mapping: &CaseMapping, holder: &str) -> PortResult<()>;
    /// Moves the lease's expiry to `until` while `holder` still holds it
    /// (`PortError::LeaseLost` otherwise), so a long sync never overlaps a redelivery.
    async fn renew_lease(&self, id: &str, holder: &str, until: DateTime<Utc>) -> PortResult<()>;
    /// Drops the lease if `holder` still holds it.
    async fn release_lease(&self, id: &str, holder: &str) -> PortResult<()>;
    /// Records that a poll enqueued a sync of one side. Keeps the latest time: a sync that
    /// started after it covers every enqueue before it, and only such a sync may clear it.
    async fn mark_pending(&self, id: &str, side: Side, at: DateTime<Utc>) -> PortResult<()>;
    /// A sync that started at `started_at` succeeded: clear a pending mark set before it.
    async fn clear_pending(
        &self,
        id: &str,
        side: Side,
        started_at: DateTime<Utc>,
    ) -> PortResult<()>;
    async fn set_outage_flag(&self, id: &str, side: Side, sent: bool) -> PortResult<()>;
    /// Mappings with no `resolvedAt`.
    async fn list_open(&self) -> PortResult<Vec<CaseMapping>>;
    /// Deletes mappings resolved before `cutoff`, with their keys; returns their ids.
    async fn delete_resolved_before(&self, cutoff: DateTime<Utc>) -> PortResult<Vec<String>>;
    async fn global(&self) -> PortResult<Global>;
    /// Moves one side's poll times to `max(old, polled_at)` in a transaction.
    async fn advance_poll(&self, side: Side, polled_at: DateTime<Utc>) -> PortResult<Global>;
}

/// Where polls publish one message per case to sync: Pub/Sub topics in production, the
/// embedded queue locally.
#[async_trait]
pub trait SyncQueue: Send + Sync {
    async fn publish(&self, direction: Direction, key: &str) -> PortResult<()>;
}

/// A dead-lettered sync message, as cleanup-case-mappings reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterMessage {
    /// What [`DeadLetterQueue::ack_dead_letters`] takes.
    pub handle: String,
    /// The direction the message asked for, when it can be told.
    pub direction: Option<Direction>,
    pub case_key: String,
    /// When it was dead-lettered.
    pub dead_lettered_at: DateTime<Utc>,
}

/// The dead letters, read by cleanup-case-mappings so that the dead letter of a case that
/// has since synced is acknowledged and a non-empty dead-letter queue means "a person is
/// needed" (docs/FAILURES.md#dead-letters). A message read and not acknowledged stays for the replay.
#[async_trait]
pub trait DeadLetterQueue: Send + Sync {
    /// Up to `max` dead letters not yet seen by this reader in this run.
    async fn read_dead_letters(&self, max: usize) -> PortResult<Vec<DeadLetterMessage>>;
    async fn ack_dead_letters(&self, handles: &[String]) -> PortResult<()>;
}
