//! The control API (`/_control/...`): lets a test or the demo sandbox act as Google
//! Support and as customer people, inspect the state, and inject faults.
//!
//! It is the HTTP face of the in-process methods on [`Emulator`], for tests that run
//! the emulator as a separate process (the end-to-end stack). Bodies are JSON with
//! camelCase keys; unknown keys are rejected so a typo in a test fails loudly.
//! Errors use Google's error shape too.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::faults::METHOD_IDS;
use crate::model::Actor;
use crate::{Emulator, NewCustomerCase};

pub fn routes() -> Router<Emulator> {
    Router::new()
        .route("/_control/cases", post(create_case).get(list_cases))
        .route("/_control/cases/{number}", get(get_case))
        .route("/_control/cases/{number}/comments", post(add_comment))
        .route("/_control/cases/{number}/attachments", post(add_attachment))
        .route("/_control/cases/{number}/priority", post(set_priority))
        .route("/_control/cases/{number}/state", post(set_state))
        .route("/_control/cases/{number}/close", post(close_case))
        .route(
            "/_control/faults",
            post(add_faults).delete(clear_faults).get(list_faults),
        )
        .route("/_control/counters", get(counters))
        .route("/_control/requests", get(requests))
        .route("/_control/projects", post(map_project))
        .route("/_control/reset", post(reset))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_argument(format!("Invalid control request body: {e}")))
}

fn ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

