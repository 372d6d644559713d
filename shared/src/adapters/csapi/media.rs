//! Attachment bytes: `media.upload` and `media.download` exist only in the discovery
//! document, not in the protos, so `google-cloud-support-v2` lacks them and they are
//! hand-rolled here with reqwest. Both stream (docs/INVARIANTS.md#attachment-limits): an upload sends the source's byte
//! stream as it arrives, a download hands the response body on as a stream, so memory
//! does not grow with the file.

use super::{errors, wire};
use crate::domain::{AttachmentUpload, GoogleAttachment};
use crate::error::{ErrorClass, PortError, PortResult};
use crate::ports::ByteStream;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use google_cloud_auth::credentials::{CacheableResource, Credentials};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use std::sync::{Arc, Mutex};

/// What the hand-rolled calls share with the crate's clients: the endpoint and the
/// credentials, so both kinds of call act as the same identity.
#[derive(Clone)]
pub struct MediaClient {
    pub http: reqwest::Client,
    /// Without a trailing slash.
    pub endpoint: String,
    pub credentials: Credentials,
}

impl MediaClient {
    /// The credentials' request headers (`Authorization: Bearer …`, a quota project):
    /// none at all for anonymous credentials, which is what an emulator expects.
    async fn auth_headers(&self, operation: &str) -> PortResult<HeaderMap> {
        match self.credentials.headers(Default::default()).await {
            Ok(CacheableResource::New { data, .. }) => Ok(data),
            // Only returned to a caller that presented an entity tag, which this one never
            // does; answering retryable beats sending an unauthenticated request.
            Ok(CacheableResource::NotModified) => Err(PortError::retryable(
                operation,
                "credentials returned no headers",
            )),
            Err(e) => Err(PortError::Failed {
                operation: operation.to_string(),
                class: if e.is_transient() {
                    ErrorClass::Retryable
                } else {
                    ErrorClass::Systemic
                },
                status: None,
                message: format!("cannot get an access token: {e}"),
                retry_after: None,
            }),
        }
    }

    /// `POST {endpoint}/upload/v2/{parent}/attachments?uploadType=multipart`, a
    /// `multipart/related` body: the `CreateAttachmentRequest` as JSON, then the media.
    ///
    /// Never repeated in process: the body stream is consumed by the first attempt.
    pub async fn upload(
        &self,
        operation: &str,
        case_name: &str,
        upload: AttachmentUpload,
    ) -> PortResult<GoogleAttachment> {
        check_name(operation, case_name, &["", "", "cases", ""])?;
        let url = format!(
            "{}/upload/v2/{case_name}/attachments?uploadType=multipart",
            self.endpoint
        );
        let boundary = format!("casesync_{}", uuid::Uuid::new_v4().simple());
        let (head, tail) = multipart_frame(&boundary, &upload.filename, &upload.mime_type);

        // A failing source stream surfaces in reqwest as an opaque body error; keep the
        // source's own error so its class (e.g. the CRM's 404) reaches the engine.
        let source_error: Arc<Mutex<Option<PortError>>> = Arc::new(Mutex::new(None));
        let slot = source_error.clone();
        let media = upload.body.inspect_err(move |e| {
            if let Ok(mut s) = slot.lock() {
                s.get_or_insert_with(|| e.clone());
            }
        });
        let body = stream::once(async move { Ok::<Bytes, PortError>(head) })
            .chain(media)
            .chain(stream::once(async move { Ok(tail) }));

        let mut headers = self.auth_headers(operation).await?;
        let content_type =
            HeaderValue::from_str(&format!("multipart/related; boundary={boundary}"))
                .map_err(|e| PortError::permanent(operation, e.to_string()))?;
        headers.insert(CONTENT_TYPE, content_type);
        let sent = self
            .http
            .post(url)
            .headers(headers)
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                let source = source_error.lock().ok().and_then(|mut s| s.take());
                return Err(source.unwrap_or_else(|| errors::from_reqwest(operation, &e)));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = if status.is_success() {
            crate::adapters::body_cap::read_capped(
                response,
                crate::adapters::body_cap::MAX_JSON_REPLY,
            )
            .await
            .map_err(|e| match e {
                crate::adapters::body_cap::CapError::Transport(e) => {
                    errors::from_reqwest(operation, &e)
                }
                too_large => PortError::permanent(operation, too_large.to_string()),
            })?
        } else {
            crate::adapters::body_cap::read_error_body(
                response,
                crate::adapters::body_cap::MAX_ERROR_REPLY,
            )
            .await
        };
        if !status.is_success() {
            return Err(errors::from_http(
                operation,
                status.as_u16(),
                &headers,
                &bytes,
            ));
        }
        // The upload happened; an answer we cannot read leaves its outcome unknown, which
        // the engine resolves by looking for the attachment (docs/INVARIANTS.md#the-attachment-ledger), so: retryable.
        let attachment: google_cloud_support_v2::model::Attachment = serde_json::from_slice(&bytes)
            .map_err(|e| {
                PortError::retryable(operation, format!("undecodable upload answer: {e}"))
            })?;
        Ok(wire::attachment(attachment))
    }

