//! The emulator's whole mutable state behind one lock: issues, blobs, users, injected
//! faults, counters and the request log. Every change to an issue goes through here so
//! that `updated` is bumped and the search index snapshot is taken in one place, the way
//! Jira re-indexes an issue on every change.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{JiraEmulatorConfig, JiraStatus, JiraTransition, JiraUser, StatusCategory};
use crate::fields::Draft;
use crate::model::{
    Attachment, Comment, DEFAULT_ISSUE_TYPE_ID, DEFAULT_RESOLUTION_ID, Issue, SearchDoc,
};

/// How many requests the log keeps; older ones are dropped so a long sandbox run does not
/// grow without bound.
const REQUEST_LOG_CAPACITY: usize = 20_000;

/// One request as the emulator saw it, for OpenAPI conformance tests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The OpenAPI operationId the request was routed to.
    pub operation: Option<String>,
    /// Headers that matter for conformance: content-type, accept, x-atlassian-token,
    /// x-experimentalapi, and the authorization scheme (never the secret).
    pub headers: BTreeMap<String, String>,
    /// The JSON body, if the request had one (a body that is not valid JSON is kept as a
    /// string).
    pub body: Option<Value>,
    pub status: u16,
    /// The authenticated caller, if authentication succeeded.
    pub account_id: Option<String>,
}

/// A fault to inject; the control API's `POST /_control/faults` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct FaultSpec {
    /// operationId to fail, or `*` for every operation. Empty with only `latencyMs` /
    /// `searchLagMs` set means "no failure, just change those".
    pub operation: String,
    /// Status to answer (default 503).
    pub status: Option<u16>,
    /// How many matching requests to fail (default 1).
    pub count: Option<u32>,
    /// Perform the request, then answer the failure status (an unknown outcome).
    pub lost_reply: bool,
    /// `Retry-After` seconds (429 gets 1 by default).
    pub retry_after_seconds: Option<u64>,
    /// Delay before every API answer from now on.
    pub latency_ms: Option<u64>,
    /// How far the search index lags behind writes from now on.
    pub search_lag_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FaultRule {
    pub operation: String,
    pub status: u16,
    pub remaining: u32,
    pub lost_reply: bool,
    pub retry_after_seconds: Option<u64>,
}

pub(crate) struct State {
    pub config: JiraEmulatorConfig,
    pub tz: Tz,
    pub issues: BTreeMap<u64, Issue>,
    /// Upper-cased key → issue id.
    pub keys: HashMap<String, u64>,
    pub next_issue_id: u64,
    pub next_issue_number: u64,
    pub next_comment_id: u64,
    pub next_attachment_id: u64,
    pub blobs: HashMap<u64, Bytes>,
    /// People named by control calls who are not configured users (JSM customers).
    pub adhoc_users: BTreeMap<String, JiraUser>,
    pub faults: Vec<FaultRule>,
    pub latency_ms: u64,
    pub search_lag_ms: u64,
    pub counters: BTreeMap<String, u64>,
    pub request_log: VecDeque<RecordedRequest>,
    /// Base URL used in `self` links when no request tells us the host (library calls).
    pub base_url: String,
    /// Signs self-authorising media download links.
    pub media_secret: u64,
}

impl State {
    pub fn new(config: JiraEmulatorConfig) -> Self {
        let tz = config.time_zone.parse::<Tz>().unwrap_or_else(|_| {
            tracing::warn!(
                time_zone = %config.time_zone,
                "unknown time zone in jira emulator config, using UTC"
            );
            Tz::UTC
        });
        let media_secret = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        State {
            config,
            tz,
            issues: BTreeMap::new(),
            keys: HashMap::new(),
            next_issue_id: 10001,
            next_issue_number: 1,
            next_comment_id: 10000,
            next_attachment_id: 10000,
            blobs: HashMap::new(),
            adhoc_users: BTreeMap::new(),
            faults: Vec::new(),
            latency_ms: 0,
            search_lag_ms: 0,
            counters: BTreeMap::new(),
            request_log: VecDeque::new(),
            base_url: "http://jira.invalid".to_string(),
            media_secret,
        }
    }

    /// Back to a fresh site with the same configuration and base URL.
    pub fn reset(&mut self) {
        let base_url = std::mem::take(&mut self.base_url);
        let config = self.config.clone();
        *self = State::new(config);
        self.base_url = base_url;
    }

