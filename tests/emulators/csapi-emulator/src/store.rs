//! The emulator's state: cases with their comments, attachments and version history,
//! plus the bookkeeping of the test harness (counters, faults, the request log).
//!
//! Both the public API and the control API write through the functions here, so
//! the invariants hold whoever acts: every write bumps the case's `updateTime` and
//! records a new version; times are strictly increasing so `update_time>` polling
//! never misses or double-counts a write made in the same microsecond.
//!
//! **Search lag model.** Every write appends a snapshot of the mutable part of the
//! case (`CaseVersion`) to its history. With a lag `L`, `cases.search` evaluates the
//! query against, and returns, the newest snapshot whose `updateTime` is at or before
//! `now − L`; a case created after `now − L` has no such snapshot and is omitted. So a
//! lagging search shows a consistent but stale index: old state, old update time,
//! and old comment set for free-text matching.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::EmulatorConfig;
use crate::errors::ApiError;
use crate::faults::Faults;
use crate::model::{
    Actor, AttachmentRecord, CaseRecord, CaseState, CaseVersion, CommentRecord, EnumEncoding,
    Priority, classification_display_name,
};

pub const FIRST_CASE_NUMBER: u64 = 10_000_001;
const FIRST_COMMENT_ID: u64 = 300_000_001;
/// Documented limit of `Comment.body`, in Unicode scalar values.
pub const MAX_COMMENT_CHARS: usize = 12_800;

/// One request to the public API, as received (for conformance tests).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    /// HTTP method (`GET`, `POST`, …).
    pub method: String,
    /// Percent-decoded path, e.g. `/v2/projects/p/cases/10000001:close`.
    pub path: String,
    /// Raw query string (without `?`), as sent.
    pub query: String,
    /// The body, if it parsed as JSON.
    pub body: Option<Value>,
    /// Discovery method id the request was routed to (`cases.search`, …), if any.
    pub api_method: Option<String>,
}

/// What a case is created from, by the public API or the control API.
#[derive(Debug, Clone)]
pub struct NewCase {
    pub parent: String,
    pub display_name: String,
    pub description: String,
    pub priority: Priority,
    pub classification_id: String,
    pub creator: Actor,
    pub create_time: Option<DateTime<Utc>>,
    pub time_zone: Option<String>,
    pub subscriber_email_addresses: Vec<String>,
    pub test_case: bool,
    pub language_code: Option<String>,
    pub contact_email: Option<String>,
}

#[derive(Debug)]
pub struct State {
    pub config: EmulatorConfig,
    pub cases: BTreeMap<u64, CaseRecord>,
    /// Project id → `organizations/{o}`; projects not listed belong to the configured org.
    pub project_orgs: BTreeMap<String, String>,
    pub faults: Faults,
    pub counters: BTreeMap<String, u64>,
    pub requests: Vec<RecordedRequest>,
    next_case: u64,
    next_comment: u64,
    next_attachment: u64,
    last_time: Option<DateTime<Utc>>,
}

/// `projects/{p}` or `organizations/{o}`.
pub fn is_valid_parent(parent: &str) -> bool {
    match parent.split_once('/') {
        Some((kind, id)) => {
            (kind == "projects" || kind == "organizations") && !id.is_empty() && !id.contains('/')
        }
        None => false,
    }
}

/// The case number from a case name under any valid parent, or from a bare number.
pub fn case_number(name_or_number: &str) -> Option<u64> {
    if let Ok(n) = name_or_number.parse::<u64>() {
        return Some(n);
    }
    let (parent, number) = name_or_number.rsplit_once("/cases/")?;
    if !is_valid_parent(parent) {
        return None;
    }
    number.parse().ok()
}

impl State {
    pub fn new(config: EmulatorConfig) -> Self {
        Self {
            config,
            cases: BTreeMap::new(),
            project_orgs: BTreeMap::new(),
            faults: Faults::default(),
            counters: BTreeMap::new(),
            requests: Vec::new(),
            next_case: FIRST_CASE_NUMBER,
            next_comment: FIRST_COMMENT_ID,
            next_attachment: 1,
            last_time: None,
        }
    }

    /// Clears everything but the configuration and the project → org mapping.
    pub fn reset(&mut self) {
        let config = self.config.clone();
        let orgs = std::mem::take(&mut self.project_orgs);
        *self = Self::new(config);
        self.project_orgs = orgs;
    }

