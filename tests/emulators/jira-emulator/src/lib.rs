//! A stateful Jira Cloud emulator (platform REST API v3 plus the Jira Service Management
//! bits a CRM connector needs) for casesync's sandbox and end-to-end tests, since nobody
//! can reach Atlassian from here. It serves the same paths, fields, status codes and
//! error bodies as the OpenAPI documents in `shared/reference/crm/`, reads JQL date
//! literals in the site's time zone, and lets tests act as agents and customers and
//! inject faults through a control API (`/_control/...`) or the Rust API below.

pub mod adf;
mod config;
mod control;
mod errors;
mod fields;
mod gate;
mod jql;
mod jsm;
mod model;
mod render;
mod rest;
mod state;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::get;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value;

pub use config::{
    JiraEmulatorConfig, JiraStatus, JiraTransition, JiraUser, JiraWorkflow, StatusCategory,
};
pub use control::ControlError;
pub use state::{FaultSpec, RecordedRequest};

use crate::fields::Draft;
use crate::model::{MAX_ATTACHMENT_BYTES, now_ms, priority_by_name_or_id, truncate_ms};
use crate::state::State;

/// An issue as a person (agent or customer) creates it.
#[derive(Debug, Clone)]
pub struct NewIssue {
    pub summary: String,
    /// Plain text; stored as ADF, one paragraph per line.
    pub description: String,
    /// Priority name (`Highest`..`Lowest`); empty means the default, Medium.
    pub priority: String,
    pub sync_flag: bool,
    pub google_case_name: Option<String>,
    pub labels: Vec<String>,
    /// Backdates the issue (and its `updated`), e.g. to test the 30-day pickup rule.
    pub created: Option<DateTime<Utc>>,
}

impl Default for NewIssue {
    fn default() -> Self {
        NewIssue {
            summary: "Sandbox issue".to_string(),
            description: String::new(),
            priority: "Medium".to_string(),
            sync_flag: false,
            google_case_name: None,
            labels: Vec::new(),
            created: None,
        }
    }
}

/// The emulator: cheap to clone, all clones share one site.
#[derive(Clone)]
pub struct JiraEmulator {
    state: Arc<Mutex<State>>,
}

/// An emulator serving on `127.0.0.1`, e.g. `base_url = "http://127.0.0.1:41234"`.
pub struct RunningJiraEmulator {
    pub emulator: JiraEmulator,
    pub base_url: String,
}

impl JiraEmulator {
    pub fn new(config: JiraEmulatorConfig) -> Self {
        JiraEmulator {
            state: Arc::new(Mutex::new(State::new(config))),
        }
    }

