//! The six task bodies (docs/ARCHITECTURE.md#task-bodies), written once against the ports and an injected clock.
//! The local runner and the Cloud Run functions call exactly these.

mod cleanup;
mod outages;
mod poll;
mod sides;
mod sync;
pub mod tolerance;

use crate::clock::Clock;
use crate::domain::{GoogleCase, Side};
use crate::error::{ErrorClass, PortError};
use crate::ports::{Crm, MappingStore, SupportApi, SyncQueue};
use chrono::Duration;
use std::sync::Arc;

pub use cleanup::CleanupReport;
pub use outages::OutageReport;
pub use poll::PollReport;
pub use sync::SyncReport;

/// Which Google cases reach the CRM (`sync.include`). Empty lists let everything in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncludeFilter {
    /// Project ids or numbers, as they appear in case names.
    pub projects: Vec<String>,
    /// Prefixes of the classification display name, e.g. `Compute > `.
    pub classification_prefixes: Vec<String>,
}

impl IncludeFilter {
    pub fn admits(&self, case: &GoogleCase) -> bool {
        let project_ok = self.projects.is_empty()
            || case
                .name
                .strip_prefix("projects/")
                .and_then(|rest| rest.split('/').next())
                .is_some_and(|p| self.projects.iter().any(|want| want == p));
        let classification_ok = self.classification_prefixes.is_empty()
            || self.classification_prefixes.iter().any(|prefix| {
                case.classification_display_name
                    .starts_with(prefix.as_str())
            });
        project_ok && classification_ok
    }
}

/// What the task bodies are told by configuration (README.md#configuration).
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// The organization or project that poll-google searches.
    pub google_parent: String,
    /// Where Google cases for CRM cases are created.
    pub google_create_parent: String,
    pub classification_id: String,
    /// casesync's own Google e-mails: only items by these count as mirrors (docs/INVARIANTS.md#own-identity).
    pub own_google_identities: Vec<String>,
    pub subscriber_emails: Vec<String>,
    pub test_case: bool,
    pub google_polling_window: Duration,
    pub company_polling_window: Duration,
    /// Cases created longer ago than this are never picked up.
    pub pickup_max_age: Duration,
    /// Mappings resolved longer ago than this are deleted.
    pub cleanup_after: Duration,
    /// The side whose priority wins when both changed.
    pub conflict_winner: Side,
    /// How long after a create intent search may still not show the created case.
    pub lookup_lag: Duration,
    pub max_attachment_bytes: u64,
    /// How long a sync holds its lease: the function's timeout.
    pub lease_duration: Duration,
    pub include: IncludeFilter,
    /// At most this many lagging syncs are re-enqueued per outage scan.
    pub outage_requeue_batch: usize,
    /// Clock skew allowed when reading a target back (docs/INVARIANTS.md#what-counts-as-mirrored).
    pub clock_skew: Duration,
    /// A person's link to a Google case, `{base}{case number}`.
    pub google_case_url_base: String,
    /// How long after its update time a change may still be missing from what a read
    /// returns (search and listing lag). A poll skips an unchanged case only if its last
    /// sync began reading at least this long (or the source's timestamp granularity, if
    /// coarser) after the case's update time.
    pub listing_lag: Duration,
    /// A suspect mapping (its counterpart answered 404) is unlinked only after this many
    /// 404s spanning at least `unlink_after`.
    pub unlink_after_checks: u32,
    pub unlink_after: Duration,
    /// Unlinked and never-linked mappings without a successful sync for this long are
    /// resolved, so cleanup removes them.
    pub abandon_after: Duration,
}

impl SyncSettings {
    /// Defaults for the seed's numbers; the parents and identities must still be set.
    pub fn with_defaults(google_parent: &str, own_identity: &str) -> Self {
        SyncSettings {
            google_parent: google_parent.to_string(),
            google_create_parent: google_parent.to_string(),
            classification_id: String::new(),
            own_google_identities: vec![own_identity.to_string()],
            subscriber_emails: Vec::new(),
            test_case: false,
            google_polling_window: Duration::minutes(30),
            company_polling_window: Duration::minutes(5),
            pickup_max_age: Duration::days(30),
            cleanup_after: Duration::days(30),
            conflict_winner: Side::Google,
            lookup_lag: Duration::minutes(10),
            max_attachment_bytes: 50 * 1024 * 1024,
            lease_duration: Duration::seconds(540),
            include: IncludeFilter::default(),
            outage_requeue_batch: 100,
            clock_skew: Duration::minutes(5),
            google_case_url_base: "https://console.cloud.google.com/support/cases/detail/v2/"
                .into(),
            listing_lag: Duration::seconds(5),
            unlink_after_checks: 3,
            unlink_after: Duration::hours(6),
            abandon_after: Duration::days(30),
        }
    }

    pub fn polling_window(&self, side: Side) -> Duration {
        match side {
            Side::Google => self.google_polling_window,
            Side::Company => self.company_polling_window,
        }
    }

    pub fn is_own_google_identity(&self, email: Option<&str>) -> bool {
        email.is_some_and(|e| {
            self.own_google_identities
                .iter()
                .any(|own| own.eq_ignore_ascii_case(e))
        })
    }
}

/// A task's failure.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Port(#[from] PortError),
    /// detect-outages found lagging cases: answer 5xx so monitoring sees it (docs/ARCHITECTURE.md#detect-outages).
    #[error("sync outage detected on {lagging} case(s)")]
    OutageDetected {
        lagging: usize,
        report: OutageReport,
    },
}

impl TaskError {
    pub fn class(&self) -> ErrorClass {
        match self {
            TaskError::Port(e) => e.class(),
            TaskError::OutageDetected { .. } => ErrorClass::Retryable,
        }
    }
}

/// The task bodies with their ports. Cheap to clone; one per process.
#[derive(Clone)]
pub struct Engine {
    pub support: Arc<dyn SupportApi>,
    pub crm: Arc<dyn Crm>,
    pub store: Arc<dyn MappingStore>,
    pub queue: Arc<dyn SyncQueue>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<SyncSettings>,
}

#[cfg(test)]
mod tests;
