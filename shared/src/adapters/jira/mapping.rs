//! Jira's wire shapes and their translation into the domain types: issues into
//! `CrmCase`, comments and attachments into theirs, authorship into `by_connector`, Jira's
//! timestamps (`2026-11-29T20:04:05.123+0000`, an offset without a colon that RFC 3339
//! parsers reject) into UTC.

use super::adf;
use super::config::{JiraConfig, SyncFlagKind};
use crate::domain::{CrmAttachment, CrmCase, CrmComment};
use crate::error::{ErrorClass, PortError, PortResult};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Parses a Jira timestamp; also accepts RFC 3339 (`…Z`, `…+00:00`).
pub fn parse_jira_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A reply Jira sent that casesync cannot read. Not the message's fault and not fixed by
/// dead-lettering it: systemic, so an operator hears of it and the sync is retried.
pub fn undecodable(operation: &str, what: impl Into<String>) -> PortError {
    PortError::Failed {
        operation: operation.to_string(),
        class: ErrorClass::Systemic,
        status: None,
        message: format!("unexpected reply from Jira: {}", what.into()),
        retry_after: None,
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    #[serde(rename = "accountId", default)]
    pub account_id: Option<String>,
    #[serde(rename = "displayName", default)]
    pub display_name: Option<String>,
    #[serde(rename = "timeZone", default)]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IssueBean {
    pub id: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CreatedIssue {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SearchPage {
    #[serde(default)]
    pub issues: Vec<IssueBean>,
    #[serde(rename = "nextPageToken", default)]
    pub next_page_token: Option<String>,
    #[serde(rename = "isLast", default)]
    pub is_last: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Comment {
    pub id: String,
    #[serde(default)]
    pub author: Option<User>,
    #[serde(default)]
    pub body: Value,
    pub created: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CommentPage {
    #[serde(default)]
    pub comments: Vec<Comment>,
    #[serde(default)]
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Attachment {
    /// A string in `Attachment`, an integer in `AttachmentMetadata`: accept both.
    pub id: Value,
    pub filename: String,
    #[serde(default)]
    pub author: Option<User>,
    pub created: String,
    #[serde(default)]
    pub size: u64,
    #[serde(rename = "mimeType", default)]
    pub mime_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Transition {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Transitions {
    #[serde(default)]
    pub transitions: Vec<Transition>,
}

/// Who casesync is on the site.
#[derive(Debug, Clone)]
pub struct Identity {
    pub account_id: String,
}

impl Identity {
    fn owns(&self, author: Option<&User>) -> bool {
        author
            .and_then(|a| a.account_id.as_deref())
            .is_some_and(|id| id == self.account_id)
    }
}

fn author_name(author: Option<&User>) -> String {
    author
        .and_then(|a| a.display_name.clone().or_else(|| a.account_id.clone()))
        .unwrap_or_else(|| "Unknown user".to_string())
}

fn time(operation: &str, what: &str, text: &str) -> PortResult<DateTime<Utc>> {
    parse_jira_time(text).ok_or_else(|| undecodable(operation, format!("{what} is not a time")))
}

/// The fields an issue is read with.
pub fn case_fields(config: &JiraConfig) -> Vec<String> {
    [
        "summary",
        "description",
        "status",
        "priority",
        "labels",
        "created",
        "updated",
        config.sync_flag_field.as_str(),
        config.google_case_field.as_str(),
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

/// Whether the flag field's value holds the configured option.
pub fn flag_is_set(config: &JiraConfig, value: Option<&Value>) -> bool {
    let option_matches = |v: &Value| {
        v.get("value").and_then(Value::as_str) == Some(config.sync_flag_value.as_str())
            || v.as_str() == Some(config.sync_flag_value.as_str())
    };
    match (config.sync_flag_kind, value) {
        (_, None | Some(Value::Null)) => false,
        (SyncFlagKind::Checkbox, Some(Value::Array(items))) => items.iter().any(option_matches),
        (_, Some(v)) => option_matches(v),
    }
}

/// The value that sets the flag.
pub fn flag_value(config: &JiraConfig) -> Value {
    let option = serde_json::json!({ "value": config.sync_flag_value });
    match config.sync_flag_kind {
        SyncFlagKind::Checkbox => Value::Array(vec![option]),
        SyncFlagKind::Select => option,
    }
}

pub fn to_case(operation: &str, config: &JiraConfig, issue: &IssueBean) -> PortResult<CrmCase> {
    let f = &issue.fields;
    let text = |name: &str| f.get(name).and_then(Value::as_str).map(str::to_string);
    let created = text("created").ok_or_else(|| undecodable(operation, "issue without created"))?;
    let updated = text("updated").ok_or_else(|| undecodable(operation, "issue without updated"))?;
    let category = f
        .get("status")
        .and_then(|s| s.get("statusCategory"))
        .and_then(|c| c.get("key"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let priority = f
        .get("priority")
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .and_then(|name| config.priorities.from_jira(name));
    let google_case_name = text(&config.google_case_field)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let url = (!issue.key.is_empty()).then(|| format!("{}/browse/{}", config.base(), issue.key));
    Ok(CrmCase {
        id: issue.id.clone(),
        summary: text("summary").unwrap_or_default(),
        description: f
            .get("description")
            .map(adf::adf_to_text)
            .unwrap_or_default(),
        priority,
        closed: config
            .closed_status_categories
            .iter()
            .any(|c| c.eq_ignore_ascii_case(category)),
        sync_flag: flag_is_set(config, f.get(&config.sync_flag_field)),
        google_case_name,
        created_at: time(operation, "created", &created)?,
        updated_at: time(operation, "updated", &updated)?,
        url,
    })
}

pub fn to_comment(operation: &str, me: &Identity, c: &Comment) -> PortResult<CrmComment> {
    Ok(CrmComment {
        id: c.id.clone(),
        body: adf::adf_to_text(&c.body),
        author_name: author_name(c.author.as_ref()),
        by_connector: me.owns(c.author.as_ref()),
        created_at: time(operation, "comment created", &c.created)?,
    })
}

pub fn to_attachment(operation: &str, me: &Identity, a: &Attachment) -> PortResult<CrmAttachment> {
    let id = match &a.id {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(undecodable(operation, "attachment without id")),
    };
    Ok(CrmAttachment {
        id,
        filename: a.filename.clone(),
        mime_type: a
            .mime_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into()),
        size_bytes: a.size,
        author_name: author_name(a.author.as_ref()),
        by_connector: me.owns(a.author.as_ref()),
        created_at: time(operation, "attachment created", &a.created)?,
    })
}

/// A summary Jira accepts: one line, at most 255 characters.
pub fn summary(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    let summary: String = trimmed.chars().take(255).collect();
    if summary.is_empty() {
        "(no summary)".to_string()
    } else {
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::{JiraAuth, JiraSite, Secret};
    use super::*;
    use crate::domain::Priority;
    use chrono::TimeZone;
    use serde_json::json;

    fn config() -> JiraConfig {
        JiraConfig::new(JiraSite {
            base_url: "https://example.atlassian.net/",
            auth: JiraAuth::Bearer {
                token: Secret::new("t"),
            },
            project_key: "SUP",
            issue_type: "Service Request",
            sync_flag_field: "customfield_10050",
            google_case_field: "customfield_10051",
        })
    }

    #[test]
    fn jira_timestamps_parse_with_and_without_a_colon() {
        let want = Utc.with_ymd_and_hms(2026, 11, 29, 20, 4, 5).unwrap()
            + chrono::Duration::milliseconds(123);
        assert_eq!(parse_jira_time("2026-11-29T20:04:05.123+0000"), Some(want));
        assert_eq!(parse_jira_time("2026-11-29T21:04:05.123+0100"), Some(want));
        assert_eq!(parse_jira_time("2026-11-29T15:04:05.123-0500"), Some(want));
        assert_eq!(parse_jira_time("2026-11-30T01:34:05.123+0530"), Some(want));
        assert_eq!(parse_jira_time("2026-11-29T20:04:05.123Z"), Some(want));
        assert_eq!(parse_jira_time("2026-11-29T21:04:05.123+01:00"), Some(want));
        assert_eq!(
            parse_jira_time("2026-11-29T20:04:05+0000"),
            Some(Utc.with_ymd_and_hms(2026, 11, 29, 20, 4, 5).unwrap())
        );
        assert_eq!(parse_jira_time("2026-11-29 20:04"), None);
        assert_eq!(parse_jira_time(""), None);
    }

    #[test]
    fn an_issue_becomes_a_case() {
        let c = config();
        let issue: IssueBean = serde_json::from_value(json!({
            "id": "10042", "key": "SUP-42", "self": "x",
            "fields": {
                "summary": "VM down",
                "description": adf::text_to_adf("line 1\nline 2"),
                "status": {"name": "Done", "statusCategory": {"key": "done"}},
                "priority": {"id": "2", "name": "High"},
                "created": "2026-11-29T20:04:05.123+0100",
                "updated": "2026-11-29T21:00:00.000+0100",
                "customfield_10050": [{"id": "10100", "value": "Yes"}],
                "customfield_10051": "projects/p/cases/123",
            }
        }))
        .unwrap();
        let case = to_case("op", &c, &issue).unwrap();
        assert_eq!(case.id, "10042");
        assert_eq!(case.summary, "VM down");
        assert_eq!(case.description, "line 1\nline 2");
        assert_eq!(case.priority, Some(Priority::P1));
        assert!(case.closed);
        assert!(case.sync_flag);
        assert_eq!(
            case.google_case_name.as_deref(),
            Some("projects/p/cases/123")
        );
        assert_eq!(
            case.created_at,
            Utc.with_ymd_and_hms(2026, 11, 29, 19, 4, 5).unwrap()
                + chrono::Duration::milliseconds(123)
        );
        assert_eq!(
            case.url.as_deref(),
            Some("https://example.atlassian.net/browse/SUP-42")
        );

        let bare: IssueBean = serde_json::from_value(json!({
            "id": "1", "key": "SUP-1",
            "fields": {"created": "2026-11-29T20:04:05.123+0000", "updated": "2026-11-29T20:04:05.123+0000",
                       "status": {"statusCategory": {"key": "indeterminate"}},
                       "priority": {"name": "Unheard of"},
                       "customfield_10050": null, "customfield_10051": "  "}
        }))
        .unwrap();
        let case = to_case("op", &c, &bare).unwrap();
        assert!(!case.closed && !case.sync_flag);
        assert_eq!(case.priority, None);
        assert_eq!(case.google_case_name, None);

        let broken: IssueBean = serde_json::from_value(
            json!({"id": "1", "fields": {"created": "yesterday", "updated": "x"}}),
        )
        .unwrap();
        let err = to_case("jira.get_issue", &c, &broken).unwrap_err();
        assert_eq!(err.class(), ErrorClass::Systemic);
        assert!(err.to_string().contains("jira.get_issue"));
    }

    #[test]
    fn the_flag_reads_in_either_representation() {
        let mut c = config();
        assert!(flag_is_set(&c, Some(&json!([{"value": "Yes"}]))));
        assert!(flag_is_set(&c, Some(&flag_value(&c))));
        assert!(!flag_is_set(&c, Some(&json!([]))));
        assert!(!flag_is_set(&c, Some(&json!([{"value": "No"}]))));
        assert!(!flag_is_set(&c, None));
        c.sync_flag_kind = SyncFlagKind::Select;
        assert_eq!(flag_value(&c), json!({"value": "Yes"}));
        assert!(flag_is_set(&c, Some(&json!({"value": "Yes", "id": "1"}))));
        assert!(!flag_is_set(&c, Some(&json!({"value": "No"}))));
    }

    #[test]
    fn authorship_decides_by_connector() {
        let me = Identity {
            account_id: "casesync-bot".into(),
        };
        let comment = |account: Option<&str>| Comment {
            id: "1".into(),
            author: account.map(|a| User {
                account_id: Some(a.into()),
                display_name: Some("Somebody".into()),
                time_zone: None,
            }),
            body: adf::text_to_adf("[Google Comment 1 by G]\nx"),
            created: "2026-11-29T20:04:05.123+0000".into(),
        };
        let own = to_comment("op", &me, &comment(Some("casesync-bot"))).unwrap();
        assert!(own.by_connector);
        assert_eq!(own.body, "[Google Comment 1 by G]\nx");
        assert!(
            !to_comment("op", &me, &comment(Some("agent-1")))
                .unwrap()
                .by_connector
        );
        let anonymous = to_comment("op", &me, &comment(None)).unwrap();
        assert!(!anonymous.by_connector);
        assert_eq!(anonymous.author_name, "Unknown user");

        let a: Attachment = serde_json::from_value(json!({
            "id": 10001, "filename": "a.txt", "created": "2026-11-29T20:04:05.123+0000",
            "size": 3, "author": {"accountId": "casesync-bot", "displayName": "casesync"}
        }))
        .unwrap();
        let a = to_attachment("op", &me, &a).unwrap();
        assert_eq!(a.id, "10001");
        assert!(a.by_connector);
        assert_eq!(a.mime_type, "application/octet-stream");
    }

    #[test]
    fn summaries_are_one_line_and_short_enough() {
        assert_eq!(summary("a\nb\r\nc"), "a b  c");
        assert_eq!(summary(&"x".repeat(300)).chars().count(), 255);
        assert_eq!(summary("  "), "(no summary)");
    }
}