    /// A panic in one handler must not take the whole sandbox down with a poisoned lock;
    /// every mutation leaves the state consistent before it can panic.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn config(&self) -> JiraEmulatorConfig {
        self.lock().config.clone()
    }

    /// Base URL used in `self` links of values returned by the Rust API (requests use the
    /// `Host` they came in with).
    pub fn base_url(&self) -> String {
        self.lock().base_url.clone()
    }

    pub fn set_base_url(&self, base_url: impl Into<String>) {
        self.lock().base_url = base_url.into();
    }

    /// All routes: the REST API under `/rest/...`, the control API under `/_control`,
    /// and the media host attachment downloads redirect to under `/_media`.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/rest/api/3/myself", get(rest::get_myself))
            .route("/rest/api/3/serverInfo", get(rest::get_server_info))
            .route("/rest/api/3/issue", axum::routing::post(rest::create_issue))
            .route(
                "/rest/api/3/issue/{issueIdOrKey}",
                get(rest::get_issue).put(rest::edit_issue),
            )
            .route(
                "/rest/api/3/issue/{issueIdOrKey}/editmeta",
                get(rest::get_edit_meta),
            )
            .route(
                "/rest/api/3/issue/{issueIdOrKey}/transitions",
                get(rest::get_transitions).post(rest::do_transition),
            )
            .route(
                "/rest/api/3/issue/{issueIdOrKey}/comment",
                get(rest::get_comments).post(rest::add_comment),
            )
            .route(
                "/rest/api/3/issue/{issueIdOrKey}/comment/{id}",
                get(rest::get_comment),
            )
            .route(
                "/rest/api/3/comment/{commentId}/properties",
                get(rest::get_comment_property_keys),
            )
            .route(
                "/rest/api/3/comment/{commentId}/properties/{propertyKey}",
                get(rest::get_comment_property),
            )
            .route(
                "/rest/api/3/issue/{issueIdOrKey}/attachments",
                axum::routing::post(rest::add_attachment),
            )
            .route("/rest/api/3/attachment/{id}", get(rest::get_attachment))
            .route(
                "/rest/api/3/attachment/content/{id}",
                get(rest::get_attachment_content),
            )
            .route(
                "/rest/api/3/search/jql",
                get(rest::search_jql_get).post(rest::search_jql_post),
            )
            .route(
                "/rest/api/3/search",
                get(rest::search_removed).post(rest::search_removed),
            )
            .route("/rest/api/3/priority", get(rest::get_priorities))
            .route("/rest/api/3/field", get(rest::get_fields))
            .route(
                "/rest/servicedeskapi/servicedesk",
                get(jsm::get_service_desks),
            )
            .route(
                "/rest/servicedeskapi/servicedesk/{serviceDeskId}",
                get(jsm::get_service_desk),
            )
            .route(
                "/rest/servicedeskapi/request/{issueIdOrKey}/comment",
                get(jsm::get_request_comments).post(jsm::create_request_comment),
            )
            .route_layer(middleware::from_fn_with_state(self.clone(), gate::api_gate));
        Router::new()
            .merge(api)
            .merge(control::routes())
            .route("/_media/file/{token}", get(rest::media_download))
            .fallback(gate::fallback)
            .layer(DefaultBodyLimit::max(MAX_ATTACHMENT_BYTES + 1024 * 1024))
            .with_state(self.clone())
    }

    /// Serves a new emulator on `127.0.0.1` on a free port until the runtime stops.
    pub async fn spawn(config: JiraEmulatorConfig) -> anyhow::Result<RunningJiraEmulator> {
        let emulator = JiraEmulator::new(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        emulator.set_base_url(base_url.clone());
        let router = emulator.router();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "jira emulator server stopped");
            }
        });
        Ok(RunningJiraEmulator { emulator, base_url })
    }

    /// Creates an issue as `account_id` (reporter and creator); unknown account ids
    /// become JSM customers. Returns the control view (`key`, `id`, …).
    pub fn try_create_issue_as(
        &self,
        account_id: &str,
        new: NewIssue,
    ) -> Result<Value, ControlError> {
        let priority = if new.priority.trim().is_empty() {
            "Medium".to_string()
        } else {
            new.priority.clone()
        };
        let (priority_id, _) = priority_by_name_or_id(&priority)
            .ok_or_else(|| ControlError::Invalid(format!("unknown priority '{priority}'")))?;
        if new.summary.trim().is_empty() {
            return Err(ControlError::Invalid("summary must not be empty".into()));
        }
        if let Some(bad) = new
            .labels
            .iter()
            .find(|l| l.is_empty() || l.chars().any(char::is_whitespace))
        {
            return Err(ControlError::Invalid(format!(
                "label '{bad}' is empty or contains spaces"
            )));
        }
        let mut state = self.lock();
        state.ensure_user(account_id);
        let draft = Draft {
            project_set: true,
            summary: Some(new.summary.trim().to_string()),
            description: (!new.description.is_empty()).then(|| adf::text_to_adf(&new.description)),
            issue_type_id: None,
            priority_id: priority_id.to_string(),
            labels: new.labels,
            components: Vec::new(),
            sync_flag: new.sync_flag,
            google_case: new.google_case_name.filter(|s| !s.is_empty()),
            reporter: Some(account_id.to_string()),
        };
        let created = new.created.map(truncate_ms).unwrap_or_else(now_ms);
        let id = state.create_issue(draft, account_id, created);
        state
            .issues
            .get(&id)
            .map(|issue| render::control_issue_json(&state, issue))
            .ok_or_else(|| ControlError::NotFound(id.to_string()))
    }

    /// [`Self::try_create_issue_as`]; on invalid input returns `{"error": "..."}`.
    pub fn create_issue_as(&self, account_id: &str, new: NewIssue) -> Value {
        self.try_create_issue_as(account_id, new)
            .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}))
    }

    /// Adds a comment as a person; `internal` makes it a JSM internal note.
    pub fn try_add_comment_as(
        &self,
        key: &str,
        account_id: &str,
        body_text: &str,
        internal: bool,
    ) -> Result<Value, ControlError> {
        let mut state = self.lock();
        let id = state
            .find_issue(key)
            .ok_or_else(|| ControlError::NotFound(key.to_string()))?;
        state.ensure_user(account_id);
        let mut properties = BTreeMap::new();
        if internal {
            properties.insert(
                "sd.public.comment".to_string(),
                serde_json::json!({"internal": true}),
            );
        }
        let comment_id = state
            .add_comment(
                id,
                account_id,
                adf::text_to_adf(body_text),
                properties,
                None,
                now_ms(),
            )
            .ok_or_else(|| ControlError::NotFound(key.to_string()))?;
        state
            .find_comment(comment_id)
            .map(|(_, c)| render::control_comment_json(&state, c))
            .ok_or_else(|| ControlError::NotFound(key.to_string()))
    }

    /// [`Self::try_add_comment_as`]; `Value::Null` if the issue does not exist.
    pub fn add_comment_as(
        &self,
        key: &str,
        account_id: &str,
        body_text: &str,
        internal: bool,
    ) -> Value {
        self.try_add_comment_as(key, account_id, body_text, internal)
            .unwrap_or(Value::Null)
    }

    pub fn try_add_attachment_as(
        &self,
        key: &str,
        account_id: &str,
        filename: &str,
        mime: &str,
        data: &[u8],
    ) -> Result<Value, ControlError> {
        if filename.is_empty() {
            return Err(ControlError::Invalid("filename must not be empty".into()));
        }
        let mut state = self.lock();
        let id = state
            .find_issue(key)
            .ok_or_else(|| ControlError::NotFound(key.to_string()))?;
        state.ensure_user(account_id);
        let mime = if mime.is_empty() {
            "application/octet-stream"
        } else {
            mime
        };
        let attachment_id = state
            .add_attachment(
                id,
                account_id,
                filename,
                mime,
                Bytes::copy_from_slice(data),
                now_ms(),
            )
            .ok_or_else(|| ControlError::NotFound(key.to_string()))?;
        state
            .find_attachment(attachment_id)
            .map(|(_, a)| render::control_attachment_json(&state, a))
            .ok_or_else(|| ControlError::NotFound(key.to_string()))
    }

    /// [`Self::try_add_attachment_as`]; `Value::Null` if the issue does not exist.
    pub fn add_attachment_as(
        &self,
        key: &str,
        account_id: &str,
        filename: &str,
        mime: &str,
        data: &[u8],
    ) -> Value {
        self.try_add_attachment_as(key, account_id, filename, mime, data)
            .unwrap_or(Value::Null)
    }

    /// Changes the priority as an agent would in the UI (no-op if unchanged).
    pub fn set_priority(&self, key: &str, name: &str) -> anyhow::Result<()> {
        Ok(self.set_priority_inner(key, name)?)
    }

    pub(crate) fn set_priority_inner(&self, key: &str, name: &str) -> Result<(), ControlError> {
        let (priority_id, _) = priority_by_name_or_id(name)
            .ok_or_else(|| ControlError::Invalid(format!("unknown priority '{name}'")))?;
        let mut state = self.lock();
        let id = state
            .find_issue(key)
            .ok_or_else(|| ControlError::NotFound(key.to_string()))?;
        let issue = state
            .issues
            .get(&id)
            .ok_or_else(|| ControlError::NotFound(key.to_string()))?;
        let mut draft = State::draft_of(issue);
        draft.priority_id = priority_id.to_string();
        state.apply_draft(id, draft, now_ms());
        Ok(())
    }

    /// Moves the issue to a status by name or id regardless of the workflow's
    /// transitions (an admin's move); reaching a Done-category status sets the
    /// resolution, leaving it clears it.
    pub fn set_status(&self, key: &str, status_name: &str) -> anyhow::Result<()> {
        Ok(self.set_status_inner(key, status_name)?)
    }

    pub(crate) fn set_status_inner(
        &self,
        key: &str,
        status_name: &str,
    ) -> Result<(), ControlError> {
        let mut state = self.lock();
        let status_id = state
            .status_by_name_or_id(status_name)
            .map(|s| s.id.clone())
            .ok_or_else(|| ControlError::Invalid(format!("unknown status '{status_name}'")))?;
        let id = state
            .find_issue(key)
            .ok_or_else(|| ControlError::NotFound(key.to_string()))?;
        if state
            .issues
            .get(&id)
            .is_some_and(|i| i.status_id != status_id)
        {
            state.move_to_status(id, &status_id, None, now_ms());
        }
        Ok(())
    }

    /// Sets or clears the sync flag as an agent would (no-op if unchanged).
    pub fn set_sync_flag(&self, key: &str, on: bool) -> anyhow::Result<()> {
        Ok(self.set_sync_flag_inner(key, on)?)
    }

    pub(crate) fn set_sync_flag_inner(&self, key: &str, on: bool) -> Result<(), ControlError> {
        let mut state = self.lock();
        let id = state
            .find_issue(key)
            .ok_or_else(|| ControlError::NotFound(key.to_string()))?;
        let issue = state
            .issues
            .get(&id)
            .ok_or_else(|| ControlError::NotFound(key.to_string()))?;
        let mut draft = State::draft_of(issue);
        draft.sync_flag = on;
        state.apply_draft(id, draft, now_ms());
        Ok(())
    }

    /// Deletes an issue, so the connector meets the 404 of a counterpart that is gone.
    pub fn delete_issue(&self, key: &str) -> anyhow::Result<()> {
        Ok(self.delete_issue_inner(key)?)
    }

    pub(crate) fn delete_issue_inner(&self, key: &str) -> Result<(), ControlError> {
        let mut state = self.lock();
        let id = state
            .find_issue(key)
            .ok_or_else(|| ControlError::NotFound(key.to_string()))?;
        state.delete_issue(id);
        Ok(())
    }

    /// The control view of one issue (by key or id), comments as plain text and ADF.
    pub fn issue(&self, key: &str) -> Option<Value> {
        let state = self.lock();
        let id = state.find_issue(key)?;
        state
            .issues
            .get(&id)
            .map(|issue| render::control_issue_json(&state, issue))
    }

    /// Every issue, oldest first.
    pub fn issues(&self) -> Vec<Value> {
        let state = self.lock();
        state
            .issues
            .values()
            .map(|issue| render::control_issue_json(&state, issue))
            .collect()
    }

    pub fn attachment_bytes(&self, id: &str) -> Option<Vec<u8>> {
        let id = id.parse::<u64>().ok()?;
        self.lock().blobs.get(&id).map(|b| b.to_vec())
    }

    /// Requests per operationId, failed ones included.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.lock().counters.clone()
    }

    /// The next `count` requests of `operation` (`*` for any) answer `status` without
    /// doing anything.
    pub fn inject_failures(&self, operation: &str, status: u16, count: u32) {
        self.inject_fault(FaultSpec {
            operation: operation.to_string(),
            status: Some(status),
            count: Some(count),
            ..FaultSpec::default()
        });
    }

    /// The next `count` requests of `operation` are performed and then answered with 503.
    pub fn inject_lost_replies(&self, operation: &str, count: u32) {
        self.inject_fault(FaultSpec {
            operation: operation.to_string(),
            status: Some(503),
            count: Some(count),
            lost_reply: true,
            ..FaultSpec::default()
        });
    }

    pub fn inject_fault(&self, spec: FaultSpec) {
        self.lock().add_fault(&spec);
    }

    /// Drops every fault and resets latency and search lag to zero.
    pub fn clear_faults(&self) {
        self.lock().clear_faults();
    }

    pub fn request_log(&self) -> Vec<RecordedRequest> {
        self.lock().request_log.iter().cloned().collect()
    }

    pub fn clear_request_log(&self) {
        self.lock().request_log.clear();
    }

    /// Back to an empty site: no issues, faults, counters or log; same configuration.
    pub fn reset(&self) {
        self.lock().reset();
    }
}