    pub fn user(&self, account_id: &str) -> Option<&JiraUser> {
        self.config
            .users
            .iter()
            .find(|u| u.account_id == account_id)
            .or_else(|| self.adhoc_users.get(account_id))
    }

    /// Makes sure a person named by a control call exists; unknown ids become customers
    /// whose display name is their id.
    pub fn ensure_user(&mut self, account_id: &str) {
        if self.user(account_id).is_none() {
            self.adhoc_users.insert(
                account_id.to_string(),
                JiraUser {
                    account_id: account_id.to_string(),
                    email: String::new(),
                    display_name: account_id.to_string(),
                    api_token: String::new(),
                },
            );
        }
    }

    pub fn is_configured_user(&self, account_id: &str) -> bool {
        self.config.users.iter().any(|u| u.account_id == account_id)
    }

    pub fn authenticate_basic(&self, email: &str, token: &str) -> Option<&JiraUser> {
        self.config.users.iter().find(|u| {
            u.email.eq_ignore_ascii_case(email) && !u.api_token.is_empty() && u.api_token == token
        })
    }

    pub fn authenticate_bearer(&self, token: &str) -> Option<&JiraUser> {
        self.config
            .users
            .iter()
            .find(|u| !u.api_token.is_empty() && u.api_token == token)
    }

    pub fn status(&self, id: &str) -> Option<&JiraStatus> {
        self.config.workflow.statuses.iter().find(|s| s.id == id)
    }

    pub fn status_by_name_or_id(&self, value: &str) -> Option<&JiraStatus> {
        self.config
            .workflow
            .statuses
            .iter()
            .find(|s| s.id == value || s.name.eq_ignore_ascii_case(value))
    }

    pub fn category_of(&self, status_id: &str) -> StatusCategory {
        self.status(status_id)
            .map(|s| s.category)
            .unwrap_or(StatusCategory::New)
    }

    /// The transitions available from an issue's current status.
    pub fn transitions_from(&self, status_id: &str) -> Vec<&JiraTransition> {
        let current = self.status(status_id).map(|s| s.name.clone());
        self.config
            .workflow
            .transitions
            .iter()
            .filter(|t| match &current {
                Some(name) => {
                    if t.from.is_empty() {
                        !t.to.eq_ignore_ascii_case(name)
                    } else {
                        t.from.iter().any(|f| f.eq_ignore_ascii_case(name))
                    }
                }
                None => t.from.is_empty(),
            })
            .collect()
    }

    /// An issue by id (numeric) or key (case-insensitive), as Jira resolves
    /// `{issueIdOrKey}`.
    pub fn find_issue(&self, id_or_key: &str) -> Option<u64> {
        if let Ok(id) = id_or_key.parse::<u64>() {
            return self.issues.contains_key(&id).then_some(id);
        }
        self.keys.get(&id_or_key.to_ascii_uppercase()).copied()
    }

    pub fn count(&mut self, operation: &str) {
        *self.counters.entry(operation.to_string()).or_insert(0) += 1;
    }

    pub fn record(&mut self, request: RecordedRequest) {
        if self.request_log.len() >= REQUEST_LOG_CAPACITY {
            self.request_log.pop_front();
        }
        self.request_log.push_back(request);
    }

    pub fn add_fault(&mut self, spec: &FaultSpec) {
        if let Some(ms) = spec.latency_ms {
            self.latency_ms = ms;
        }
        if let Some(ms) = spec.search_lag_ms {
            self.search_lag_ms = ms;
        }
        if spec.operation.is_empty() {
            return;
        }
        self.faults.push(FaultRule {
            operation: spec.operation.clone(),
            status: spec.status.unwrap_or(503),
            remaining: spec.count.unwrap_or(1),
            lost_reply: spec.lost_reply,
            retry_after_seconds: spec.retry_after_seconds,
        });
    }

    pub fn clear_faults(&mut self) {
        self.faults.clear();
        self.latency_ms = 0;
        self.search_lag_ms = 0;
    }

    /// Consumes one use of the first fault that matches `operation`.
    pub fn take_fault(&mut self, operation: &str) -> Option<FaultRule> {
        let index = self
            .faults
            .iter()
            .position(|f| f.remaining > 0 && (f.operation == "*" || f.operation == operation))?;
        let rule = &mut self.faults[index];
        rule.remaining -= 1;
        let taken = rule.clone();
        if rule.remaining == 0 {
            self.faults.remove(index);
        }
        Some(taken)
    }

