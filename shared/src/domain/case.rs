//! The cases, comments and attachments of both sides, as the engine sees them. Adapters
//! fill these from their APIs; the engine never sees a wire format.

use super::Priority;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who wrote something on the Google side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GoogleActor {
    pub display_name: String,
    pub email: Option<String>,
    pub google_support: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoogleCase {
    /// Full resource name, e.g. `projects/p/cases/123`.
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub classification_id: String,
    /// E.g. `Compute \u{3e} Compute Engine`; the include filter matches its prefix.
    pub classification_display_name: String,
    pub priority: Priority,
    pub closed: bool,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub creator: GoogleActor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewGoogleCase {
    pub display_name: String,
    pub description: String,
    pub classification_id: String,
    pub priority: Priority,
    pub subscriber_emails: Vec<String>,
    pub test_case: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoogleComment {
    /// Full resource name, `…/cases/123/comments/456`.
    pub name: String,
    pub body: String,
    pub create_time: DateTime<Utc>,
    pub creator: GoogleActor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoogleAttachment {
    pub name: String,
    pub filename: String,
    pub mime_type: String,
    pub size_bytes: u64,
    pub create_time: DateTime<Utc>,
    pub creator: GoogleActor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrmCase {
    pub id: String,
    pub summary: String,
    pub description: String,
    /// `None` when the CRM holds no priority casesync can map.
    pub priority: Option<Priority>,
    pub closed: bool,
    pub sync_flag: bool,
    /// The CRM field holding the Google case name.
    pub google_case_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// A link a person can open, for logs and for the Google description.
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCrmCase {
    pub summary: String,
    /// Already carries `CONTENT MIRRORED FROM GOOGLE SUPPORT:` and the link.
    pub description: String,
    pub priority: Priority,
    /// The Google case's full name, written into the CRM's Google-name field.
    pub google_case_name: String,
    /// The case number, for CRMs that also carry it as a label (Jira, docs/INVARIANTS.md#create-intents-and-the-lookup-lag).
    pub google_case_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrmComment {
    pub id: String,
    pub body: String,
    pub author_name: String,
    /// Written by casesync's own CRM user (docs/INVARIANTS.md#own-identity). Only these count as mirrors.
    pub by_connector: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrmAttachment {
    pub id: String,
    pub filename: String,
    pub mime_type: String,
    pub size_bytes: u64,
    pub author_name: String,
    pub by_connector: bool,
    pub created_at: DateTime<Utc>,
}

/// An attachment on its way from one side to the other: metadata plus a byte stream, so a
/// transfer's memory does not grow with the file (docs/INVARIANTS.md#attachment-limits).
pub struct AttachmentUpload {
    pub filename: String,
    pub mime_type: String,
    pub size_bytes: u64,
    pub body: crate::ports::ByteStream,
    /// The marker naming the source attachment (`[Google Attachment {id} by {name}]`), for
    /// CRMs that attach files through a comment, which then carries it (docs/INVARIANTS.md#markers).
    pub marker: Option<String>,
}

impl std::fmt::Debug for AttachmentUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentUpload")
            .field("size_bytes", &self.size_bytes)
            .finish_non_exhaustive()
    }
}
