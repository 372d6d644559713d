//! Google's REST error shape (AIP-193).
//!
//! Clients, the official Rust crate included, classify failures from the JSON body
//! (`error.code`, `error.status`, `error.details`), so every failure the emulator
//! produces, injected faults included, must look exactly like one from Google's
//! front end rather than like an axum default response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One `google.rpc.BadRequest.FieldViolation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// A failure answered in Google's JSON error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub status: &'static str,
    pub message: String,
    pub violations: Vec<FieldViolation>,
    pub retry_after_secs: Option<u32>,
}

impl ApiError {
    /// An error with the canonical status Google pairs with `code`.
    pub fn with_code(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            status: canonical_status(code),
            message: message.into(),
            violations: Vec::new(),
            retry_after_secs: if code == 429 { Some(1) } else { None },
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::with_code(400, message)
    }

    /// An INVALID_ARGUMENT that names the offending field, the way Google reports body
    /// and parameter problems (`google.rpc.BadRequest`).
    pub fn bad_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut err = Self::invalid_argument(message.clone());
        err.violations.push(FieldViolation {
            field: field.into(),
            description: message,
        });
        err
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::with_code(404, message)
    }

    pub fn failed_precondition(message: impl Into<String>) -> Self {
        let mut e = Self::with_code(400, message);
        e.status = "FAILED_PRECONDITION";
        e
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::with_code(503, message)
    }

    /// The JSON body, `{"error":{...}}`.
    pub fn body(&self) -> Value {
        let mut error = json!({
            "code": self.code,
            "message": self.message,
            "status": self.status,
        });
        if !self.violations.is_empty() {
            let violations: Vec<Value> = self
                .violations
                .iter()
                .map(|v| json!({"field": v.field, "description": v.description}))
                .collect();
            error["details"] = json!([{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": violations,
            }]);
        }
        json!({ "error": error })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec_pretty(&self.body()).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        if let Some(secs) = self.retry_after_secs {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// The `google.rpc.Code` name Google's HTTP front end pairs with an HTTP status.
pub fn canonical_status(code: u16) -> &'static str {
    match code {
        200..=299 => "OK",
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        412 => "FAILED_PRECONDITION",
        416 => "OUT_OF_RANGE",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        502 | 503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        402..=498 => "FAILED_PRECONDITION",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_field_carries_a_bad_request_detail() {
        let body = ApiError::bad_field("case.display_name", "missing").body();
        assert_eq!(body["error"]["code"], 400);
        assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
        assert_eq!(
            body["error"]["details"][0]["@type"],
            "type.googleapis.com/google.rpc.BadRequest"
        );
        assert_eq!(
            body["error"]["details"][0]["fieldViolations"][0]["field"],
            "case.display_name"
        );
    }

    #[test]
    fn not_found_has_no_details() {
        let body = ApiError::not_found("x").body();
        assert!(body["error"].get("details").is_none());
        assert_eq!(body["error"]["status"], "NOT_FOUND");
    }

    #[test]
    fn too_many_requests_sets_retry_after() {
        let e = ApiError::with_code(429, "slow down");
        assert_eq!(e.status, "RESOURCE_EXHAUSTED");
        assert_eq!(e.retry_after_secs, Some(1));
        assert_eq!(canonical_status(503), "UNAVAILABLE");
    }
}