    /// The current time, truncated to microseconds (the precision rendered) and
    /// strictly after every time handed out before.
    pub fn now(&mut self) -> DateTime<Utc> {
        let mut t = micros(Utc::now());
        if let Some(last) = self.last_time
            && t <= last
        {
            t = last + ChronoDuration::microseconds(1);
        }
        self.last_time = Some(t);
        t
    }

    /// The identity of the API's caller (casesync's service account).
    pub fn caller(&self) -> Actor {
        Actor::customer(&self.config.caller_display_name, &self.config.caller_email)
    }

    pub fn org_of(&self, project: &str) -> String {
        self.project_orgs
            .get(project)
            .cloned()
            .unwrap_or_else(|| self.config.organization.clone())
    }

    /// Whether a case parented by `case_parent` is under `parent`; with
    /// `children`, an organization also covers its projects (`cases.search`).
    pub fn in_scope(&self, case_parent: &str, parent: &str, children: bool) -> bool {
        if case_parent == parent {
            return true;
        }
        if !children || !parent.starts_with("organizations/") {
            return false;
        }
        match case_parent.strip_prefix("projects/") {
            Some(project) => self.org_of(project) == parent,
            None => false,
        }
    }

    /// A case by name under any `projects/*` or `organizations/*` parent (one case is
    /// reachable under several names); 404 names the resource asked for.
    pub fn case_by_name(&self, name: &str) -> Result<&CaseRecord, ApiError> {
        case_number(name)
            .and_then(|n| self.cases.get(&n))
            .ok_or_else(|| not_found_case(name))
    }

    pub fn number_by_name(&self, name: &str) -> Result<u64, ApiError> {
        self.case_by_name(name).map(|c| c.number)
    }

    pub fn create_case(&mut self, new: NewCase) -> Result<u64, ApiError> {
        if !is_valid_parent(&new.parent) {
            return Err(ApiError::bad_field(
                "parent",
                format!("Invalid parent \"{}\".", new.parent),
            ));
        }
        if classification_display_name(&new.classification_id).is_none() {
            return Err(ApiError::bad_field(
                "case.classification.id",
                format!(
                    "Invalid classification id \"{}\": use caseClassifications.search to find valid ids.",
                    new.classification_id
                ),
            ));
        }
        let now = self.now();
        let create_time = new.create_time.map(micros).unwrap_or(now);
        let number = self.next_case;
        self.next_case += 1;
        let version = CaseVersion {
            display_name: new.display_name,
            description: new.description,
            priority: new.priority,
            state: CaseState::New,
            subscriber_email_addresses: new.subscriber_email_addresses,
            escalated: false,
            update_time: create_time,
            comment_count: 0,
        };
        let record = CaseRecord {
            number,
            parent: new.parent,
            classification_id: new.classification_id,
            time_zone: new.time_zone,
            test_case: new.test_case,
            language_code: new
                .language_code
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| "en".to_string()),
            contact_email: new.contact_email,
            create_time,
            creator: new.creator,
            history: vec![version.clone()],
            current: version,
            comments: Vec::new(),
            attachments: Vec::new(),
        };
        self.cases.insert(number, record);
        Ok(number)
    }

    /// Applies `f` to a case as one write: bumps `updateTime`, records a version.
    pub fn write<R>(
        &mut self,
        number: u64,
        f: impl FnOnce(&mut CaseRecord, DateTime<Utc>) -> R,
    ) -> Result<R, ApiError> {
        if !self.cases.contains_key(&number) {
            return Err(not_found_case(&number.to_string()));
        }
        let now = self.now();
        let case = self
            .cases
            .get_mut(&number)
            .ok_or_else(|| not_found_case(&number.to_string()))?;
        let out = f(case, now);
        case.current.update_time = now;
        case.current.comment_count = case.comments.len();
        case.history.push(case.current.clone());
        Ok(out)
    }

    /// Adds a comment after checking the documented body rules.
    pub fn add_comment(
        &mut self,
        number: u64,
        body: &str,
        creator: Actor,
    ) -> Result<u64, ApiError> {
        validate_comment_body(body)?;
        let id = self.next_comment;
        self.next_comment += 1;
        let body = body.to_string();
        self.write(number, move |case, now| {
            case.comments.push(CommentRecord {
                id,
                body,
                create_time: now,
                creator,
            });
        })?;
        Ok(id)
    }

    pub fn add_attachment(
        &mut self,
        number: u64,
        filename: &str,
        mime_type: &str,
        data: Bytes,
        creator: Actor,
    ) -> Result<String, ApiError> {
        if filename.is_empty() {
            return Err(ApiError::bad_field(
                "attachment.filename",
                "Attachment filename is required.",
            ));
        }
        let seq = self.next_attachment;
        self.next_attachment += 1;
        // 18 characters, shaped like the documented ids (`0684M00000P3h1fQAB`).
        let id = format!("0684M0000{seq:06}QAB");
        let filename = filename.to_string();
        let mime_type = mime_type.to_string();
        let att_id = id.clone();
        self.write(number, move |case, now| {
            case.attachments.push(AttachmentRecord {
                seq,
                id: att_id,
                filename,
                mime_type,
                data,
                create_time: now,
                creator,
            });
        })?;
        Ok(id)
    }

    pub fn set_priority(&mut self, number: u64, p: Priority) -> Result<(), ApiError> {
        self.write(number, |case, _| case.current.priority = p)
    }

    pub fn set_state(&mut self, number: u64, s: CaseState) -> Result<(), ApiError> {
        self.write(number, |case, _| case.current.state = s)
    }

    /// The case as the control API shows it: string enums, comments (oldest first)
    /// and attachment metadata included.
    pub fn control_case_json(&self, case: &CaseRecord) -> Value {
        let mut v = case.to_json(&case.current, EnumEncoding::Names);
        v["comments"] = Value::Array(case.comments.iter().map(|c| case.comment_json(c)).collect());
        v["attachments"] = Value::Array(
            case.attachments
                .iter()
                .map(|a| case.attachment_json(a))
                .collect(),
        );
        v
    }
}

