//! HTTP pieces both REST CRM adapters (Jira, Request Tracker) need alike: what a call is
//! about (for its errors), the request rate casesync allows itself toward a CRM, transport
//! failures classified as retryable, `Retry-After` parsing, path-segment encoding, and a
//! sanity check on MIME types before they reach a header.

use crate::error::{PortError, PortResult};
use crate::retry_policy::MAX_IN_PROCESS_RETRY_AFTER;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, Response};
use std::time::Duration;
use tokio::time::Instant;

/// How many `Retry-After`s one call waits out before it hands the wait to the queue.
pub const MAX_IN_PROCESS_WAITS: u32 = 3;
/// Error bodies are read only this far: enough for a CRM's error object.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// What a request is about, for its errors: the operation and the object's id.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub op: &'static str,
    pub what: &'a str,
}

/// Spaces requests at least `1 / requests_per_second` apart, across all callers.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl RateLimiter {
    pub fn new(requests_per_second: f64) -> Self {
        let interval = Duration::try_from_secs_f64(1.0 / requests_per_second)
            .unwrap_or(Duration::from_secs(60))
            .min(Duration::from_secs(60));
        RateLimiter {
            interval,
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    pub async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

pub fn plausible_mime(m: &str) -> bool {
    let mut parts = m.splitn(2, '/');
    let ok = |s: Option<&str>| {
        s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/'))
    };
    ok(parts.next()) && parts.next().is_some_and(|rest| ok(rest.split(';').next()))
}

/// A failure below HTTP: the reply never came or broke off. Worth retrying.
pub fn transport(call: Call<'_>, e: reqwest::Error) -> PortError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_redirect() {
        "too many redirects"
    } else if e.is_body() || e.is_decode() {
        "the reply broke off"
    } else {
        "transport error"
    };
    PortError::retryable(
        call.op,
        format!("{kind} for {}: {}", call.what, e.without_url()),
    )
}

/// `Retry-After` in seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// A path segment with everything but unreserved characters percent-encoded.
pub fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How a CRM's error replies become a classified `PortError`: from the call, the status,
/// a `Retry-After` and the (bounded) body.
pub type Classify = fn(Call<'_>, u16, Option<Duration>, &[u8]) -> PortError;

/// Reads an error reply, at most `MAX_ERROR_BODY` of it, and classifies it.
pub async fn error_from(call: Call<'_>, response: Response, classify: Classify) -> PortError {
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers(), Utc::now());
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    classify(call, status, retry_after, &body)
}

/// Sends a request that can be built again, paced by `limiter`, waiting out short
/// `Retry-After`s. Only a 429 (the request was refused) or an idempotent method is sent
/// again: a 5xx reply to a POST may come after the POST took effect.
pub async fn send(
    system: &'static str,
    limiter: &RateLimiter,
    classify: Classify,
    call: Call<'_>,
    idempotent: bool,
    build: impl Fn() -> RequestBuilder,
) -> PortResult<Response> {
    let mut waits = 0;
    loop {
        limiter.wait().await;
        let response = build().send().await.map_err(|e| transport(call, e))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        let err = error_from(call, response, classify).await;
        let again = status == 429 || (idempotent && status >= 500);
        match err.retry_after() {
            Some(wait)
                if again && wait <= MAX_IN_PROCESS_RETRY_AFTER && waits < MAX_IN_PROCESS_WAITS =>
            {
                waits += 1;
                tracing::info!(
                    operation = call.op,
                    system,
                    status,
                    wait_ms = wait.as_millis() as u64,
                    "the CRM asked casesync to wait; retrying in process"
                );
                tokio::time::sleep(wait).await;
            }
            _ => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2026-11-29T20:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            h
        };
        assert_eq!(
            retry_after(&headers("7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers("0.5"), now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            retry_after(&headers("Sun, 29 Nov 2026 20:00:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&headers("Sun, 29 Nov 2026 19:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("10042"), "10042");
        assert_eq!(segment("SUP-1"), "SUP-1");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn mime_types_are_checked_before_they_reach_a_header() {
        assert!(plausible_mime("text/plain"));
        assert!(plausible_mime("text/plain; charset=utf-8"));
        assert!(!plausible_mime("text"));
        assert!(!plausible_mime("text/"));
        assert!(!plausible_mime("te xt/plain"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limiter_spaces_requests() {
        let limiter = RateLimiter::new(4.0);
        let start = Instant::now();
        for _ in 0..5 {
            limiter.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}