fn from_anyhow(e: anyhow::Error) -> ApiError {
    match e.downcast::<ApiError>() {
        Ok(api) => api,
        Err(e) => ApiError::invalid_argument(format!("{e:#}")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateCaseBody {
    #[serde(default)]
    parent: String,
    display_name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "default_priority")]
    priority: String,
    classification_id: Option<String>,
    #[serde(default = "default_customer_email")]
    creator_email: String,
    #[serde(default = "default_customer_name")]
    creator_name: String,
    create_time: Option<DateTime<Utc>>,
}

fn default_priority() -> String {
    "P3".to_string()
}

fn default_customer_email() -> String {
    "alex.customer@example.com".to_string()
}

fn default_customer_name() -> String {
    "Alex Customer".to_string()
}

async fn create_case(AxumState(emu): AxumState<Emulator>, body: Bytes) -> Response {
    let run = || -> Result<Value, ApiError> {
        let b: CreateCaseBody = parse(&body)?;
        emu.try_create_case_as_customer(NewCustomerCase {
            parent: b.parent,
            display_name: b.display_name,
            description: b.description,
            priority: b.priority,
            classification_id: b.classification_id,
            creator_email: b.creator_email,
            creator_name: b.creator_name,
            create_time: b.create_time,
        })
    };
    run().map(ok).unwrap_or_else(IntoResponse::into_response)
}

async fn list_cases(AxumState(emu): AxumState<Emulator>) -> Response {
    ok(json!({ "cases": emu.cases() }))
}

async fn get_case(AxumState(emu): AxumState<Emulator>, Path(number): Path<String>) -> Response {
    match emu.case(&number) {
        Some(c) => ok(c),
        None => ApiError::not_found(format!("Case \"{number}\" was not found.")).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CommentBody {
    body: String,
    #[serde(default)]
    author_name: Option<String>,
    #[serde(default)]
    author_email: Option<String>,
    #[serde(default)]
    as_customer: bool,
}

fn author(name: Option<String>, email: Option<String>, as_customer: bool) -> Actor {
    if as_customer {
        Actor::customer(
            &name.unwrap_or_else(default_customer_name),
            &email.unwrap_or_else(default_customer_email),
        )
    } else {
        Actor::google(
            &name.unwrap_or_else(|| "Google Support".to_string()),
            email.as_deref(),
        )
    }
}

async fn add_comment(
    AxumState(emu): AxumState<Emulator>,
    Path(number): Path<String>,
    body: Bytes,
) -> Response {
    let run = || -> Result<Value, ApiError> {
        let b: CommentBody = parse(&body)?;
        let actor = author(b.author_name, b.author_email, b.as_customer);
        emu.try_add_comment(&number, actor, &b.body)
    };
    run().map(ok).unwrap_or_else(IntoResponse::into_response)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AttachmentBody {
    filename: String,
    #[serde(default)]
    mime_type: String,
    data_base64: String,
    #[serde(default)]
    author_name: Option<String>,
    #[serde(default)]
    author_email: Option<String>,
    #[serde(default)]
    as_customer: bool,
}

async fn add_attachment(
    AxumState(emu): AxumState<Emulator>,
    Path(number): Path<String>,
    body: Bytes,
) -> Response {
    let run = || -> Result<Value, ApiError> {
        let b: AttachmentBody = parse(&body)?;
        let data = STANDARD
            .decode(b.data_base64.trim())
            .map_err(|e| ApiError::bad_field("dataBase64", format!("Invalid base64: {e}")))?;
        let actor = author(b.author_name, b.author_email, b.as_customer);
        emu.try_add_attachment(&number, actor, &b.filename, &b.mime_type, &data)
    };
    run().map(ok).unwrap_or_else(IntoResponse::into_response)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PriorityBody {
    priority: String,
}

async fn set_priority(
    AxumState(emu): AxumState<Emulator>,
    Path(number): Path<String>,
    body: Bytes,
) -> Response {
    let run = || -> Result<Value, ApiError> {
        let b: PriorityBody = parse(&body)?;
        emu.set_priority(&number, &b.priority)
            .map_err(from_anyhow)?;
        Ok(emu.case(&number).unwrap_or(Value::Null))
    };
    run().map(ok).unwrap_or_else(IntoResponse::into_response)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StateBody {
    state: String,
}

async fn set_state(
    AxumState(emu): AxumState<Emulator>,
    Path(number): Path<String>,
    body: Bytes,
) -> Response {
    let run = || -> Result<Value, ApiError> {
        let b: StateBody = parse(&body)?;
        emu.set_state(&number, &b.state).map_err(from_anyhow)?;
        Ok(emu.case(&number).unwrap_or(Value::Null))
    };
    run().map(ok).unwrap_or_else(IntoResponse::into_response)
}

async fn close_case(AxumState(emu): AxumState<Emulator>, Path(number): Path<String>) -> Response {
    match emu.close_case(&number) {
        Ok(()) => ok(emu.case(&number).unwrap_or(Value::Null)),
        Err(e) => from_anyhow(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FaultBody {
    method: Option<String>,
    status: Option<u16>,
    #[serde(default)]
    lost_reply: bool,
    count: Option<u32>,
    latency_ms: Option<u64>,
    search_lag_ms: Option<u64>,
}

async fn add_faults(AxumState(emu): AxumState<Emulator>, body: Bytes) -> Response {
    let run = || -> Result<Value, ApiError> {
        let b: FaultBody = parse(&body)?;
        let count = b.count.unwrap_or(1);
        match (&b.method, b.status, b.lost_reply) {
            (None, None, false) => {}
            (None, _, _) => {
                return Err(ApiError::bad_field(
                    "method",
                    "A failure or lost reply needs \"method\".",
                ));
            }
            (Some(m), _, _) if !METHOD_IDS.contains(&m.as_str()) => {
                return Err(ApiError::bad_field(
                    "method",
                    format!("Unknown method \"{m}\"; known: {}.", METHOD_IDS.join(", ")),
                ));
            }
            (Some(m), _, true) => emu.inject_lost_replies(m, count),
            (Some(m), Some(status), false) if (400..=599).contains(&status) => {
                emu.inject_failures(m, status, count)
            }
            (Some(_), _, false) => {
                return Err(ApiError::bad_field(
                    "status",
                    "A failure needs \"status\" between 400 and 599 (or \"lostReply\": true).",
                ));
            }
        }
        if let Some(ms) = b.latency_ms {
            emu.set_latency(Duration::from_millis(ms));
        }
        if let Some(ms) = b.search_lag_ms {
            emu.set_search_lag(Duration::from_millis(ms));
        }
        Ok(faults_json(&emu))
    };
    run().map(ok).unwrap_or_else(IntoResponse::into_response)
}

fn faults_json(emu: &Emulator) -> Value {
    serde_json::to_value(&emu.lock().faults).unwrap_or(Value::Null)
}

async fn list_faults(AxumState(emu): AxumState<Emulator>) -> Response {
    ok(faults_json(&emu))
}

async fn clear_faults(AxumState(emu): AxumState<Emulator>) -> Response {
    emu.clear_faults();
    ok(faults_json(&emu))
}

async fn counters(AxumState(emu): AxumState<Emulator>) -> Response {
    ok(serde_json::to_value(emu.counters()).unwrap_or(Value::Null))
}

async fn requests(AxumState(emu): AxumState<Emulator>) -> Response {
    ok(json!({ "requests": emu.request_log() }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProjectBody {
    project: String,
    organization: String,
}

async fn map_project(AxumState(emu): AxumState<Emulator>, body: Bytes) -> Response {
    let run = || -> Result<Value, ApiError> {
        let b: ProjectBody = parse(&body)?;
        if !b.organization.starts_with("organizations/") {
            return Err(ApiError::bad_field(
                "organization",
                "Expected organizations/{number}.",
            ));
        }
        let project = b.project.trim_start_matches("projects/").to_string();
        emu.map_project(&project, &b.organization);
        Ok(json!({"project": project, "organization": b.organization}))
    };
    run().map(ok).unwrap_or_else(IntoResponse::into_response)
}

async fn reset(AxumState(emu): AxumState<Emulator>) -> Response {
    emu.reset();
    ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_control_fields_are_rejected() {
        assert!(parse::<PriorityBody>(br#"{"priority":"P1","x":1}"#).is_err());
        assert!(parse::<FaultBody>(b"").is_ok());
    }

    #[test]
    fn authors() {
        assert!(author(None, None, false).google_support);
        assert!(!author(None, None, true).google_support);
    }
}
