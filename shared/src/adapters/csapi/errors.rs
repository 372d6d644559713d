//! Classifies every CSAPI failure as `PortError` (docs/FAILURES.md#where-failures-are-classified): the class decides
//! whether the engine retries, alarms an operator or dead-letters the message, so the
//! rules are applied here once, for the crate's calls and for the hand-rolled media calls
//! alike. The classes themselves are Google's, decided once in
//! [`crate::adapters::google_errors`]; CSAPI's deliberate exceptions are made where the
//! request is made, not here: a search or a classification lookup is built only from
//! casesync's code and configuration, so its refusal (400, a 404 for the parent) is
//! systemic through [`PortError::of_own_request`] at those call sites (`csapi/mod.rs`).
//!
//! Messages name the operation and the server's short reason only: the server's message
//! is kept (Google's do not echo request content) but shortened, and nothing casesync
//! sent (comment bodies, file names) is ever added (docs/ARCHITECTURE.md#security).

use crate::adapters::google_errors;
use crate::error::{ErrorClass, PortError};
use crate::retry_policy::MAX_IN_PROCESS_RETRY_AFTER;
use google_cloud_gax::error::rpc::{Code, Status};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::time::Duration;

/// Longest server message kept in an error, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// A failure of a call made through `google-cloud-support-v2`.
pub fn from_gax(operation: &str, e: &google_cloud_gax::error::Error) -> PortError {
    let retry_after = e.http_headers().and_then(retry_after);
    if e.http_status_code().is_some() || e.status().is_some() {
        let message = match e.status() {
            Some(s) if !s.message.is_empty() => s.message.clone(),
            _ => e.to_string(),
        };
        return classify(
            operation,
            e.http_status_code(),
            e.status().map(|s| s.code),
            &message,
            retry_after,
        );
    }
    // No answer: a request that could not be formed, credentials, a timeout or transport.
    PortError::Failed {
        operation: operation.to_string(),
        class: google_errors::class_of_gax(e),
        status: None,
        message: shorten(&e.to_string()),
        retry_after: None,
    }
}

/// A non-success HTTP answer to a hand-rolled call (media upload and download); the body
/// is Google's error shape when the server produced it.
pub fn from_http(
    operation: &str,
    status: u16,
    headers: &HeaderMap,
    body: &bytes::Bytes,
) -> PortError {
    let parsed = Status::try_from(body).ok();
    let message = match &parsed {
        Some(s) if !s.message.is_empty() => s.message.clone(),
        _ => format!("HTTP {status}"),
    };
    classify(
        operation,
        Some(status),
        parsed.map(|s| s.code),
        &message,
        retry_after(headers),
    )
}

/// A transport failure of a hand-rolled call.
pub fn from_reqwest(operation: &str, e: &reqwest::Error) -> PortError {
    let class = if e.is_builder() {
        ErrorClass::Permanent
    } else {
        ErrorClass::Retryable
    };
    PortError::Failed {
        operation: operation.to_string(),
        class,
        status: e.status().map(|s| s.as_u16()),
        // The URL names only the case or attachment (ids, no secrets: the token travels
        // in a header).
        message: shorten(&e.to_string()),
        retry_after: None,
    }
}

/// An HTTP status and/or a canonical code, classified as Google's answers are
/// ([`google_errors::failure`]: 404 is `NotFound`, 409 with ALREADY_EXISTS permanent), with
/// the server's message shortened. CSAPI makes no exception of its own here.
pub fn classify(
    operation: &str,
    http_status: Option<u16>,
    code: Option<Code>,
    message: &str,
    retry_after: Option<Duration>,
) -> PortError {
    google_errors::failure(operation, http_status, code, shorten(message), retry_after)
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 §10.2.3); a date in the past
/// means "now".
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Whether `e` should be waited out in process and the call repeated: a 429 always says
/// the server did nothing; a 503 with `Retry-After` only where repeating is harmless
/// (`idempotent`). Either way only when the server's wait is short (docs/FAILURES.md#failure-classes).
pub fn wait_in_process(e: &PortError, idempotent: bool) -> Option<Duration> {
    let PortError::Failed {
        status: Some(status),
        retry_after: Some(wait),
        ..
    } = e
    else {
        return None;
    };
    let eligible = *status == 429 || (*status == 503 && idempotent);
    (eligible && *wait <= MAX_IN_PROCESS_RETRY_AFTER).then_some(*wait)
}

