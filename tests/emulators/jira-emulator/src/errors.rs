//! Error answers in the exact shapes Jira sends, so a client's error handling meets the
//! same bodies, status codes and headers it will meet in production: the platform's
//! `{"errorMessages":[..],"errors":{..}}`, JSM's `{"errorMessage":..}`, the plain-text XSRF
//! refusal, and throttling with `Retry-After`.

use std::collections::BTreeMap;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub(crate) enum ErrorBody {
    /// The platform API's ErrorCollection.
    Jira {
        messages: Vec<String>,
        errors: BTreeMap<String, String>,
    },
    /// The JSM API's error shape.
    Jsm { message: String, i18n_key: String },
    /// Plain text (Jira's servlet filters answer this way, e.g. the XSRF check).
    Text(String),
}

/// An error response; every handler returns `Result<_, ApiError>`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    pub headers: Vec<(HeaderName, String)>,
}

impl ApiError {
    pub fn messages(status: StatusCode, messages: Vec<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody::Jira {
                messages,
                errors: BTreeMap::new(),
            },
            headers: Vec::new(),
        }
    }

    pub fn message(status: StatusCode, message: impl Into<String>) -> Self {
        Self::messages(status, vec![message.into()])
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::message(StatusCode::BAD_REQUEST, message)
    }

    /// 400 with per-field errors, the way Jira reports invalid create/edit input.
    pub fn fields(errors: BTreeMap<String, String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: ErrorBody::Jira {
                messages: Vec::new(),
                errors,
            },
            headers: Vec::new(),
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut errors = BTreeMap::new();
        errors.insert(field.to_string(), message.into());
        Self::fields(errors)
    }

    pub fn invalid_payload() -> Self {
        Self::bad_request(
            "Invalid request payload. Refer to the REST API documentation and try again.",
        )
    }

    pub fn issue_not_found() -> Self {
        Self::message(
            StatusCode::NOT_FOUND,
            "Issue does not exist or you do not have permission to see it.",
        )
    }

    pub fn unauthorized() -> Self {
        let mut err = Self::message(
            StatusCode::UNAUTHORIZED,
            "You are not authenticated. Authentication required to perform this operation.",
        );
        err.headers.push((
            header::WWW_AUTHENTICATE,
            "Basic realm=\"protected-area\"".to_string(),
        ));
        err
    }

    pub fn xsrf_failed() -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            body: ErrorBody::Text("XSRF check failed".to_string()),
            headers: Vec::new(),
        }
    }

    pub fn unsupported_media_type() -> Self {
        Self::message(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type: the request body must be application/json.",
        )
    }

    pub fn jsm(status: StatusCode, message: impl Into<String>, i18n_key: &str) -> Self {
        ApiError {
            status,
            body: ErrorBody::Jsm {
                message: message.into(),
                i18n_key: i18n_key.to_string(),
            },
            headers: Vec::new(),
        }
    }

    /// An injected fault. A 429 always carries `Retry-After` (Jira's throttling does),
    /// other statuses only when the fault names one.
    pub fn fault(status: u16, retry_after_seconds: Option<u64>) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let message = if status == StatusCode::TOO_MANY_REQUESTS {
            "Rate limit exceeded.".to_string()
        } else {
            format!(
                "Injected fault: {}",
                status.canonical_reason().unwrap_or("error")
            )
        };
        let mut err = Self::message(status, message);
        let retry_after = match (status, retry_after_seconds) {
            (_, Some(s)) => Some(s),
            (StatusCode::TOO_MANY_REQUESTS, None) => Some(1),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            err.headers.push((header::RETRY_AFTER, seconds.to_string()));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            err.headers.push((
                HeaderName::from_static("x-ratelimit-remaining"),
                "0".to_string(),
            ));
            err.headers.push((
                HeaderName::from_static("ratelimit-reason"),
                "jira-burst-based".to_string(),
            ));
        }
        err
    }

    pub fn body_json(&self) -> Option<Value> {
        match &self.body {
            ErrorBody::Jira { messages, errors } => {
                Some(json!({"errorMessages": messages, "errors": errors}))
            }
            ErrorBody::Jsm { message, i18n_key } => Some(json!({
                "errorMessage": message,
                "i18nErrorMessage": {"i18nKey": i18n_key, "parameters": []}
            })),
            ErrorBody::Text(_) => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = match (&self.body, self.body_json()) {
            (_, Some(json)) => (self.status, axum::Json(json)).into_response(),
            (ErrorBody::Text(text), None) => (self.status, text.clone()).into_response(),
            // body_json is None only for Text, so this arm is never taken.
            (_, None) => self.status.into_response(),
        };
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}
