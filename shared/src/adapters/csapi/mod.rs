//! The real [`SupportApi`]: Google Cloud Support API v2 ("CSAPI") through the official
//! `google-cloud-support-v2` crate, plus hand-rolled media upload and download (the crate
//! lacks them). Everything CSAPI-specific the engine must not know lives below this
//! module: the query grammar ([`query`]), the wire types ([`wire`]), the error rules
//! ([`errors`]) and the media protocol ([`media`]).
//!
//! Behaviour the port leaves to the adapter:
//! - every list and search reads all pages, 100 items a page;
//! - comments come back oldest first, sorted here (the API's order is undocumented);
//! - the crate's own retries are off, so each failure is classified once, by docs/FAILURES.md#failure-classes; a
//!   429 (or, for reads, a 503) whose `Retry-After` is at most
//!   [`crate::retry_policy::MAX_IN_PROCESS_RETRY_AFTER`] is waited out and the call
//!   repeated up to [`CsapiConfig::max_in_process_retries`] times; everything else goes
//!   back to the engine, whose queue retries;
//! - searches (`cases.search` for polling and lookups, `caseClassifications.search`) are
//!   built only from casesync's code and configuration, so a refusal of one (400 and the
//!   like) is systemic, never permanent ([`PortError::of_own_request`]): a bug in a query
//!   alerts and retries instead of dead-lettering every case;
//! - comment bodies over [`MAX_COMMENT_CHARS`] are refused, never truncated: splitting
//!   into marked parts is the engine's ([`crate::domain::markers::mirror_comment_parts`]),
//!   since each part must carry its own marker to be resumable (docs/INVARIANTS.md#markers).

pub mod errors;
pub mod media;
pub mod query;
pub mod wire;

use crate::domain::markers::MAX_COMMENT_CHARS;
use crate::domain::{
    AttachmentUpload, GoogleAttachment, GoogleCase, GoogleComment, NewGoogleCase, Priority,
};
use crate::error::{PortError, PortResult};
use crate::ports::{ByteStream, SupportApi};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use google_cloud_auth::credentials::Credentials;
use google_cloud_support_v2::client::{CaseAttachmentService, CaseService, CommentService};
use google_cloud_support_v2::model;
use std::collections::HashSet;
use std::future::Future;
use std::ops::ControlFlow;
use std::time::Duration;

/// The production endpoint, used when [`CsapiConfig::endpoint`] is `None`.
pub const DEFAULT_ENDPOINT: &str = "https://cloudsupport.googleapis.com";

/// Items requested per page: the documented maximum of `cases.attachments.list`, and
/// accepted by every other list and search.
pub const PAGE_SIZE: i32 = 100;

/// How to reach CSAPI and as whom.
#[derive(Clone)]
pub struct CsapiConfig {
    /// Base URL without the `/v2` (`http://127.0.0.1:4567` for the emulator); `None`
    /// means [`DEFAULT_ENDPOINT`].
    pub endpoint: Option<String>,
    /// Send no credentials at all (the emulator). Needs an `endpoint`: Google itself
    /// refuses anonymous calls.
    pub anonymous: bool,
    /// Deadline of each API call attempt; for media transfers, the connect timeout and
    /// the longest pause between two reads (a large file may take longer in total).
    pub request_timeout: Duration,
    /// How often a call answered with a short `Retry-After` is repeated in process
    /// before the error goes to the caller.
    pub max_in_process_retries: u32,
    /// Credentials the caller already holds (e.g. impersonated, or built by a test).
    /// They win over `anonymous`; with neither, application default credentials are used.
    pub credentials: Option<Credentials>,
}

impl Default for CsapiConfig {
    /// Production: Google's endpoint, application default credentials, the 60 s deadline
    /// of Google's published client configuration, two in-process retries.
    fn default() -> Self {
        CsapiConfig {
            endpoint: None,
            anonymous: false,
            request_timeout: Duration::from_secs(60),
            max_in_process_retries: 2,
            credentials: None,
        }
    }
}

// By hand so that no credential material can reach a log through `{:?}` (docs/ARCHITECTURE.md#security).
impl std::fmt::Debug for CsapiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsapiConfig")
            .field("endpoint", &self.endpoint)
            .field("anonymous", &self.anonymous)
            .field("request_timeout", &self.request_timeout)
            .field("max_in_process_retries", &self.max_in_process_retries)
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|_| "<supplied by the caller>"),
            )
            .finish()
    }
}