fn shorten(message: &str) -> String {
    let one_line = message.replace(['\n', '\r'], " ");
    if one_line.chars().count() <= MAX_MESSAGE_CHARS {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(MAX_MESSAGE_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_gax::error::Error;
    use reqwest::header::HeaderValue;

    /// An error the way the crate's HTTP transport builds it from Google's error body.
    fn service_error(http: u16, code: Code, retry_after: Option<&str>) -> Error {
        let mut headers = HeaderMap::new();
        if let Some(v) = retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        }
        let status = Status::default()
            .set_code(code)
            .set_message(format!("server says {http}"));
        Error::service_with_http_metadata(status, Some(http), Some(headers))
    }

    fn class_and_status(e: &PortError) -> (ErrorClass, Option<u16>) {
        match e {
            PortError::Failed { class, status, .. } => (*class, *status),
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[test]
    fn status_400_is_permanent() {
        let e = from_gax(
            "cases.create",
            &service_error(400, Code::InvalidArgument, None),
        );
        assert_eq!(class_and_status(&e), (ErrorClass::Permanent, Some(400)));
        assert!(e.to_string().contains("cases.create"), "{e}");
    }

    #[test]
    fn status_401_and_403_are_systemic() {
        let e = from_gax(
            "cases.get",
            &service_error(403, Code::PermissionDenied, None),
        );
        assert_eq!(class_and_status(&e), (ErrorClass::Systemic, Some(403)));
        let e = from_gax(
            "cases.get",
            &service_error(401, Code::Unauthenticated, None),
        );
        assert_eq!(class_and_status(&e), (ErrorClass::Systemic, Some(401)));
    }

    #[test]
    fn status_404_is_not_found() {
        let e = from_gax("cases.get", &service_error(404, Code::NotFound, None));
        assert!(e.is_not_found(), "{e:?}");
        assert_eq!(e.class(), ErrorClass::Permanent);
        assert!(e.to_string().starts_with("cases.get: not found"), "{e}");
    }

    #[test]
    fn status_429_is_retryable_with_retry_after() {
        let e = from_gax(
            "cases.search",
            &service_error(429, Code::ResourceExhausted, Some("7")),
        );
        assert_eq!(class_and_status(&e), (ErrorClass::Retryable, Some(429)));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(wait_in_process(&e, false), Some(Duration::from_secs(7)));

        let long = from_gax(
            "cases.search",
            &service_error(429, Code::ResourceExhausted, Some("120")),
        );
        assert_eq!(long.retry_after(), Some(Duration::from_secs(120)));
        assert_eq!(
            wait_in_process(&long, true),
            None,
            "too long to wait in process"
        );

        let bare = from_gax(
            "cases.search",
            &service_error(429, Code::ResourceExhausted, None),
        );
        assert_eq!(class_and_status(&bare).0, ErrorClass::Retryable);
        assert_eq!(wait_in_process(&bare, true), None);
    }

    #[test]
    fn status_500_and_503_are_retryable() {
        let e = from_gax(
            "cases.comments.list",
            &service_error(500, Code::Internal, None),
        );
        assert_eq!(class_and_status(&e), (ErrorClass::Retryable, Some(500)));
        let e = from_gax(
            "cases.close",
            &service_error(503, Code::Unavailable, Some("1")),
        );
        assert_eq!(class_and_status(&e), (ErrorClass::Retryable, Some(503)));
        assert_eq!(
            wait_in_process(&e, false),
            None,
            "a POST is not repeated on 503"
        );
        assert_eq!(wait_in_process(&e, true), Some(Duration::from_secs(1)));
        let e = from_gax(
            "cases.get",
            &service_error(504, Code::DeadlineExceeded, None),
        );
        assert_eq!(class_and_status(&e).0, ErrorClass::Retryable);
    }

    #[test]
    fn status_408_and_409_aborted_are_retryable_409_already_exists_is_not() {
        let e = from_gax("cases.patch", &service_error(409, Code::Aborted, None));
        assert_eq!(class_and_status(&e).0, ErrorClass::Retryable);
        let e = from_gax(
            "cases.create",
            &service_error(409, Code::AlreadyExists, None),
        );
        assert_eq!(class_and_status(&e).0, ErrorClass::Permanent);
        let e = from_gax(
            "cases.get",
            &service_error(408, Code::DeadlineExceeded, None),
        );
        assert_eq!(class_and_status(&e).0, ErrorClass::Retryable);
    }

    #[test]
    fn http_errors_without_googles_body_use_the_status() {
        let e = from_gax(
            "cases.get",
            &Error::http(
                502,
                HeaderMap::new(),
                bytes::Bytes::from_static(b"<html>bad gateway</html>"),
            ),
        );
        assert_eq!(class_and_status(&e), (ErrorClass::Retryable, Some(502)));
        let e = from_gax(
            "cases.get",
            &Error::http(404, HeaderMap::new(), bytes::Bytes::new()),
        );
        assert!(e.is_not_found());
    }

    #[test]
    fn transport_errors_and_timeouts_are_retryable() {
        let e = from_gax("cases.get", &Error::timeout("deadline"));
        assert_eq!(class_and_status(&e), (ErrorClass::Retryable, None));
        let e = from_gax("cases.get", &Error::io("connection reset"));
        assert_eq!(class_and_status(&e), (ErrorClass::Retryable, None));
        let e = from_gax("cases.get", &Error::connect("refused"));
        assert_eq!(class_and_status(&e), (ErrorClass::Retryable, None));
    }

    #[test]
    fn unformable_requests_are_permanent_and_bad_credentials_systemic() {
        let e = from_gax("cases.get", &Error::binding("no matching binding"));
        assert_eq!(class_and_status(&e).0, ErrorClass::Permanent);
        let bad = google_cloud_gax::error::CredentialsError::from_msg(false, "no key");
        let e = from_gax("cases.get", &Error::authentication(bad));
        assert_eq!(class_and_status(&e).0, ErrorClass::Systemic);
        let flaky =
            google_cloud_gax::error::CredentialsError::from_msg(true, "metadata server busy");
        let e = from_gax("cases.get", &Error::authentication(flaky));
        assert_eq!(class_and_status(&e).0, ErrorClass::Retryable);
    }

    #[test]
    fn media_answers_are_classified_from_googles_body() {
        let body = bytes::Bytes::from_static(
            br#"{"error":{"code":409,"message":"exists","status":"ALREADY_EXISTS"}}"#,
        );
        let e = from_http("media.upload", 409, &HeaderMap::new(), &body);
        assert_eq!(class_and_status(&e), (ErrorClass::Permanent, Some(409)));
        assert!(e.to_string().contains("exists"));
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        let e = from_http("media.download", 429, &h, &bytes::Bytes::new());
        assert_eq!(class_and_status(&e), (ErrorClass::Retryable, Some(429)));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        let e = from_http(
            "media.download",
            404,
            &HeaderMap::new(),
            &bytes::Bytes::new(),
        );
        assert!(e.is_not_found());
        let e = from_http("media.upload", 403, &HeaderMap::new(), &bytes::Bytes::new());
        assert_eq!(class_and_status(&e).0, ErrorClass::Systemic);
        let e = from_http("media.upload", 400, &HeaderMap::new(), &bytes::Bytes::new());
        assert_eq!(class_and_status(&e).0, ErrorClass::Permanent);
    }

    #[test]
    fn canonical_codes_without_http_status() {
        let e = classify("x", None, Some(Code::Unavailable), "m", None);
        assert_eq!(e.class(), ErrorClass::Retryable);
        let e = classify("x", None, Some(Code::PermissionDenied), "m", None);
        assert_eq!(e.class(), ErrorClass::Systemic);
        let e = classify("x", None, Some(Code::FailedPrecondition), "m", None);
        assert_eq!(e.class(), ErrorClass::Permanent);
        assert!(classify("x", None, Some(Code::NotFound), "m", None).is_not_found());
        // Decided in google_errors: a server-side cancel is retried, a method the endpoint
        // does not serve is systemic (was permanent here before).
        let e = classify("x", None, Some(Code::Cancelled), "m", None);
        assert_eq!(e.class(), ErrorClass::Retryable);
        let e = classify("x", None, Some(Code::Unimplemented), "m", None);
        assert_eq!(e.class(), ErrorClass::Systemic);
        let e = classify("x", Some(501), Some(Code::Unimplemented), "m", None);
        assert_eq!(e.class(), ErrorClass::Systemic);
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static(" 5 "));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(5)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        h.insert(RETRY_AFTER, HeaderValue::from_str(&soon).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn long_server_messages_are_shortened_to_one_line() {
        let long = format!("line1\nline2 {}", "x".repeat(1000));
        let e = classify("x", Some(400), None, &long, None);
        let PortError::Failed { message, .. } = e else {
            panic!()
        };
        assert!(!message.contains('\n'));
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1);
    }
}