    /// A download token for an attachment that needs no credentials, like the signed
    /// media URL Jira redirects to.
    pub fn media_token(&self, attachment_id: u64) -> String {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        hasher.write_u64(self.media_secret);
        hasher.write_u64(attachment_id);
        format!("{attachment_id}-{:016x}", hasher.finish())
    }

    pub fn attachment_for_media_token(&self, token: &str) -> Option<u64> {
        let id = token.split('-').next()?.parse::<u64>().ok()?;
        (self.media_token(id) == token).then_some(id)
    }

    pub fn find_attachment(&self, id: u64) -> Option<(&Issue, &Attachment)> {
        self.issues.values().find_map(|issue| {
            issue
                .attachments
                .iter()
                .find(|a| a.id == id)
                .map(|a| (issue, a))
        })
    }

    pub fn find_comment(&self, id: u64) -> Option<(&Issue, &Comment)> {
        self.issues.values().find_map(|issue| {
            issue
                .comments
                .iter()
                .find(|c| c.id == id)
                .map(|c| (issue, c))
        })
    }

    /// Records that an issue changed at `at`: bumps `updated` and re-indexes it.
    pub fn touch(&mut self, id: u64, at: DateTime<Utc>) {
        if let Some(issue) = self.issues.get_mut(&id)
            && at > issue.updated
        {
            issue.updated = at;
        }
        self.reindex(id, crate::model::now_ms());
    }

    /// Takes a search snapshot, dropping the ones no lagged search can still see.
    fn reindex(&mut self, id: u64, indexed_at: DateTime<Utc>) {
        let lag = Duration::milliseconds(i64::try_from(self.search_lag_ms).unwrap_or(i64::MAX));
        let Some(issue) = self.issues.get(&id) else {
            return;
        };
        let doc = issue.search_doc(self.category_of(&issue.status_id));
        let horizon = indexed_at - lag;
        if let Some(issue) = self.issues.get_mut(&id) {
            issue.index.push_back((indexed_at, doc));
            while issue.index.len() > 1 && issue.index[1].0 <= horizon {
                issue.index.pop_front();
            }
        }
    }

    /// What a search sees of an issue now: its current state without lag, else the
    /// newest snapshot older than the lag (none if it was created within the lag).
    pub fn visible_doc(&self, issue: &Issue, now: DateTime<Utc>, fresh: bool) -> Option<SearchDoc> {
        if fresh || self.search_lag_ms == 0 {
            return Some(issue.search_doc(self.category_of(&issue.status_id)));
        }
        let lag = Duration::milliseconds(i64::try_from(self.search_lag_ms).unwrap_or(i64::MAX));
        let horizon = now - lag;
        issue
            .index
            .iter()
            .rev()
            .find(|(at, _)| *at <= horizon)
            .map(|(_, doc)| doc.clone())
    }

    /// Creates an issue from a validated draft; returns its id.
    pub fn create_issue(&mut self, draft: Draft, creator: &str, created: DateTime<Utc>) -> u64 {
        let id = self.next_issue_id;
        self.next_issue_id += 1;
        let number = self.next_issue_number;
        self.next_issue_number += 1;
        let key = format!(
            "{}-{}",
            self.config.project_key.to_ascii_uppercase(),
            number
        );
        let initial = self
            .status_by_name_or_id(&self.config.workflow.initial_status)
            .or_else(|| self.config.workflow.statuses.first())
            .map(|s| s.id.clone())
            .unwrap_or_else(|| "10000".to_string());
        let issue = Issue {
            id,
            number,
            key: key.clone(),
            summary: draft.summary.unwrap_or_default(),
            description: draft.description,
            issue_type_id: draft
                .issue_type_id
                .unwrap_or_else(|| DEFAULT_ISSUE_TYPE_ID.to_string()),
            status_id: initial,
            priority_id: draft.priority_id,
            labels: draft.labels,
            components: draft.components,
            sync_flag: draft.sync_flag,
            google_case: draft.google_case,
            reporter: draft.reporter.unwrap_or_else(|| creator.to_string()),
            creator: creator.to_string(),
            created,
            updated: created,
            status_changed: created,
            resolution_id: None,
            resolution_date: None,
            comments: Vec::new(),
            attachments: Vec::new(),
            index: VecDeque::new(),
        };
        self.issues.insert(id, issue);
        self.keys.insert(key, id);
        self.reindex(id, crate::model::now_ms());
        id
    }