impl CsapiConfig {
    /// An emulator at `endpoint`, called anonymously.
    pub fn emulator(endpoint: impl Into<String>) -> Self {
        CsapiConfig {
            endpoint: Some(endpoint.into()),
            anonymous: true,
            ..CsapiConfig::default()
        }
    }
}

/// The CSAPI adapter. Cheap to clone: the clients share their connections.
#[derive(Clone)]
pub struct CsapiClient {
    cases: CaseService,
    comments: CommentService,
    attachments: CaseAttachmentService,
    media: media::MediaClient,
    max_in_process_retries: u32,
}

impl std::fmt::Debug for CsapiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsapiClient")
            .field("endpoint", &self.media.endpoint)
            .finish_non_exhaustive()
    }
}

/// Builds one of the crate's clients with the adapter's common settings. A macro because
/// the three builders share no trait that exposes their settings.
macro_rules! build_client {
    ($client:ty, $endpoint:expr, $credentials:expr, $timeout:expr) => {{
        let mut builder = <$client>::builder()
            .with_credentials($credentials.clone())
            .with_retry_policy(google_cloud_gax::retry_policy::NeverRetry)
            .with_attempt_timeout($timeout);
        if let Some(endpoint) = $endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        builder.build().await.map_err(|e| {
            PortError::Config(format!(
                "google: cannot build the {} client: {e}",
                stringify!($client)
            ))
        })?
    }};
}

impl CsapiClient {
    /// Builds the clients. Fails with [`PortError::Config`] (systemic) when the endpoint
    /// is malformed or no credentials can be found, so start-up stops with the reason.
    pub async fn connect(config: CsapiConfig) -> PortResult<Self> {
        let endpoint = match &config.endpoint {
            Some(e) => Some(normalize_endpoint(e)?),
            None => None,
        };
        let credentials = match (&config.credentials, config.anonymous) {
            (Some(c), _) => c.clone(),
            (None, true) => {
                if endpoint.is_none() {
                    return Err(PortError::Config(
                        "google.endpoint: anonymous credentials need an endpoint (an emulator)"
                            .into(),
                    ));
                }
                google_cloud_auth::credentials::anonymous::Builder::new().build()
            }
            (None, false) => google_cloud_auth::credentials::Builder::default()
                .build()
                .map_err(|e| {
                    PortError::Config(format!("google: no application default credentials: {e}"))
                })?,
        };
        let timeout = config.request_timeout;
        let cases = build_client!(CaseService, endpoint.clone(), credentials, timeout);
        let comments = build_client!(CommentService, endpoint.clone(), credentials, timeout);
        let attachments = build_client!(
            CaseAttachmentService,
            endpoint.clone(),
            credentials,
            timeout
        );
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .build()
            .map_err(|e| PortError::Config(format!("google: cannot build an HTTP client: {e}")))?;
        Ok(CsapiClient {
            cases,
            comments,
            attachments,
            media: media::MediaClient {
                http,
                endpoint: endpoint.unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
                credentials,
            },
            max_in_process_retries: config.max_in_process_retries,
        })
    }

    /// The base URL calls go to.
    pub fn endpoint(&self) -> &str {
        &self.media.endpoint
    }

