//! Google's failures, classified once (docs/FAILURES.md#google-error-classes): the gRPC
//! canonical codes (`google.rpc.Code`), the HTTP statuses Google's REST endpoints answer
//! with, and the errors of `google-cloud-gax` that carry neither (timeouts, transport,
//! credentials). The CSAPI, Firestore and Pub/Sub adapters all classify through here and
//! write their deliberate exceptions next to their call, with the reason.
//!
//! The classes follow docs/FAILURES.md#failure-classes, read code by code against
//! google-cloud-rust's own notion of a transient error (`google_cloud_gax::retry_policy`,
//! `google_cloud_pubsub::retry_policy::RetryableErrors`: ABORTED, DEADLINE_EXCEEDED,
//! INTERNAL, RESOURCE_EXHAUSTED, UNAVAILABLE, UNKNOWN, and I/O, timeout, connect and
//! transient-credential errors). Two differences are deliberate, because a class here
//! decides redelivery on backoff (bounded by the delivery attempts), not an in-process
//! retry of one call:
//!
//! - CANCELLED is retryable. casesync never cancels a call in a way that surfaces as an
//!   error (a dropped future yields nothing, its own deadlines come back as timeouts or
//!   DEADLINE_EXCEEDED), so a CANCELLED that reaches it was cancelled by the server or a
//!   proxy in between: the same request may well succeed next time, and nothing in the
//!   message caused it, so dead-lettering would be wrong. (The Firestore crate marks it
//!   retryable too.)
//! - DATA_LOSS is retryable, as every 5xx is: it is the service's data, not the message's,
//!   and a lasting one still ends in the dead-letter topic after the delivery attempts.
//!
//! UNIMPLEMENTED is systemic: the endpoint does not serve the method (a wrong endpoint or
//! API version, an emulator without it), which no message causes and no retry fixes.

use crate::error::ErrorClass;

/// The class of a gRPC canonical code, by its number in `google.rpc.Code` (the numbering
/// every Google client shares; `class_of_code` takes `google-cloud-gax`'s `Code`, the
/// Firestore adapter converts the crate's code names). A number outside the list is read as
/// UNKNOWN, as gax reads it.
///
/// NOT_FOUND is permanent as a class, but an adapter answers it as `PortError::NotFound`
/// ([`is_not_found`]), which the engine turns into a suspect mapping.
pub fn class_of_code_number(code: i32) -> ErrorClass {
    match code {
        // OK: not a failure. An error that carries it is a broken answer; read as UNKNOWN.
        0 => ErrorClass::Retryable,
        // CANCELLED (499): cancelled by the server or a proxy, never by the message (above).
        1 => ErrorClass::Retryable,
        // UNKNOWN (500): the server could not say; google-cloud-rust retries it.
        2 => ErrorClass::Retryable,
        // INVALID_ARGUMENT (400): the request is wrong whatever the state; it repeats.
        3 => ErrorClass::Permanent,
        // DEADLINE_EXCEEDED (504): a timeout.
        4 => ErrorClass::Retryable,
        // NOT_FOUND (404): `PortError::NotFound`, permanent as a class.
        5 => ErrorClass::Permanent,
        // ALREADY_EXISTS (409): shares 409 with ABORTED, but repeats forever.
        6 => ErrorClass::Permanent,
        // PERMISSION_DENIED (403): credentials or grants, not the message.
        7 => ErrorClass::Systemic,
        // RESOURCE_EXHAUSTED (429): quota or rate; wait and retry.
        8 => ErrorClass::Retryable,
        // FAILED_PRECONDITION (400): the addressed object is not in the state the request
        // needs (a closed case); the same message meets it again.
        9 => ErrorClass::Permanent,
        // ABORTED (409): a concurrency conflict; retry.
        10 => ErrorClass::Retryable,
        // OUT_OF_RANGE (400): like INVALID_ARGUMENT.
        11 => ErrorClass::Permanent,
        // UNIMPLEMENTED (501): the endpoint does not serve the method (above).
        12 => ErrorClass::Systemic,
        // INTERNAL (500).
        13 => ErrorClass::Retryable,
        // UNAVAILABLE (503): the one code AIP-194 calls retryable.
        14 => ErrorClass::Retryable,
        // DATA_LOSS (500): the service's data, not the message's (above).
        15 => ErrorClass::Retryable,
        // UNAUTHENTICATED (401): no valid credentials, not the message.
        16 => ErrorClass::Systemic,
        // Not a canonical code: UNKNOWN.
        _ => ErrorClass::Retryable,
    }
}

