//! HTTP toward one RT's REST2: token authentication, the request rate casesync allows
//! itself, waiting out short `Retry-After`s, multipart uploads that stream, and turning
//! every failure into a classified `PortError` (docs/FAILURES.md#failure-classes) whose message names the operation
//! and the object's id, never a body or a file name (docs/ARCHITECTURE.md#security).

use super::config::RtConfig;
use super::wire::{self, undecodable};
use crate::adapters::http_support::{self, Call, RateLimiter, plausible_mime, transport};
use crate::domain::AttachmentUpload;
use crate::error::{ErrorClass, PortError, PortResult};
use reqwest::header::{ACCEPT, AUTHORIZATION, LOCATION};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use std::time::Duration;

/// A successful reply: its status, `Location` and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub body: bytes::Bytes,
}

impl Reply {
    pub fn json(&self, call: Call<'_>) -> PortResult<Value> {
        serde_json::from_slice(&self.body).map_err(|e| {
            undecodable(
                call.op,
                format!("{} (line {}, column {})", call.what, e.line(), e.column()),
            )
        })
    }
}

#[derive(Debug)]
pub struct RtClient {
    http: reqwest::Client,
    /// `{base_url}/REST/2.0`.
    api: String,
    token: super::config::Secret,
    limiter: RateLimiter,
    timeout: Duration,
}

impl RtClient {
    pub fn new(config: &RtConfig) -> PortResult<Self> {
        let timeout = Duration::from_secs(config.request_timeout_secs);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .read_timeout(timeout)
            // RT answers on its own host; a redirect elsewhere is a misconfigured URL.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("casesync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PortError::Config(format!("crm.rt: cannot build an HTTP client: {e}")))?;
        Ok(RtClient {
            http,
            api: format!("{}/REST/2.0", config.base()),
            token: config.token.clone(),
            limiter: RateLimiter::new(config.requests_per_second),
            timeout,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.api))
            .header(AUTHORIZATION, format!("token {}", self.token.expose()))
            .header(ACCEPT, "application/json")
    }

    /// Sends a request that can be built again (see `http_support::send`).
    async fn send(
        &self,
        call: Call<'_>,
        idempotent: bool,
        build: impl Fn() -> RequestBuilder,
    ) -> PortResult<Response> {
        http_support::send("rt", &self.limiter, http_error, call, idempotent, build).await
    }

    /// A call with an optional JSON body.
    pub async fn call(
        &self,
        call: Call<'_>,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> PortResult<Reply> {
        let idempotent = matches!(method, Method::GET | Method::PUT | Method::DELETE);
        let response = self
            .send(call, idempotent, || {
                let mut b = self
                    .request(method.clone(), path)
                    .query(query)
                    .timeout(self.timeout);
                if let Some(body) = body {
                    b = b.json(body);
                }
                b
            })
            .await?;
        reply(call, response).await
    }

    /// A GET whose successful reply is returned unread, for the caller to stream.
    pub async fn get_streamed(&self, call: Call<'_>, path: &str) -> PortResult<Response> {
        self.send(call, true, || {
            self.request(Method::GET, path).timeout(self.timeout)
        })
        .await
    }

    /// A GET whose JSON reply is returned.
    pub async fn get(
        &self,
        call: Call<'_>,
        path: &str,
        query: &[(&str, String)],
    ) -> PortResult<Value> {
        self.call(call, Method::GET, path, query, None)
            .await?
            .json(call)
    }

    /// Posts a comment or correspondence with one attachment, as multipart (`JSON` part
    /// plus an `Attachments` file part), streaming the file. Sent once: the body cannot be
    /// replayed, so even a short `Retry-After` goes back to the caller as retryable.
    pub async fn post_with_attachment(
        &self,
        call: Call<'_>,
        path: &str,
        json: &Value,
        upload: AttachmentUpload,
    ) -> PortResult<Reply> {
        let mime = upload_mime(&upload.mime_type);
        let file = reqwest::multipart::Part::stream_with_length(
            reqwest::Body::wrap_stream(upload.body),
            upload.size_bytes,
        )
        .file_name(upload.filename.clone())
        .mime_str(mime)
        .map_err(|_| {
            PortError::Invalid(format!(
                "{}: the attachment's MIME type is not valid",
                call.op
            ))
        })?;
        let form = reqwest::multipart::Form::new()
            .text("JSON", json.to_string())
            .part("Attachments", file);
        self.limiter.wait().await;
        let response = self
            .request(Method::POST, path)
            .multipart(form)
            .send()
            .await
            .map_err(|e| transport(call, e))?;
        if !response.status().is_success() {
            return Err(http_support::error_from(call, response, http_error).await);
        }
        reply(call, response).await
    }
}