    /// Runs `attempt` until it succeeds, fails for good, or was repeated
    /// `max_in_process_retries` times after a short `Retry-After` (see
    /// [`errors::wait_in_process`]).
    async fn retrying<T, F, Fut>(
        &self,
        operation: &str,
        idempotent: bool,
        mut attempt: F,
    ) -> PortResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = PortResult<T>>,
    {
        let mut retries = 0u32;
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) => match errors::wait_in_process(&e, idempotent) {
                    Some(wait) if retries < self.max_in_process_retries => {
                        retries += 1;
                        tracing::info!(
                            operation,
                            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                            retry = retries,
                            "CSAPI asked to retry after a short wait"
                        );
                        tokio::time::sleep(wait).await;
                    }
                    _ => return Err(e),
                },
            }
        }
    }

    /// One call through the crate: its error classified, retried as [`Self::retrying`].
    async fn call<T, F, Fut>(&self, operation: &str, idempotent: bool, mut send: F) -> PortResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = google_cloud_gax::Result<T>>,
    {
        self.retrying(operation, idempotent, || {
            let pending = send();
            async move { pending.await.map_err(|e| errors::from_gax(operation, &e)) }
        })
        .await
    }

    /// Reads pages until the last one or until `on_page` breaks. `fetch` gets the page
    /// token ("" first); `on_page` takes a response and returns its next page token.
    async fn pages<R, F, Fut>(
        &self,
        operation: &str,
        mut fetch: F,
        mut on_page: impl FnMut(R) -> ControlFlow<(), String>,
    ) -> PortResult<()>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = google_cloud_gax::Result<R>>,
    {
        let mut token = String::new();
        let mut seen = HashSet::new();
        loop {
            let response = self.call(operation, true, || fetch(token.clone())).await?;
            match on_page(response) {
                ControlFlow::Break(()) => return Ok(()),
                ControlFlow::Continue(next) if next.is_empty() => return Ok(()),
                ControlFlow::Continue(next) => {
                    // A server that hands out a token twice would keep us here forever.
                    if !seen.insert(next.clone()) {
                        return Err(PortError::retryable(
                            operation,
                            "the API repeated a page token",
                        ));
                    }
                    token = next;
                }
            }
        }
    }

    async fn search(&self, parent: &str, query: &str) -> PortResult<Vec<GoogleCase>> {
        let operation = format!("CSAPI cases.search {parent}");
        let mut found = Vec::new();
        self.pages(
            &operation,
            |token| {
                self.cases
                    .search_cases()
                    .set_parent(parent)
                    .set_query(query)
                    .set_page_size(PAGE_SIZE)
                    .set_page_token(token)
                    .send()
            },
            |page: model::SearchCasesResponse| {
                found.extend(page.cases.into_iter().map(wire::case));
                ControlFlow::Continue(page.next_page_token)
            },
        )
        .await
        .map_err(PortError::of_own_request)?;
        let found = wire::dedup_cases(found);
        tracing::debug!(operation, cases = found.len(), "CSAPI search done");
        Ok(found)
    }
}