    /// `GET {endpoint}/v2/{name}:download?alt=media`, the body as a stream. One attempt;
    /// the caller repeats it in process on a short `Retry-After`.
    pub async fn download(&self, operation: &str, name: &str) -> PortResult<ByteStream> {
        check_name(operation, name, &["", "", "cases", "", "attachments", ""])?;
        let url = format!("{}/v2/{name}:download?alt=media", self.endpoint);
        let headers = self.auth_headers(operation).await?;
        let response = self
            .http
            .get(url)
            .headers(headers)
            .send()
            .await
            .map_err(|e| errors::from_reqwest(operation, &e))?;
        let status = response.status();
        if !status.is_success() {
            let headers = response.headers().clone();
            let bytes = crate::adapters::body_cap::read_error_body(
                response,
                crate::adapters::body_cap::MAX_ERROR_REPLY,
            )
            .await;
            return Err(errors::from_http(
                operation,
                status.as_u16(),
                &headers,
                &bytes,
            ));
        }
        let operation = operation.to_string();
        Ok(response
            .bytes_stream()
            .map_err(move |e| errors::from_reqwest(&operation, &e))
            .boxed())
    }
}

/// The JSON part of an upload: the discovery document's `CreateAttachmentRequest`
/// (public so the contract tests can hold it against the schema).
pub fn upload_metadata(filename: &str) -> serde_json::Value {
    serde_json::json!({ "attachment": { "filename": filename } })
}

/// The bytes before and after the media in a `multipart/related` upload body.
fn multipart_frame(boundary: &str, filename: &str, mime_type: &str) -> (Bytes, Bytes) {
    let metadata = upload_metadata(filename);
    let head = format!(
        "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n\
         --{boundary}\r\nContent-Type: {}\r\n\r\n",
        media_type(mime_type)
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    (Bytes::from(head), Bytes::from(tail))
}

/// The media part's content type: the source's, when it is a plain `type/subtype[; …]`
/// that cannot break the part's header; `application/octet-stream` otherwise.
fn media_type(mime_type: &str) -> &str {
    let m = mime_type.trim();
    let essence = m.split(';').next().unwrap_or("").trim();
    let well_formed = essence
        .split_once('/')
        .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty() && !s.contains('/'))
        && m.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    if well_formed {
        m
    } else {
        "application/octet-stream"
    }
}

/// A resource name goes into the URL path unescaped (the discovery document's `{+name}`
/// is a reserved expansion), so it must have the documented shape and only characters
/// that cannot change the path or start a query (`:` stays: domain-scoped project ids
/// such as `example.com:proj` carry it): `shape` gives each segment, "" for an id.
fn check_name(operation: &str, name: &str, shape: &[&str]) -> PortResult<()> {
    let segments: Vec<&str> = name.split('/').collect();
    let ok = segments.len() == shape.len()
        && segments.iter().zip(shape).all(|(seg, want)| {
            if want.is_empty() {
                !seg.is_empty()
                    && *seg != "."
                    && *seg != ".."
                    && seg.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | ':')
                    })
            } else {
                seg == want
            }
        });
    if ok {
        Ok(())
    } else {
        Err(PortError::Invalid(format!(
            "{operation}: {name:?} is not a resource name of the form {}",
            shape
                .iter()
                .map(|s| if s.is_empty() { "*" } else { s })
                .collect::<Vec<_>>()
                .join("/")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_is_multipart_related_with_the_create_attachment_request() {
        let (head, tail) = multipart_frame("B", "graph \"v2\".jpg", "image/jpeg");
        assert_eq!(
            std::str::from_utf8(&head).unwrap(),
            "--B\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n\
             {\"attachment\":{\"filename\":\"graph \\\"v2\\\".jpg\"}}\r\n\
             --B\r\nContent-Type: image/jpeg\r\n\r\n"
        );
        assert_eq!(&tail[..], b"\r\n--B--\r\n");
    }

    #[test]
    fn odd_media_types_fall_back_to_octet_stream() {
        assert_eq!(
            media_type("text/plain; charset=utf-8"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(media_type(""), "application/octet-stream");
        assert_eq!(media_type("text"), "application/octet-stream");
        assert_eq!(
            media_type("text/plain\r\nX-Evil: 1"),
            "application/octet-stream"
        );
    }

    #[test]
    fn names_are_checked_before_they_reach_a_url() {
        let case = ["", "", "cases", ""];
        assert!(check_name("op", "projects/demo-project/cases/10000001", &case).is_ok());
        assert!(check_name("op", "organizations/123/cases/1", &case).is_ok());
        assert!(check_name("op", "projects/example.com:proj/cases/1", &case).is_ok());
        for bad in [
            "projects/p/cases",
            "projects/p/cases/1/extra",
            "projects/../cases/1",
            "projects/p/cases/1?alt=json",
            "projects/p/cases/1#x",
            "projects/p/cases/%2e%2e",
            "projects/p/comments/1",
        ] {
            let e = check_name("op", bad, &case).unwrap_err();
            assert_eq!(e.class(), ErrorClass::Permanent, "{bad}");
        }
        let attachment = ["", "", "cases", "", "attachments", ""];
        assert!(
            check_name(
                "op",
                "projects/p/cases/1/attachments/0684M00000P3h1fQAB",
                &attachment
            )
            .is_ok()
        );
    }
}
