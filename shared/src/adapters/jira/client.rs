//! HTTP toward one Jira site: authentication, the request rate casesync allows itself,
//! waiting out short `Retry-After`s, streaming attachments both ways, and turning every
//! failure into a classified `PortError` (docs/FAILURES.md#failure-classes) whose message names the operation and
//! the object's id, never a body or a file name (docs/ARCHITECTURE.md#security).

use super::config::{JiraAuth, JiraConfig};
use super::mapping::undecodable;
use crate::adapters::http_support::{self, Call, RateLimiter, plausible_mime, transport};
use crate::domain::AttachmentUpload;
use crate::error::{ErrorClass, PortError, PortResult};
use crate::ports::ByteStream;
use futures::StreamExt;
use reqwest::header::ACCEPT;
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug)]
pub struct JiraClient {
    http: reqwest::Client,
    base: String,
    auth: JiraAuth,
    limiter: RateLimiter,
    timeout: Duration,
}

impl JiraClient {
    pub fn new(config: &JiraConfig) -> PortResult<Self> {
        let timeout = Duration::from_secs(config.request_timeout_secs);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(timeout))
            // Per read, so a long attachment transfer is not cut off while it progresses.
            .read_timeout(timeout)
            // The attachment content URL answers 303 to a self-authorising media URL;
            // reqwest drops the Authorization header when a redirect leaves the host.
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("casesync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                PortError::Config(format!("crm.jira: cannot build an HTTP client: {e}"))
            })?;
        Ok(JiraClient {
            http,
            base: config.base().to_string(),
            auth: config.auth()?,
            limiter: RateLimiter::new(config.requests_per_second),
            timeout,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        let builder = match &self.auth {
            JiraAuth::Basic { email, api_token } => {
                builder.basic_auth(email, Some(api_token.expose()))
            }
            JiraAuth::Bearer { token } => builder.bearer_auth(token.expose()),
        };
        builder.header(ACCEPT, "application/json")
    }

    /// Sends a request that can be built again (see `http_support::send`).
    async fn send(
        &self,
        call: Call<'_>,
        idempotent: bool,
        build: impl Fn() -> RequestBuilder,
    ) -> PortResult<Response> {
        http_support::send("jira", &self.limiter, http_error, call, idempotent, build).await
    }

    /// A JSON call; `body` is sent as JSON when given.
    pub async fn json<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> PortResult<T> {
        let bytes = self.call(call, method, path, query, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            undecodable(
                call.op,
                format!("{} (line {}, column {})", call.what, e.line(), e.column()),
            )
        })
    }

    /// A JSON call whose reply casesync does not read (204s).
    pub async fn call(
        &self,
        call: Call<'_>,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> PortResult<bytes::Bytes> {
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
        read_json_reply(call, response).await
    }

    /// Streams a download; redirects are followed.
    pub async fn download(&self, call: Call<'_>, path: &str) -> PortResult<ByteStream> {
        let response = self
            .send(call, true, || self.request(Method::GET, path))
            .await?;
        let op = call.op;
        let what = call.what.to_string();
        Ok(response
            .bytes_stream()
            .map(move |chunk| chunk.map_err(|e| transport(Call { op, what: &what }, e)))
            .boxed())
    }

    /// Streams a multipart upload in part `file`. Sent once: the body cannot be replayed,
    /// so even a short `Retry-After` goes back to the caller as retryable.
    pub async fn upload<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        path: &str,
        upload: AttachmentUpload,
    ) -> PortResult<T> {
        let mime = if plausible_mime(&upload.mime_type) {
            upload.mime_type.as_str()
        } else {
            "application/octet-stream"
        };
        let part = reqwest::multipart::Part::stream_with_length(
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
        let form = reqwest::multipart::Form::new().part("file", part);
        self.limiter.wait().await;
        let response = self
            .request(Method::POST, path)
            // Jira blocks multipart posts without it (XSRF check).
            .header("X-Atlassian-Token", "no-check")
            .multipart(form)
            .send()
            .await
            .map_err(|e| transport(call, e))?;
        if !response.status().is_success() {
            return Err(http_support::error_from(call, response, http_error).await);
        }
        let bytes = read_json_reply(call, response).await?;
        serde_json::from_slice(&bytes).map_err(|_| undecodable(call.op, call.what.to_string()))
    }
}

/// Classifies an HTTP failure (docs/FAILURES.md#failure-classes). The message keeps only the names of the fields
/// Jira complained about: its messages may quote what was written.
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
    let fields: Vec<String> = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("errors").and_then(Value::as_object).cloned())
        .map(|errors| errors.keys().cloned().collect())
        .unwrap_or_default();
    let mut message = format!("Jira answered HTTP {status} for {}", call.what);
    if !fields.is_empty() {
        message.push_str(&format!(" (fields: {})", fields.join(", ")));
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

/// A JSON reply, read to [`MAX_JSON_REPLY`] (docs/ARCHITECTURE.md#security).
async fn read_json_reply(call: Call<'_>, response: reqwest::Response) -> PortResult<bytes::Bytes> {
    use crate::adapters::body_cap::{CapError, MAX_JSON_REPLY, read_capped};
    read_capped(response, MAX_JSON_REPLY)
        .await
        .map_err(|e| match e {
            CapError::Transport(e) => transport(call, e),
            too_large => PortError::permanent(call.op, format!("{}: {too_large}", call.what)),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: Call<'static> = Call {
        op: "jira.add_comment",
        what: "issue 10042",
    };

    #[test]
    fn http_failures_are_classified_as_section_11_10_says() {
        let e = http_error(CALL, 404, None, b"{}");
        assert!(e.is_not_found());
        assert!(e.to_string().contains("jira.add_comment"));
        for (status, class) in [
            (401, ErrorClass::Systemic),
            (403, ErrorClass::Systemic),
            (400, ErrorClass::Permanent),
            (413, ErrorClass::Permanent),
            (422, ErrorClass::Permanent),
            (408, ErrorClass::Retryable),
            (409, ErrorClass::Retryable),
            (429, ErrorClass::Retryable),
            (500, ErrorClass::Retryable),
            (503, ErrorClass::Retryable),
        ] {
            let e = http_error(CALL, status, Some(Duration::from_secs(3)), b"");
            assert_eq!(e.class(), class, "HTTP {status}");
            let kept = e.retry_after().is_some();
            assert_eq!(kept, class == ErrorClass::Retryable, "HTTP {status}");
        }
    }

    #[test]
    fn messages_name_fields_but_never_quote_jira() {
        let body = br#"{"errorMessages":["Comment body 'secret text' is too long"],
                        "errors":{"customfield_10050":"Option 'Yes please' is not valid"},"status":400}"#;
        let e = http_error(CALL, 400, None, body);
        let text = e.to_string();
        assert!(
            text.contains("jira.add_comment") && text.contains("issue 10042"),
            "{text}"
        );
        assert!(text.contains("customfield_10050"), "{text}");
        assert!(
            !text.contains("secret") && !text.contains("please"),
            "{text}"
        );
        let e = http_error(CALL, 500, None, b"<html>proxy error: body</html>");
        assert!(!e.to_string().contains("proxy"));
    }
}