    pub fn draft_of(issue: &Issue) -> Draft {
        Draft {
            project_set: true,
            summary: Some(issue.summary.clone()),
            description: issue.description.clone(),
            issue_type_id: Some(issue.issue_type_id.clone()),
            priority_id: issue.priority_id.clone(),
            labels: issue.labels.clone(),
            components: issue.components.clone(),
            sync_flag: issue.sync_flag,
            google_case: issue.google_case.clone(),
            reporter: Some(issue.reporter.clone()),
        }
    }

    /// Writes an edited draft back; bumps `updated` only if something changed, as Jira
    /// records no change (and no update time) for an edit that sets the same values.
    pub fn apply_draft(&mut self, id: u64, draft: Draft, at: DateTime<Utc>) -> bool {
        let Some(issue) = self.issues.get_mut(&id) else {
            return false;
        };
        if State::draft_of(issue) == draft {
            return false;
        }
        if let Some(summary) = draft.summary {
            issue.summary = summary;
        }
        issue.description = draft.description;
        if let Some(t) = draft.issue_type_id {
            issue.issue_type_id = t;
        }
        issue.priority_id = draft.priority_id;
        issue.labels = draft.labels;
        issue.components = draft.components;
        issue.sync_flag = draft.sync_flag;
        issue.google_case = draft.google_case;
        if let Some(r) = draft.reporter {
            issue.reporter = r;
        }
        self.touch(id, at);
        true
    }

    pub fn add_comment(
        &mut self,
        issue_id: u64,
        author: &str,
        body: Value,
        properties: BTreeMap<String, Value>,
        visibility: Option<Value>,
        at: DateTime<Utc>,
    ) -> Option<u64> {
        let comment_id = self.next_comment_id;
        let issue = self.issues.get_mut(&issue_id)?;
        self.next_comment_id += 1;
        issue.comments.push(Comment {
            id: comment_id,
            author: author.to_string(),
            update_author: author.to_string(),
            body,
            created: at,
            updated: at,
            properties,
            visibility,
        });
        self.touch(issue_id, at);
        Some(comment_id)
    }

    pub fn add_attachment(
        &mut self,
        issue_id: u64,
        author: &str,
        filename: &str,
        mime_type: &str,
        data: Bytes,
        at: DateTime<Utc>,
    ) -> Option<u64> {
        let attachment_id = self.next_attachment_id;
        let issue = self.issues.get_mut(&issue_id)?;
        self.next_attachment_id += 1;
        issue.attachments.push(Attachment {
            id: attachment_id,
            filename: filename.to_string(),
            mime_type: mime_type.to_string(),
            size: data.len() as u64,
            author: author.to_string(),
            created: at,
        });
        self.blobs.insert(attachment_id, data);
        self.touch(issue_id, at);
        Some(attachment_id)
    }

    /// Moves an issue to a status, setting or clearing the resolution the way Jira's
    /// default post-functions do.
    pub fn move_to_status(
        &mut self,
        issue_id: u64,
        status_id: &str,
        resolution_id: Option<String>,
        at: DateTime<Utc>,
    ) -> bool {
        let done = self.category_of(status_id) == StatusCategory::Done;
        let Some(issue) = self.issues.get_mut(&issue_id) else {
            return false;
        };
        let changed = issue.status_id != status_id;
        issue.status_id = status_id.to_string();
        if changed {
            issue.status_changed = at;
        }
        if done {
            if issue.resolution_id.is_none() || resolution_id.is_some() {
                issue.resolution_id =
                    Some(resolution_id.unwrap_or_else(|| DEFAULT_RESOLUTION_ID.to_string()));
                issue.resolution_date = Some(at);
            }
        } else {
            issue.resolution_id = None;
            issue.resolution_date = None;
        }
        self.touch(issue_id, at);
        true
    }

    pub fn delete_issue(&mut self, issue_id: u64) -> bool {
        let Some(issue) = self.issues.remove(&issue_id) else {
            return false;
        };
        self.keys.retain(|_, id| *id != issue_id);
        for attachment in &issue.attachments {
            self.blobs.remove(&attachment.id);
        }
        true
    }
}
