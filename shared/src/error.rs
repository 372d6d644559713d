//! Every failure casesync meets is classified once, here, as retryable, systemic or
//! permanent (docs/FAILURES.md#failure-classes). The class decides what the caller does: retry later,
//! alarm an operator without blaming the message, or dead-letter the message.

use std::time::Duration;

/// What a caller should do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Transport errors, timeouts, 408, 409 ABORTED, 429, every 5xx, a held lease: try again.
    Retryable,
    /// 401, 403, bad configuration: not the message's fault. Answer 5xx, never dead-letter.
    Systemic,
    /// Other 4xx and undecodable input: dead-letter at once with the reason.
    Permanent,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Retryable => "retryable",
            ErrorClass::Systemic => "systemic",
            ErrorClass::Permanent => "permanent",
        }
    }

    /// Classifies an HTTP status the way docs/FAILURES.md#failure-classes lists it.
    pub fn from_http_status(status: u16) -> ErrorClass {
        match status {
            401 | 403 => ErrorClass::Systemic,
            408 | 409 | 429 => ErrorClass::Retryable,
            500..=599 => ErrorClass::Retryable,
            _ => ErrorClass::Permanent,
        }
    }
}

/// The error every port returns. Adapters fill in the class; the engine adds context.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PortError {
    /// The addressed object does not exist (HTTP 404). The engine turns this into the
    /// `suspect` state (and, repeated over `sync.unlink_after`, `unlinked`) for a counterpart that disappeared (docs/ARCHITECTURE.md#mapping-lifecycle).
    #[error("{operation}: not found: {what}")]
    NotFound { operation: String, what: String },

    /// A remote call or a store operation failed.
    #[error("{operation} failed ({}{}): {message}", class.as_str(), status.map(|s| format!(", HTTP {s}")).unwrap_or_default())]
    Failed {
        operation: String,
        class: ErrorClass,
        status: Option<u16>,
        message: String,
        retry_after: Option<Duration>,
    },

    /// Another delivery holds the lease on this mapping (docs/INVARIANTS.md#the-lease).
    #[error("mapping {mapping_id} is being synced by another delivery until {until}")]
    LeaseHeld { mapping_id: String, until: String },

    /// This delivery's lease was taken over; its writes are refused so two syncs never both
    /// write one mapping.
    #[error("lease on mapping {mapping_id} was lost")]
    LeaseLost { mapping_id: String },

    /// Configuration is wrong; the message names the key.
    #[error("configuration: {0}")]
    Config(String),

    /// Input that can never succeed, such as a malformed sync message.
    #[error("invalid input: {0}")]
    Invalid(String),

    /// A create took effect but a later part of it failed (RT creates a ticket and refuses a
    /// custom field with 200): the caller must record `id` before anything else can fail,
    /// or the next attempt makes a second counterpart (docs/INVARIANTS.md#one-counterpart).
    #[error("created {id}, but: {cause}")]
    PartlyApplied { id: String, cause: Box<PortError> },
}

impl PortError {
    pub fn class(&self) -> ErrorClass {
        match self {
            PortError::NotFound { .. } | PortError::Invalid(_) => ErrorClass::Permanent,
            PortError::Failed { class, .. } => *class,
            PortError::LeaseHeld { .. } | PortError::LeaseLost { .. } => ErrorClass::Retryable,
            PortError::Config(_) => ErrorClass::Systemic,
            PortError::PartlyApplied { cause, .. } => cause.class(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, PortError::NotFound { .. })
    }

    /// The HTTP status of the answer, when the failure was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            PortError::Failed { status, .. } => *status,
            PortError::NotFound { .. } => Some(404),
            PortError::PartlyApplied { cause, .. } => cause.status(),
            _ => None,
        }
    }

    /// The lease of this sync is gone or held by another: stop before the next write.
    pub fn is_lease_conflict(&self) -> bool {
        matches!(
            self,
            PortError::LeaseHeld { .. } | PortError::LeaseLost { .. }
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PortError::Failed { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn retryable(operation: impl Into<String>, message: impl Into<String>) -> Self {
        PortError::Failed {
            operation: operation.into(),
            class: ErrorClass::Retryable,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn permanent(operation: impl Into<String>, message: impl Into<String>) -> Self {
        PortError::Failed {
            operation: operation.into(),
            class: ErrorClass::Permanent,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// An error from an HTTP answer, classified by its status.
    pub fn from_http(
        operation: impl Into<String>,
        status: u16,
        message: impl Into<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        let operation = operation.into();
        let message = message.into();
        if status == 404 {
            return PortError::NotFound {
                operation,
                what: message,
            };
        }
        PortError::Failed {
            operation,
            class: ErrorClass::from_http_status(status),
            status: Some(status),
            message,
            retry_after,
        }
    }

    /// This failure as the answer to a request built only from casesync's own code and
    /// configuration (a search, a lookup by casesync's own key). A refusal of such a
    /// request (400, another permanent status, a 404 for the searched collection) means
    /// casesync's query or configuration is wrong: no message is at fault, and calling it
    /// permanent would dead-letter every case until a fix and a replay. Systemic instead:
    /// alert, answer 5xx, retry on backoff. Retryable and systemic failures are kept.
    pub fn of_own_request(self) -> Self {
        match self {
            PortError::Failed {
                operation,
                class: ErrorClass::Permanent,
                status,
                message,
                retry_after,
            } => PortError::Failed {
                operation,
                class: ErrorClass::Systemic,
                status,
                message,
                retry_after,
            },
            PortError::NotFound { operation, what } => PortError::Failed {
                operation,
                class: ErrorClass::Systemic,
                status: Some(404),
                message: format!("not found: {what}"),
                retry_after: None,
            },
            other => other,
        }
    }

    /// A store failure (SQLite, Firestore): always worth retrying, the data is not at fault.
    pub fn store(operation: impl Into<String>, err: impl std::fmt::Display) -> Self {
        PortError::retryable(operation, err.to_string())
    }
}

pub type PortResult<T> = Result<T, PortError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_own_request_is_systemic_and_keeps_its_details() {
        let e = PortError::from_http("CSAPI cases.search", 400, "bad query", None).of_own_request();
        assert_eq!(e.class(), ErrorClass::Systemic);
        let text = e.to_string();
        assert!(
            text.contains("CSAPI cases.search")
                && text.contains("HTTP 400")
                && text.contains("bad query"),
            "{text}"
        );
        let e = PortError::from_http("jira.search", 422, "no", None).of_own_request();
        assert_eq!(e.class(), ErrorClass::Systemic);
        let e = PortError::from_http("rt.search", 404, "/tickets", None).of_own_request();
        assert_eq!(e.class(), ErrorClass::Systemic);
        assert!(
            !e.is_not_found(),
            "a missing collection is no missing counterpart"
        );
    }

    #[test]
    fn other_classes_are_kept() {
        let wait = Some(Duration::from_secs(3));
        let e = PortError::from_http("x", 429, "slow down", wait).of_own_request();
        assert_eq!(e.class(), ErrorClass::Retryable);
        assert_eq!(e.retry_after(), wait);
        let e = PortError::from_http("x", 503, "down", None).of_own_request();
        assert_eq!(e.class(), ErrorClass::Retryable);
        let e = PortError::from_http("x", 403, "denied", None).of_own_request();
        assert_eq!(e.class(), ErrorClass::Systemic);
        let e = PortError::Config("google.parent".into()).of_own_request();
        assert!(matches!(e, PortError::Config(_)));
    }
}