/// `http://host:port/` → `http://host:port`; anything that is not an http(s) URL is a
/// configuration error naming the key.
fn normalize_endpoint(endpoint: &str) -> PortResult<String> {
    let trimmed = endpoint.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(trimmed)
        .map_err(|e| PortError::Config(format!("google.endpoint {trimmed:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(PortError::Config(format!(
            "google.endpoint {trimmed:?}: expected an http or https URL"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(PortError::Config(format!(
            "google.endpoint {trimmed:?}: must not carry a query or fragment"
        )));
    }
    Ok(trimmed.to_string())
}

#[async_trait]
impl SupportApi for CsapiClient {
    async fn get_case(&self, name: &str) -> PortResult<GoogleCase> {
        let operation = format!("CSAPI cases.get {name}");
        let case = self
            .call(&operation, true, || {
                self.cases.get_case().set_name(name).send()
            })
            .await?;
        Ok(wire::case(case))
    }

    async fn search_cases_updated_since(
        &self,
        parent: &str,
        since: DateTime<Utc>,
    ) -> PortResult<Vec<GoogleCase>> {
        self.search(parent, &query::updated_since(since)).await
    }

    async fn find_cases_by_creator_and_text(
        &self,
        parent: &str,
        creator_email: &str,
        text: &str,
    ) -> PortResult<Vec<GoogleCase>> {
        self.search(parent, &query::creator_and_text(creator_email, text))
            .await
    }

    async fn create_case(&self, parent: &str, case: &NewGoogleCase) -> PortResult<GoogleCase> {
        let operation = format!("CSAPI cases.create {parent}");
        let body = wire::new_case(case);
        let created = self
            .call(&operation, false, || {
                self.cases
                    .create_case()
                    .set_parent(parent)
                    .set_case(body.clone())
                    .send()
            })
            .await?;
        tracing::info!(operation, case = %created.name, "CSAPI case created");
        Ok(wire::case(created))
    }

    async fn update_priority(&self, name: &str, priority: Priority) -> PortResult<GoogleCase> {
        let operation = format!("CSAPI cases.patch {name}");
        // Always with a mask: without one the API overwrites every updatable field.
        let case = self
            .call(&operation, false, || {
                self.cases
                    .update_case()
                    .set_case(
                        model::Case::new()
                            .set_name(name)
                            .set_priority(wire::priority_to_wire(priority)),
                    )
                    .set_update_mask(google_cloud_wkt::FieldMask::default().set_paths(["priority"]))
                    .send()
            })
            .await?;
        Ok(wire::case(case))
    }

    async fn close_case(&self, name: &str) -> PortResult<GoogleCase> {
        let operation = format!("CSAPI cases.close {name}");
        let case = self
            .call(&operation, false, || {
                self.cases.close_case().set_name(name).send()
            })
            .await?;
        Ok(wire::case(case))
    }

    async fn list_comments(&self, case_name: &str) -> PortResult<Vec<GoogleComment>> {
        let operation = format!("CSAPI cases.comments.list {case_name}");
        let mut comments = Vec::new();
        self.pages(
            &operation,
            |token| {
                self.comments
                    .list_comments()
                    .set_parent(case_name)
                    .set_page_size(PAGE_SIZE)
                    .set_page_token(token)
                    .send()
            },
            |page: model::ListCommentsResponse| {
                comments.extend(page.comments.into_iter().map(wire::comment));
                ControlFlow::Continue(page.next_page_token)
            },
        )
        .await?;
        Ok(wire::sort_comments(comments))
    }

    async fn create_comment(&self, case_name: &str, body: &str) -> PortResult<GoogleComment> {
        let operation = format!("CSAPI cases.comments.create {case_name}");
        let chars = body.chars().count();
        if chars > MAX_COMMENT_CHARS {
            return Err(PortError::permanent(
                operation,
                format!(
                    "comment has {chars} characters, over the API's {MAX_COMMENT_CHARS}; \
                     long bodies are split into marked parts before this call"
                ),
            ));
        }
        let comment = self
            .call(&operation, false, || {
                self.comments
                    .create_comment()
                    .set_parent(case_name)
                    .set_comment(model::Comment::new().set_body(body))
                    .send()
            })
            .await?;
        Ok(wire::comment(comment))
    }

    async fn list_attachments(&self, case_name: &str) -> PortResult<Vec<GoogleAttachment>> {
        let operation = format!("CSAPI cases.attachments.list {case_name}");
        let mut attachments = Vec::new();
        // Pages may be short or even empty while more follow (documented): only the
        // token ends the listing.
        self.pages(
            &operation,
            |token| {
                self.attachments
                    .list_attachments()
                    .set_parent(case_name)
                    .set_page_size(PAGE_SIZE)
                    .set_page_token(token)
                    .send()
            },
            |page: model::ListAttachmentsResponse| {
                attachments.extend(page.attachments.into_iter().map(wire::attachment));
                ControlFlow::Continue(page.next_page_token)
            },
        )
        .await?;
        let mut attachments = wire::dedup_attachments(attachments);
        attachments.sort_by(|a, b| {
            a.create_time
                .cmp(&b.create_time)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(attachments)
    }

    async fn download_attachment(&self, attachment: &GoogleAttachment) -> PortResult<ByteStream> {
        let operation = format!("CSAPI media.download {}", attachment.name);
        self.retrying(&operation, true, || {
            self.media.download(&operation, &attachment.name)
        })
        .await
    }

    async fn upload_attachment(
        &self,
        case_name: &str,
        upload: AttachmentUpload,
    ) -> PortResult<GoogleAttachment> {
        let operation = format!("CSAPI media.upload {case_name}");
        let size = upload.size_bytes;
        let created = self.media.upload(&operation, case_name, upload).await?;
        tracing::info!(
            operation,
            attachment = %created.name,
            size_bytes = size,
            "CSAPI attachment uploaded"
        );
        Ok(created)
    }

    async fn classification_exists(&self, classification_id: &str) -> PortResult<bool> {
        let operation = "CSAPI caseClassifications.search";
        let mut found = false;
        self.pages(
            operation,
            |token| {
                self.cases
                    .search_case_classifications()
                    .set_page_size(PAGE_SIZE)
                    .set_page_token(token)
                    .send()
            },
            |page: model::SearchCaseClassificationsResponse| {
                if page
                    .case_classifications
                    .iter()
                    .any(|c| c.id == classification_id)
                {
                    found = true;
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(page.next_page_token)
            },
        )
        .await
        .map_err(PortError::of_own_request)?;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorClass;

    use crate::testing::answering_server as answering;

    const INVALID_QUERY: &str = r#"{"error":{"code":400,"message":"Invalid query: terms must be joined with AND.","status":"INVALID_ARGUMENT"}}"#;
    const NO_PARENT: &str =
        r#"{"error":{"code":404,"message":"Parent not found.","status":"NOT_FOUND"}}"#;

    fn class_and_status(e: &PortError) -> (ErrorClass, Option<u16>) {
        match e {
            PortError::Failed { class, status, .. } => (*class, *status),
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_refused_search_is_systemic_not_permanent() {
        let client = CsapiClient::connect(CsapiConfig::emulator(answering(400, INVALID_QUERY)))
            .await
            .unwrap();
        let parent = "projects/p";
        let errors = [
            client
                .search_cases_updated_since(parent, Utc::now())
                .await
                .unwrap_err(),
            client
                .find_cases_by_creator_and_text(parent, "a@b.c", "casesync: rt case 4")
                .await
                .unwrap_err(),
            client.classification_exists("X").await.unwrap_err(),
        ];
        for e in errors {
            assert_eq!(
                class_and_status(&e),
                (ErrorClass::Systemic, Some(400)),
                "{e}"
            );
            assert!(e.to_string().contains("joined with AND"), "{e}");
        }
        // A write's 400 is about what the message carries: still permanent.
        let e = client
            .create_comment("projects/p/cases/1", "hello")
            .await
            .unwrap_err();
        assert_eq!(class_and_status(&e), (ErrorClass::Permanent, Some(400)));
    }

    #[tokio::test]
    async fn a_search_of_a_missing_parent_is_systemic_not_a_missing_case() {
        let client = CsapiClient::connect(CsapiConfig::emulator(answering(404, NO_PARENT)))
            .await
            .unwrap();
        let e = client
            .find_cases_by_creator_and_text("projects/p", "a@b.c", "casesync: rt case 4")
            .await
            .unwrap_err();
        assert!(!e.is_not_found(), "{e:?}");
        assert_eq!(class_and_status(&e), (ErrorClass::Systemic, Some(404)));
        assert!(
            client
                .get_case("projects/p/cases/1")
                .await
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn endpoints_are_normalized_or_refused() {
        assert_eq!(
            normalize_endpoint("http://127.0.0.1:4567/").unwrap(),
            "http://127.0.0.1:4567"
        );
        assert_eq!(
            normalize_endpoint(DEFAULT_ENDPOINT).unwrap(),
            DEFAULT_ENDPOINT
        );
        for bad in ["127.0.0.1:4567", "ftp://x", "http://x/?a=b", "not a url"] {
            let e = normalize_endpoint(bad).unwrap_err();
            assert!(matches!(e, PortError::Config(_)), "{bad}: {e:?}");
        }
    }

    #[tokio::test]
    async fn anonymous_needs_an_endpoint() {
        let config = CsapiConfig {
            anonymous: true,
            ..CsapiConfig::default()
        };
        let e = CsapiClient::connect(config).await.unwrap_err();
        assert!(matches!(e, PortError::Config(_)), "{e:?}");
    }

    #[tokio::test]
    async fn an_emulator_config_connects_without_network() {
        let client = CsapiClient::connect(CsapiConfig::emulator("http://127.0.0.1:9/"))
            .await
            .unwrap();
        assert_eq!(client.endpoint(), "http://127.0.0.1:9");
    }

    #[tokio::test]
    async fn long_comments_are_refused_before_any_request() {
        // Port 9 (discard) is never contacted: the check comes first.
        let client = CsapiClient::connect(CsapiConfig::emulator("http://127.0.0.1:9"))
            .await
            .unwrap();
        let body = "é".repeat(MAX_COMMENT_CHARS + 1);
        let e = client
            .create_comment("projects/p/cases/1", &body)
            .await
            .unwrap_err();
        assert_eq!(e.class(), crate::ErrorClass::Permanent);
        assert!(e.to_string().contains("cases.comments.create"), "{e}");
        assert!(
            !e.to_string().contains('é'),
            "the body never appears in errors"
        );
    }
}
