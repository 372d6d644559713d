//! What happens to every API request before and after its handler: naming it by its
//! OpenAPI operationId, counting and logging it, authenticating the caller, and injecting
//! the configured latency and faults. Keeping this in one middleware means no handler can
//! forget a counter or skip the auth check, and a lost reply is simulated the same way
//! for every operation: the work is done, the answer is replaced by a failure.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::Value;

use crate::JiraEmulator;
use crate::errors::ApiError;
use crate::state::{RecordedRequest, State as EmuState};

/// JSON bodies are buffered for the request log up to this size; Jira refuses larger
/// JSON requests too.
const JSON_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Which OpenAPI document an operation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spec {
    Platform,
    ServiceManagement,
}

/// Every served route: method, path template (as in the OpenAPI documents), operationId.
pub(crate) const OPERATIONS: &[(&str, &str, &str, Spec)] = &[
    (
        "GET",
        "/rest/api/3/myself",
        "getCurrentUser",
        Spec::Platform,
    ),
    (
        "GET",
        "/rest/api/3/serverInfo",
        "getServerInfo",
        Spec::Platform,
    ),
    ("POST", "/rest/api/3/issue", "createIssue", Spec::Platform),
    (
        "GET",
        "/rest/api/3/issue/{issueIdOrKey}",
        "getIssue",
        Spec::Platform,
    ),
    (
        "PUT",
        "/rest/api/3/issue/{issueIdOrKey}",
        "editIssue",
        Spec::Platform,
    ),
    (
        "GET",
        "/rest/api/3/issue/{issueIdOrKey}/editmeta",
        "getEditIssueMeta",
        Spec::Platform,
    ),
    (
        "GET",
        "/rest/api/3/issue/{issueIdOrKey}/transitions",
        "getTransitions",
        Spec::Platform,
    ),
    (
        "POST",
        "/rest/api/3/issue/{issueIdOrKey}/transitions",
        "doTransition",
        Spec::Platform,
    ),
    (
        "GET",
        "/rest/api/3/issue/{issueIdOrKey}/comment",
        "getComments",
        Spec::Platform,
    ),
    (
        "POST",
        "/rest/api/3/issue/{issueIdOrKey}/comment",
        "addComment",
        Spec::Platform,
    ),
    (
        "GET",
        "/rest/api/3/issue/{issueIdOrKey}/comment/{id}",
        "getComment",
        Spec::Platform,
    ),
    (
        "GET",
        "/rest/api/3/comment/{commentId}/properties",
        "getCommentPropertyKeys",
        Spec::Platform,
    ),
    (
        "GET",
        "/rest/api/3/comment/{commentId}/properties/{propertyKey}",
        "getCommentProperty",
        Spec::Platform,
    ),
    (
        "POST",
        "/rest/api/3/issue/{issueIdOrKey}/attachments",
        "addAttachment",
        Spec::Platform,
    ),
    (
        "GET",
        "/rest/api/3/attachment/{id}",
        "getAttachment",
        Spec::Platform,
    ),
    (
        "GET",
        "/rest/api/3/attachment/content/{id}",
        "getAttachmentContent",
        Spec::Platform,
    ),
    (
        "GET",
        "/rest/api/3/search/jql",
        "searchAndReconsileIssuesUsingJql",
        Spec::Platform,
    ),
    (
        "POST",
        "/rest/api/3/search/jql",
        "searchAndReconsileIssuesUsingJqlPost",
        Spec::Platform,
    ),
    (
        "GET",
        "/rest/api/3/search",
        "searchForIssuesUsingJql",
        Spec::Platform,
    ),
    (
        "POST",
        "/rest/api/3/search",
        "searchForIssuesUsingJqlPost",
        Spec::Platform,
    ),
    (
        "GET",
        "/rest/api/3/priority",
        "getPriorities",
        Spec::Platform,
    ),
    ("GET", "/rest/api/3/field", "getFields", Spec::Platform),
    (
        "GET",
        "/rest/servicedeskapi/servicedesk",
        "getServiceDesks",
        Spec::ServiceManagement,
    ),
    (
        "GET",
        "/rest/servicedeskapi/servicedesk/{serviceDeskId}",
        "getServiceDeskById",
        Spec::ServiceManagement,
    ),
    (
        "GET",
        "/rest/servicedeskapi/request/{issueIdOrKey}/comment",
        "getRequestComments",
        Spec::ServiceManagement,
    ),
    (
        "POST",
        "/rest/servicedeskapi/request/{issueIdOrKey}/comment",
        "createRequestComment",
        Spec::ServiceManagement,
    ),
];

pub(crate) fn operation_id(method: &Method, path: &str) -> Option<&'static str> {
    OPERATIONS
        .iter()
        .find(|(m, p, _, _)| *m == method.as_str() && *p == path)
        .map(|(_, _, op, _)| *op)
}

/// Who is calling and under which base URL they reached us; handlers attribute writes to
/// `account_id` and build `self` links from `base_url`.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub account_id: String,
    pub base_url: String,
}

pub(crate) fn base_url_from(headers: &HeaderMap, fallback: &str) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .map(|h| format!("http://{h}"))
        .unwrap_or_else(|| fallback.to_string())
}