/// The class of an HTTP status from a Google endpoint: the HTTP rule
/// ([`ErrorClass::from_http_status`]) except for the two statuses that name one canonical
/// code whose class differs from the rule's: 499 is CANCELLED (retryable, not "other
/// 4xx") and 501 is UNIMPLEMENTED (systemic, not "every 5xx").
pub fn class_of_http_status(status: u16) -> ErrorClass {
    match status {
        499 => class_of_code_number(1),
        501 => class_of_code_number(12),
        _ => ErrorClass::from_http_status(status),
    }
}

#[cfg(any(feature = "csapi", feature = "pubsub"))]
pub use with_gax::*;

#[cfg(any(feature = "csapi", feature = "pubsub"))]
mod with_gax {
    use super::{class_of_code_number, class_of_http_status};
    use crate::error::{ErrorClass, PortError};
    use google_cloud_gax::error::rpc::Code;
    use google_cloud_gax::error::{CredentialsError, Error};
    use std::time::Duration;

    /// The class of a canonical code as `google-cloud-gax` names it.
    pub fn class_of_code(code: Code) -> ErrorClass {
        class_of_code_number(code as i32)
    }

    /// The class of an answer: its HTTP status when it has one, else its canonical code.
    /// The status comes first because a REST body without a `status` string reads as
    /// UNKNOWN; the code refines it only where one status covers codes of different
    /// classes (409: ABORTED retryable, ALREADY_EXISTS permanent). Neither: retryable.
    pub fn class_of(http_status: Option<u16>, code: Option<Code>) -> ErrorClass {
        match (http_status, code) {
            (Some(409), Some(Code::AlreadyExists)) => class_of_code(Code::AlreadyExists),
            (Some(status), _) => class_of_http_status(status),
            (None, Some(code)) => class_of_code(code),
            (None, None) => ErrorClass::Retryable,
        }
    }

    /// Whether an answer says the addressed object does not exist: a 404, or NOT_FOUND
    /// without a status.
    pub fn is_not_found(http_status: Option<u16>, code: Option<Code>) -> bool {
        match http_status {
            Some(status) => status == 404,
            None => code == Some(Code::NotFound),
        }
    }

    /// An answer from a Google endpoint as a `PortError`: `NotFound` when
    /// [`is_not_found`], else `Failed` with [`class_of`]. The message is the caller's to
    /// keep short and free of request content.
    pub fn failure(
        operation: &str,
        http_status: Option<u16>,
        code: Option<Code>,
        message: String,
        retry_after: Option<Duration>,
    ) -> PortError {
        if is_not_found(http_status, code) {
            return PortError::NotFound {
                operation: operation.to_string(),
                what: message,
            };
        }
        PortError::Failed {
            operation: operation.to_string(),
            class: class_of(http_status, code),
            status: http_status,
            message,
            retry_after,
        }
    }

    /// A credentials failure: retryable when the token source says it is transient (a busy
    /// metadata server), else systemic (the credentials are misconfigured).
    pub fn class_of_credentials(e: &CredentialsError) -> ErrorClass {
        if e.is_transient() {
            ErrorClass::Retryable
        } else {
            ErrorClass::Systemic
        }
    }