pub fn validate_comment_body(body: &str) -> Result<(), ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_field(
            "comment.body",
            "Comment body is required and must not be empty.",
        ));
    }
    let n = body.chars().count();
    if n > MAX_COMMENT_CHARS {
        return Err(ApiError::bad_field(
            "comment.body",
            format!("Comment body is {n} characters long; the maximum is {MAX_COMMENT_CHARS}."),
        ));
    }
    Ok(())
}

fn not_found_case(name: &str) -> ApiError {
    ApiError::not_found(format!("Case \"{name}\" was not found."))
}

/// Truncates to whole microseconds, the precision the API renders.
pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State::new(EmulatorConfig::default())
    }

    fn new_case(parent: &str) -> NewCase {
        NewCase {
            parent: parent.into(),
            display_name: "d".into(),
            description: "x".into(),
            priority: Priority::P2,
            classification_id: crate::model::default_classification_id().into(),
            creator: Actor::customer("c", "c@example.com"),
            create_time: None,
            time_zone: None,
            subscriber_email_addresses: vec![],
            test_case: false,
            language_code: None,
            contact_email: None,
        }
    }

    #[test]
    fn names_resolve_under_any_parent() {
        assert_eq!(case_number("projects/p/cases/10000001"), Some(10_000_001));
        assert_eq!(
            case_number("organizations/1/cases/10000001"),
            Some(10_000_001)
        );
        assert_eq!(case_number("10000001"), Some(10_000_001));
        assert_eq!(case_number("folders/1/cases/10000001"), None);
        assert_eq!(case_number("projects/p/cases/abc"), None);
    }

    #[test]
    fn writes_bump_update_time_and_record_versions() {
        let mut s = state();
        let n = s.create_case(new_case("projects/demo-project")).unwrap();
        assert_eq!(n, FIRST_CASE_NUMBER);
        let t0 = s.cases[&n].current.update_time;
        s.add_comment(n, "hello", s.caller()).unwrap();
        let t1 = s.cases[&n].current.update_time;
        assert!(t1 > t0);
        assert_eq!(s.cases[&n].history.len(), 2);
        assert_eq!(s.cases[&n].history[1].comment_count, 1);
        assert!(s.add_comment(n, "", s.caller()).is_err());
        assert!(s.add_comment(n, &"x".repeat(12_801), s.caller()).is_err());
        assert!(s.add_comment(n, &"é".repeat(12_800), s.caller()).is_ok());
    }

    #[test]
    fn organizations_cover_their_projects() {
        let mut s = state();
        s.project_orgs
            .insert("other".into(), "organizations/42".into());
        assert!(s.in_scope("projects/demo-project", "organizations/123456789012", true));
        assert!(!s.in_scope("projects/demo-project", "organizations/123456789012", false));
        assert!(!s.in_scope("projects/other", "organizations/123456789012", true));
        assert!(s.in_scope("projects/other", "organizations/42", true));
        assert!(!s.in_scope("projects/a", "projects/b", true));
    }

    #[test]
    fn time_is_strictly_increasing() {
        let mut s = state();
        let mut last = s.now();
        for _ in 0..1000 {
            let t = s.now();
            assert!(t > last);
            last = t;
        }
    }
}