fn interesting_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in [
        "content-type",
        "accept",
        "x-atlassian-token",
        "x-experimentalapi",
    ] {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            out.insert(name.to_string(), value.to_string());
        }
    }
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        // Only the scheme: the log must never hold a secret.
        let scheme = value.split_whitespace().next().unwrap_or("");
        out.insert("authorization".to_string(), format!("{scheme} ***"));
    }
    out
}

/// Basic `email:api_token` or `Bearer <token>`.
pub(crate) fn authenticate(state: &EmuState, headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.trim().split_once(' ')?;
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (email, token) = decoded.split_once(':')?;
        state
            .authenticate_basic(email, token)
            .map(|u| u.account_id.clone())
    } else if scheme.eq_ignore_ascii_case("bearer") {
        state
            .authenticate_bearer(credentials)
            .map(|u| u.account_id.clone())
    } else {
        None
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"))
}

pub(crate) async fn api_gate(
    State(emu): State<JiraEmulator>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let operation = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| operation_id(&method, p.as_str()));
    let mut record = RecordedRequest {
        method: method.to_string(),
        path: request.uri().path().to_string(),
        query: request.uri().query().map(str::to_string),
        operation: operation.map(str::to_string),
        headers: interesting_headers(request.headers()),
        body: None,
        status: 0,
        account_id: None,
    };

    let (latency, base_url) = {
        let mut state = emu.lock();
        state.count(operation.unwrap_or("unknown"));
        (
            state.latency_ms,
            base_url_from(request.headers(), &state.base_url),
        )
    };

    let (parts, body) = request.into_parts();
    let mut request = if is_json(&parts.headers) {
        match axum::body::to_bytes(body, JSON_BODY_LIMIT).await {
            Ok(bytes) => {
                record.body = Some(
                    serde_json::from_slice::<Value>(&bytes)
                        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())),
                );
                Request::from_parts(parts, Body::from(bytes))
            }
            Err(_) => {
                let response = ApiError::message(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "The request body is too large.",
                )
                .into_response();
                record.status = response.status().as_u16();
                emu.lock().record(record);
                return response;
            }
        }
    } else {
        Request::from_parts(parts, body)
    };

    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }

    let account = authenticate(&emu.lock(), request.headers());
    let mut response = match &account {
        None => ApiError::unauthorized().into_response(),
        Some(account_id) => {
            let fault = emu.lock().take_fault(operation.unwrap_or("unknown"));
            match fault {
                Some(rule) if !rule.lost_reply => {
                    ApiError::fault(rule.status, rule.retry_after_seconds).into_response()
                }
                lost => {
                    request.extensions_mut().insert(Caller {
                        account_id: account_id.clone(),
                        base_url,
                    });
                    let response = next.run(request).await;
                    match lost {
                        Some(rule) if response.status().is_success() => {
                            ApiError::fault(rule.status, rule.retry_after_seconds).into_response()
                        }
                        _ => response,
                    }
                }
            }
        }
    };
    if let Some(account_id) = &account
        && let Ok(value) = HeaderValue::from_str(account_id)
    {
        // Jira tells every caller who it is on every response.
        response.headers_mut().insert("x-aaccountid", value);
    }
    record.status = response.status().as_u16();
    record.account_id = account;
    emu.lock().record(record);
    response
}

/// Unknown paths: 404 like Jira, but logged, so conformance tests see calls to routes the
/// emulator (and so, likely, the contract) does not have.
pub(crate) async fn fallback(State(emu): State<JiraEmulator>, request: Request) -> Response {
    let response = ApiError::message(
        axum::http::StatusCode::NOT_FOUND,
        format!(
            "No resource for {} {}",
            request.method(),
            request.uri().path()
        ),
    )
    .into_response();
    let record = RecordedRequest {
        method: request.method().to_string(),
        path: request.uri().path().to_string(),
        query: request.uri().query().map(str::to_string),
        operation: None,
        headers: interesting_headers(request.headers()),
        body: None,
        status: response.status().as_u16(),
        account_id: None,
    };
    emu.lock().record(record);
    response
}

/// Query-string parameters in order, repeated keys kept (Jira accepts `fields=a&fields=b`).
#[derive(Debug, Default)]
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(raw: Option<&str>) -> Self {
        QueryParams(
            raw.unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// An integer parameter; a malformed one is a 400 as in Jira.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "The value '{v}' is invalid for the parameter '{key}'."
                ))
            }),
        }
    }

    pub fn bool(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            _ => default,
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_strings() {
        let q = QueryParams::parse(Some(
            "jql=project%20%3D%20SUP+AND+labels%3D%22x%22&fields=summary&fields=updated,status&bad=%zz&end=%4",
        ));
        assert_eq!(q.get("jql"), Some("project = SUP AND labels=\"x\""));
        assert_eq!(q.all("fields"), vec!["summary", "updated,status"]);
        assert_eq!(q.get("bad"), Some("%zz"));
        assert_eq!(q.get("end"), Some("%4"));
        assert!(q.int("jql").is_err());
    }
}
