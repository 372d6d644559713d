//! The emulated site's data: issues with their comments and attachment metadata, the
//! fixed catalogs a fresh Jira Cloud site ships with (priorities, issue types,
//! resolutions), and the search-index view of an issue. It is kept free of HTTP so the
//! REST handlers, the control API and the Rust API all work on one model.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use crate::config::StatusCategory;

/// The one project's id (Jira project ids are numeric strings).
pub const PROJECT_ID: &str = "10000";
pub const PROJECT_NAME: &str = "Customer Support";
/// Option id of the sync flag's single option.
pub const SYNC_OPTION_ID: &str = "10100";
pub const SYNC_OPTION_VALUE: &str = "Yes";
/// Upper bound of one uploaded file; larger uploads get 413 like Jira's size limit.
pub const MAX_ATTACHMENT_BYTES: usize = 256 * 1024 * 1024;

/// Default Jira Cloud priorities, ids 1..5, highest first.
pub const PRIORITIES: [(&str, &str, &str); 5] = [
    ("1", "Highest", "#d04437"),
    ("2", "High", "#f15C75"),
    ("3", "Medium", "#f79232"),
    ("4", "Low", "#707070"),
    ("5", "Lowest", "#999999"),
];
pub const DEFAULT_PRIORITY_ID: &str = "3";

/// Issue types of the service project: (id, name).
pub const ISSUE_TYPES: [(&str, &str); 3] = [
    ("10001", "Task"),
    ("10002", "Service Request"),
    ("10003", "Incident"),
];
pub const DEFAULT_ISSUE_TYPE_ID: &str = "10002";

/// Resolutions: (id, name).
pub const RESOLUTIONS: [(&str, &str); 4] = [
    ("10000", "Done"),
    ("10001", "Won't Do"),
    ("10002", "Duplicate"),
    ("10003", "Cannot Reproduce"),
];
pub const DEFAULT_RESOLUTION_ID: &str = "10000";

pub fn priority_by_name_or_id(value: &str) -> Option<(&'static str, &'static str)> {
    PRIORITIES
        .iter()
        .find(|(id, name, _)| *id == value || name.eq_ignore_ascii_case(value))
        .map(|(id, name, _)| (*id, *name))
}

pub fn priority_name(id: &str) -> &'static str {
    PRIORITIES
        .iter()
        .find(|(pid, _, _)| *pid == id)
        .map(|(_, name, _)| *name)
        .unwrap_or("Medium")
}

pub fn issue_type_by_name_or_id(value: &str) -> Option<(&'static str, &'static str)> {
    ISSUE_TYPES
        .iter()
        .find(|(id, name)| *id == value || name.eq_ignore_ascii_case(value))
        .copied()
}

pub fn resolution_by_name_or_id(value: &str) -> Option<(&'static str, &'static str)> {
    RESOLUTIONS
        .iter()
        .find(|(id, name)| *id == value || name.eq_ignore_ascii_case(value))
        .copied()
}

/// The component id Jira would show for the n-th configured component.
pub fn component_id(index: usize) -> String {
    (10000 + index).to_string()
}

/// Now, cut to the millisecond, because Jira stores and renders milliseconds; keeping
/// more would let a stored time differ from the one a client read.
pub fn now_ms() -> DateTime<Utc> {
    truncate_ms(Utc::now())
}

pub fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(t.timestamp_millis())
        .single()
        .unwrap_or(t)
}

/// Jira's timestamp format: `2026-11-29T20:04:05.123+0000`.
pub fn jira_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: u64,
    pub author: String,
    pub update_author: String,
    /// The ADF document as stored.
    pub body: Value,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub properties: BTreeMap<String, Value>,
    pub visibility: Option<Value>,
}

impl Comment {
    /// JSM marks internal notes with the comment property `sd.public.comment` =
    /// `{"internal": true}`; everything else is visible to the customer.
    pub fn is_internal(&self) -> bool {
        self.properties
            .get("sd.public.comment")
            .and_then(|v| v.get("internal"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub id: u64,
    pub filename: String,
    pub mime_type: String,
    pub size: u64,
    pub author: String,
    pub created: DateTime<Utc>,
}

/// What the search index knows about an issue at one moment; JQL is evaluated on this.
#[derive(Debug, Clone)]
pub struct SearchDoc {
    pub number: u64,
    pub key: String,
    pub summary: String,
    pub description: String,
    pub status_id: String,
    pub category: StatusCategory,
    pub priority_id: String,
    pub issue_type_id: String,
    pub labels: Vec<String>,
    pub components: Vec<String>,
    pub sync_flag: bool,
    pub google_case: Option<String>,
    pub reporter: String,
    pub creator: String,
    pub resolution_id: Option<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub comments_text: String,
}

#[derive(Debug, Clone)]
pub struct Issue {
    pub id: u64,
    pub number: u64,
    pub key: String,
    pub summary: String,
    pub description: Option<Value>,
    pub issue_type_id: String,
    pub status_id: String,
    pub priority_id: String,
    pub labels: Vec<String>,
    pub components: Vec<String>,
    pub sync_flag: bool,
    pub google_case: Option<String>,
    pub reporter: String,
    pub creator: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub status_changed: DateTime<Utc>,
    pub resolution_id: Option<String>,
    pub resolution_date: Option<DateTime<Utc>>,
    pub comments: Vec<Comment>,
    pub attachments: Vec<Attachment>,
    /// Snapshots of the issue as the search index saw it, oldest first; a search under
    /// simulated index lag reads the newest one old enough.
    pub index: VecDeque<(DateTime<Utc>, SearchDoc)>,
}

impl Issue {
    pub fn description_text(&self) -> String {
        self.description
            .as_ref()
            .map(crate::adf::adf_to_text)
            .unwrap_or_default()
    }

    pub fn search_doc(&self, category: StatusCategory) -> SearchDoc {
        SearchDoc {
            number: self.number,
            key: self.key.clone(),
            summary: self.summary.clone(),
            description: self.description_text(),
            status_id: self.status_id.clone(),
            category,
            priority_id: self.priority_id.clone(),
            issue_type_id: self.issue_type_id.clone(),
            labels: self.labels.clone(),
            components: self.components.clone(),
            sync_flag: self.sync_flag,
            google_case: self.google_case.clone(),
            reporter: self.reporter.clone(),
            creator: self.creator.clone(),
            resolution_id: self.resolution_id.clone(),
            created: self.created,
            updated: self.updated,
            comments_text: self
                .comments
                .iter()
                .map(|c| crate::adf::adf_to_text(&c.body))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_jira_timestamps() {
        let t = Utc
            .with_ymd_and_hms(2026, 11, 29, 20, 4, 5)
            .single()
            .unwrap()
            + chrono::Duration::milliseconds(123);
        assert_eq!(jira_time(t), "2026-11-29T20:04:05.123+0000");
    }

    #[test]
    fn looks_up_catalogs_by_name_or_id() {
        assert_eq!(priority_by_name_or_id("high"), Some(("2", "High")));
        assert_eq!(priority_by_name_or_id("5"), Some(("5", "Lowest")));
        assert_eq!(priority_by_name_or_id("P1"), None);
        assert_eq!(issue_type_by_name_or_id("task"), Some(("10001", "Task")));
        assert_eq!(resolution_by_name_or_id("Done"), Some(("10000", "Done")));
    }
}