    /// The class of any `google-cloud-gax` error. One with an HTTP status or a canonical
    /// code goes by [`class_of`]; of the rest, a request that could not be formed (binding,
    /// serialization) is permanent, since the same input fails the same way every time;
    /// an authentication failure goes by [`class_of_credentials`]; timeouts, connect, I/O
    /// and transport errors, a truncated (undecodable) answer and an exhausted retry loop
    /// are retryable.
    pub fn class_of_gax(e: &Error) -> ErrorClass {
        if e.http_status_code().is_some() || e.status().is_some() {
            return class_of(e.http_status_code(), e.status().map(|s| s.code));
        }
        if e.is_binding() || e.is_serialization() {
            ErrorClass::Permanent
        } else if e.is_authentication() {
            std::error::Error::source(e)
                .and_then(|s| s.downcast_ref::<CredentialsError>())
                .map_or(ErrorClass::Systemic, class_of_credentials)
        } else {
            ErrorClass::Retryable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorClass::{Permanent, Retryable, Systemic};

    /// Every canonical code: name, number, HTTP mapping (from `google.rpc.Code`), class.
    const CODES: [(&str, i32, u16, ErrorClass); 17] = [
        ("OK", 0, 200, Retryable),
        ("CANCELLED", 1, 499, Retryable),
        ("UNKNOWN", 2, 500, Retryable),
        ("INVALID_ARGUMENT", 3, 400, Permanent),
        ("DEADLINE_EXCEEDED", 4, 504, Retryable),
        ("NOT_FOUND", 5, 404, Permanent),
        ("ALREADY_EXISTS", 6, 409, Permanent),
        ("PERMISSION_DENIED", 7, 403, Systemic),
        ("RESOURCE_EXHAUSTED", 8, 429, Retryable),
        ("FAILED_PRECONDITION", 9, 400, Permanent),
        ("ABORTED", 10, 409, Retryable),
        ("OUT_OF_RANGE", 11, 400, Permanent),
        ("UNIMPLEMENTED", 12, 501, Systemic),
        ("INTERNAL", 13, 500, Retryable),
        ("UNAVAILABLE", 14, 503, Retryable),
        ("DATA_LOSS", 15, 500, Retryable),
        ("UNAUTHENTICATED", 16, 401, Systemic),
    ];

    #[test]
    fn every_code_has_its_class() {
        for (name, number, _, class) in CODES {
            assert_eq!(class_of_code_number(number), class, "{name}");
        }
        assert_eq!(class_of_code_number(17), Retryable, "read as UNKNOWN");
        assert_eq!(class_of_code_number(-1), Retryable, "read as UNKNOWN");
    }

    #[test]
    fn each_codes_http_status_has_the_codes_class() {
        for (name, _, http, class) in CODES {
            match name {
                // Not a failure status; 409 is ABORTED's class, ALREADY_EXISTS is told by
                // its code (`class_of`).
                "OK" | "ALREADY_EXISTS" => {}
                _ => assert_eq!(class_of_http_status(http), class, "{name} ({http})"),
            }
        }
        assert_eq!(class_of_http_status(502), Retryable);
        assert_eq!(class_of_http_status(408), Retryable);
        assert_eq!(class_of_http_status(413), Permanent);
    }

    #[cfg(any(feature = "csapi", feature = "pubsub"))]
    mod gax {
        use super::*;
        use google_cloud_gax::error::rpc::{Code, Status};
        use google_cloud_gax::error::{CredentialsError, Error};
        use reqwest::header::HeaderMap;

        #[test]
        fn gax_codes_are_the_canonical_numbers() {
            for (name, number, _, class) in CODES {
                let code = Code::try_from(name).unwrap();
                assert_eq!(code as i32, number, "{name}");
                assert_eq!(class_of_code(code), class, "{name}");
            }
        }

        #[test]
        fn the_status_decides_and_the_code_refines_409() {
            for (name, _, http, class) in CODES {
                if name == "OK" {
                    continue;
                }
                let code = Code::try_from(name).unwrap();
                assert_eq!(class_of(Some(http), Some(code)), class, "{name}");
                assert_eq!(class_of(None, Some(code)), class, "{name}");
            }
            // A REST body without a `status` string reads as UNKNOWN: the status decides.
            assert_eq!(class_of(Some(400), Some(Code::Unknown)), Permanent);
            assert_eq!(class_of(Some(403), None), Systemic);
            assert_eq!(class_of(None, None), Retryable);
        }

        #[test]
        fn not_found_is_a_404_or_not_found_without_a_status() {
            assert!(is_not_found(Some(404), None));
            assert!(is_not_found(Some(404), Some(Code::Unknown)));
            assert!(is_not_found(None, Some(Code::NotFound)));
            assert!(!is_not_found(Some(400), Some(Code::NotFound)));
            assert!(failure("op", None, Some(Code::NotFound), "x".into(), None).is_not_found());
            let e = failure("op", Some(409), Some(Code::AlreadyExists), "x".into(), None);
            assert_eq!((e.class(), e.status()), (Permanent, Some(409)));
        }

        #[test]
        fn gax_errors_without_a_code() {
            let service = Error::service(Status::default().set_code(Code::Cancelled));
            assert_eq!(class_of_gax(&service), Retryable);
            let http = Error::http(501, HeaderMap::new(), bytes::Bytes::new());
            assert_eq!(class_of_gax(&http), Systemic);
            assert_eq!(class_of_gax(&Error::timeout("deadline")), Retryable);
            assert_eq!(class_of_gax(&Error::io("reset")), Retryable);
            assert_eq!(class_of_gax(&Error::connect("refused")), Retryable);
            assert_eq!(class_of_gax(&Error::binding("no binding")), Permanent);
            assert_eq!(class_of_gax(&Error::ser("no")), Permanent);
            let bad = CredentialsError::from_msg(false, "no key");
            assert_eq!(class_of_credentials(&bad), Systemic);
            assert_eq!(class_of_gax(&Error::authentication(bad)), Systemic);
            let flaky = CredentialsError::from_msg(true, "metadata server busy");
            assert_eq!(class_of_gax(&Error::authentication(flaky)), Retryable);
        }
    }
}
