//! The control API (`/_control/...`, JSON, no auth): what a support agent or customer
//! does in the Jira UI (create issues, comment, attach, change priority, status and the
//! sync flag) and what a test harness needs (faults, counters, the request log, reset).
//! It lets tests and the sandbox drive the "other side" over HTTP, as the Rust API does
//! in process.

use std::fmt;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::FaultSpec;
use crate::{JiraEmulator, NewIssue};

/// Why a control call failed: the issue does not exist (404) or the input is invalid
/// (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    NotFound(String),
    Invalid(String),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::NotFound(key) => write!(f, "issue '{key}' does not exist"),
            ControlError::Invalid(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ControlError {}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match self {
            ControlError::NotFound(_) => StatusCode::NOT_FOUND,
            ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        (status, Json(json!({"error": self.to_string()}))).into_response()
    }
}

type ControlResult<T> = Result<T, ControlError>;

fn body<T>(payload: Result<Json<T>, JsonRejection>) -> ControlResult<T> {
    payload
        .map(|Json(v)| v)
        .map_err(|e| ControlError::Invalid(e.body_text()))
}

pub(crate) fn routes() -> Router<JiraEmulator> {
    Router::new()
        .route("/_control/issues", get(list_issues).post(create_issue))
        .route(
            "/_control/issues/{key}",
            get(get_issue).delete(delete_issue),
        )
        .route("/_control/issues/{key}/comments", post(add_comment))
        .route("/_control/issues/{key}/attachments", post(add_attachment))
        .route("/_control/issues/{key}/priority", post(set_priority))
        .route("/_control/issues/{key}/status", post(set_status))
        .route("/_control/issues/{key}/flag", post(set_flag))
        .route(
            "/_control/faults",
            get(get_faults).post(add_fault).delete(clear_faults),
        )
        .route("/_control/counters", get(counters))
        .route("/_control/requests", get(requests).delete(clear_requests))
        .route("/_control/reset", post(reset))
        .route("/_control/config", get(config))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewIssueBody {
    summary: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    sync_flag: bool,
    #[serde(default)]
    google_case_name: Option<String>,
    #[serde(default)]
    reporter: Option<String>,
    #[serde(default)]
    created: Option<DateTime<Utc>>,
    #[serde(default)]
    labels: Vec<String>,
}

fn default_person(emu: &JiraEmulator) -> ControlResult<String> {
    emu.lock()
        .config
        .default_person()
        .map(|u| u.account_id.clone())
        .ok_or_else(|| ControlError::Invalid("no users are configured".into()))
}

async fn create_issue(
    State(emu): State<JiraEmulator>,
    payload: Result<Json<NewIssueBody>, JsonRejection>,
) -> ControlResult<(StatusCode, Json<Value>)> {
    let new = body(payload)?;
    let reporter = match new.reporter {
        Some(r) => r,
        None => default_person(&emu)?,
    };
    let issue = emu.try_create_issue_as(
        &reporter,
        NewIssue {
            summary: new.summary,
            description: new.description,
            priority: new.priority.unwrap_or_default(),
            sync_flag: new.sync_flag,
            google_case_name: new.google_case_name,
            labels: new.labels,
            created: new.created,
        },
    )?;
    Ok((StatusCode::CREATED, Json(issue)))
}

async fn list_issues(State(emu): State<JiraEmulator>) -> Json<Value> {
    Json(Value::Array(emu.issues()))
}

async fn get_issue(
    State(emu): State<JiraEmulator>,
    Path(key): Path<String>,
) -> ControlResult<Json<Value>> {
    emu.issue(&key).map(Json).ok_or(ControlError::NotFound(key))
}

async fn delete_issue(
    State(emu): State<JiraEmulator>,
    Path(key): Path<String>,
) -> ControlResult<StatusCode> {
    emu.delete_issue_inner(&key)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommentBody {
    body: String,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    internal: bool,
}

async fn add_comment(
    State(emu): State<JiraEmulator>,
    Path(key): Path<String>,
    payload: Result<Json<CommentBody>, JsonRejection>,
) -> ControlResult<(StatusCode, Json<Value>)> {
    let comment = body(payload)?;
    let author = match comment.author {
        Some(a) => a,
        None => default_person(&emu)?,
    };
    let value = emu.try_add_comment_as(&key, &author, &comment.body, comment.internal)?;
    Ok((StatusCode::CREATED, Json(value)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttachmentBody {
    filename: String,
    #[serde(default)]
    mime_type: Option<String>,
    data_base64: String,
    #[serde(default)]
    author: Option<String>,
}

async fn add_attachment(
    State(emu): State<JiraEmulator>,
    Path(key): Path<String>,
    payload: Result<Json<AttachmentBody>, JsonRejection>,
) -> ControlResult<(StatusCode, Json<Value>)> {
    let attachment = body(payload)?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(attachment.data_base64.trim())
        .map_err(|e| ControlError::Invalid(format!("dataBase64 is not base64: {e}")))?;
    let author = match attachment.author {
        Some(a) => a,
        None => default_person(&emu)?,
    };
    let value = emu.try_add_attachment_as(
        &key,
        &author,
        &attachment.filename,
        attachment.mime_type.as_deref().unwrap_or(""),
        &data,
    )?;
    Ok((StatusCode::CREATED, Json(value)))
}

#[derive(Debug, Deserialize)]
struct PriorityBody {
    name: String,
}

fn issue_view(emu: &JiraEmulator, key: &str) -> ControlResult<Json<Value>> {
    emu.issue(key)
        .map(Json)
        .ok_or_else(|| ControlError::NotFound(key.to_string()))
}

async fn set_priority(
    State(emu): State<JiraEmulator>,
    Path(key): Path<String>,
    payload: Result<Json<PriorityBody>, JsonRejection>,
) -> ControlResult<Json<Value>> {
    let priority = body(payload)?;
    emu.set_priority_inner(&key, &priority.name)?;
    issue_view(&emu, &key)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody {
    status_name: String,
}

async fn set_status(
    State(emu): State<JiraEmulator>,
    Path(key): Path<String>,
    payload: Result<Json<StatusBody>, JsonRejection>,
) -> ControlResult<Json<Value>> {
    let status = body(payload)?;
    emu.set_status_inner(&key, &status.status_name)?;
    issue_view(&emu, &key)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlagBody {
    sync_flag: bool,
}

async fn set_flag(
    State(emu): State<JiraEmulator>,
    Path(key): Path<String>,
    payload: Result<Json<FlagBody>, JsonRejection>,
) -> ControlResult<Json<Value>> {
    let flag = body(payload)?;
    emu.set_sync_flag_inner(&key, flag.sync_flag)?;
    issue_view(&emu, &key)
}

fn faults_view(emu: &JiraEmulator) -> Value {
    let state = emu.lock();
    json!({
        "faults": state.faults,
        "latencyMs": state.latency_ms,
        "searchLagMs": state.search_lag_ms,
    })
}

async fn get_faults(State(emu): State<JiraEmulator>) -> Json<Value> {
    Json(faults_view(&emu))
}

async fn add_fault(
    State(emu): State<JiraEmulator>,
    payload: Result<Json<FaultSpec>, JsonRejection>,
) -> ControlResult<Json<Value>> {
    let spec = body(payload)?;
    if spec.operation.is_empty() && spec.latency_ms.is_none() && spec.search_lag_ms.is_none() {
        return Err(ControlError::Invalid(
            "name an operation (or '*'), or set latencyMs / searchLagMs".into(),
        ));
    }
    if let Some(status) = spec.status
        && !(400..=599).contains(&status)
    {
        return Err(ControlError::Invalid(format!(
            "status {status} is not an error status"
        )));
    }
    emu.inject_fault(spec);
    Ok(Json(faults_view(&emu)))
}

async fn clear_faults(State(emu): State<JiraEmulator>) -> StatusCode {
    emu.clear_faults();
    StatusCode::NO_CONTENT
}

async fn counters(State(emu): State<JiraEmulator>) -> Json<Value> {
    Json(json!(emu.counters()))
}

async fn requests(State(emu): State<JiraEmulator>) -> Json<Value> {
    Json(json!(emu.request_log()))
}

async fn clear_requests(State(emu): State<JiraEmulator>) -> StatusCode {
    emu.clear_request_log();
    StatusCode::NO_CONTENT
}

async fn reset(State(emu): State<JiraEmulator>) -> StatusCode {
    emu.reset();
    StatusCode::NO_CONTENT
}

async fn config(State(emu): State<JiraEmulator>) -> Json<Value> {
    Json(json!(emu.config()))
}