async fn reply(call: Call<'_>, response: Response) -> PortResult<Reply> {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    use crate::adapters::body_cap::{CapError, MAX_JSON_REPLY, read_capped};
    // Capped (docs/ARCHITECTURE.md#security); attachments stream through `get_streamed` instead.
    let body = read_capped(response, MAX_JSON_REPLY)
        .await
        .map_err(|e| match e {
            CapError::Transport(e) => transport(call, e),
            too_large => PortError::permanent(call.op, format!("{}: {too_large}", call.what)),
        })?;
    Ok(Reply {
        status,
        location,
        body,
    })
}

/// The type a file is sent to RT as. RT converts `text/*` parts to UTF-8 (a Latin-1 log
/// comes back with other bytes, trap), so text travels as `application/octet-stream`,
/// which RT stores untouched: docs/ARCHITECTURE.md#what-syncs wants the same bytes on both sides.
pub fn upload_mime(m: &str) -> &str {
    let essence = m.split(';').next().unwrap_or("").trim();
    if !plausible_mime(m) || essence.to_ascii_lowercase().starts_with("text/") {
        "application/octet-stream"
    } else {
        m
    }
}

/// Classifies an HTTP failure (docs/FAILURES.md#failure-classes). RT's `message` is kept only when it is one of its
/// fixed texts; anything else may quote what was written.
pub fn http_error(
    call: Call<'_>,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> PortError {
    if status == 404 {
        return PortError::NotFound {
            operation: call.op.to_string(),
            what: call.what.to_string(),
        };
    }
    let mut message = format!("RT answered HTTP {status} for {}", call.what);
    if let Some(m) = wire::messages(body).first()
        && m.len() <= 120
        && !m.contains(['\'', '"', '\n'])
    {
        message.push_str(&format!(": {m}"));
    }
    let class = ErrorClass::from_http_status(status);
    PortError::Failed {
        operation: call.op.to_string(),
        class,
        status: Some(status),
        message,
        retry_after: retry_after.filter(|_| class == ErrorClass::Retryable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: Call<'static> = Call {
        op: "rt.add_comment",
        what: "ticket 7",
    };

    #[test]
    fn http_failures_are_classified_as_section_11_10_says() {
        assert!(http_error(CALL, 404, None, br#"{"message":"Not Found"}"#).is_not_found());
        for (status, class) in [
            (401, ErrorClass::Systemic),
            (403, ErrorClass::Systemic),
            (400, ErrorClass::Permanent),
            (412, ErrorClass::Permanent),
            (408, ErrorClass::Retryable),
            (409, ErrorClass::Retryable),
            (429, ErrorClass::Retryable),
            (500, ErrorClass::Retryable),
            (503, ErrorClass::Retryable),
        ] {
            let e = http_error(CALL, status, Some(Duration::from_secs(3)), b"");
            assert_eq!(e.class(), class, "HTTP {status}");
            assert_eq!(
                e.retry_after().is_some(),
                class == ErrorClass::Retryable,
                "HTTP {status}"
            );
        }
    }

    #[test]
    fn messages_keep_rts_fixed_texts_but_never_quotes() {
        let e = http_error(
            CALL,
            400,
            None,
            br#"{"message":"Message could not be recorded"}"#,
        );
        let text = e.to_string();
        assert!(
            text.contains("rt.add_comment") && text.contains("ticket 7"),
            "{text}"
        );
        assert!(text.contains("Message could not be recorded"), "{text}");
        let e = http_error(
            CALL,
            400,
            None,
            br#"["Ticket 1: Status 'secret' isn't valid"]"#,
        );
        assert!(!e.to_string().contains("secret"), "{e}");
        let e = http_error(CALL, 500, None, b"<html>proxy error: body</html>");
        assert!(!e.to_string().contains("proxy"), "{e}");
    }

    #[test]
    fn text_files_travel_as_octet_streams_so_rt_keeps_their_bytes() {
        assert_eq!(upload_mime("text/plain"), "application/octet-stream");
        assert_eq!(
            upload_mime("Text/CSV; charset=latin1"),
            "application/octet-stream"
        );
        assert_eq!(upload_mime("image/png"), "image/png");
        assert_eq!(
            upload_mime("application/vnd.tcpdump.pcap"),
            "application/vnd.tcpdump.pcap"
        );
        assert_eq!(upload_mime("te xt"), "application/octet-stream");
    }
}
