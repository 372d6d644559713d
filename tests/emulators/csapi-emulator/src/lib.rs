//! A stateful emulator of the Google Cloud Support API v2 (CSAPI), with a control API.
//!
//! Nobody can reach Google from casesync's development and test machines, yet the
//! connector's correctness depends on the details of that API: resource names under
//! several parents, `update_time>` search, enum encodings, field masks, media upload
//! and download, pagination, Google's error shape. This crate reproduces that surface,
//! as written in the discovery document (`cloudsupport:v2`), faithfully enough that
//! the official `google-cloud-support-v2` crate and casesync's own hand-rolled calls
//! run against it unchanged. The control API (`/_control/...` and the methods on
//! [`Emulator`]) lets tests act as Google Support and inject faults.
//!
//! Choices where the documentation is silent (each is also noted where it is made):
//! a case's canonical name is `{parent}/cases/{number}` and it answers under any
//! `projects/*` or `organizations/*` prefix; lists are newest first; closing a closed
//! case answers the case unchanged; commenting on or patching a closed case is
//! allowed; search lag shows an older snapshot of each case (see [`store`]). Queries,
//! filters and page tokens are read as strictly as the document allows ([`query`],
//! [`pagination`]), so a malformed request fails here rather than at Google; the crate's
//! README lists each reading.

pub mod control;
pub mod errors;
pub mod faults;
pub mod media;
pub mod model;
pub mod pagination;
pub mod public_api;
pub mod query;
pub mod store;
pub mod wire;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value;

pub use errors::ApiError;
pub use faults::{FaultKind, METHOD_IDS};
pub use model::Actor;
pub use store::RecordedRequest;

use model::{CaseState, EnumEncoding, Priority};
use store::{NewCase, State, case_number};

/// Largest request body accepted (attachments included).
const MAX_BODY_BYTES: usize = 512 * 1024 * 1024;

/// Who the emulator is and who calls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatorConfig {
    /// The identity every public-API write is attributed to (casesync's account).
    pub caller_email: String,
    pub caller_display_name: String,
    /// `organizations/{number}`: the organization every project belongs to unless
    /// mapped otherwise with [`Emulator::map_project`].
    pub organization: String,
    /// Project ids under the organization; the first is the default parent of
    /// control-API cases.
    pub projects: Vec<String>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            caller_email: "casesync@demo-project.iam.gserviceaccount.com".to_string(),
            caller_display_name: "casesync".to_string(),
            organization: "organizations/123456789012".to_string(),
            projects: vec!["demo-project".to_string()],
        }
    }
}

/// A case opened by a customer person (not by casesync), e.g. in the Cloud console.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewCustomerCase {
    /// `projects/{p}` or `organizations/{o}`; empty means the first configured project.
    pub parent: String,
    pub display_name: String,
    pub description: String,
    /// `P0`..`P4`; empty means `P3`.
    pub priority: String,
    /// Defaults to the first classification of the catalogue.
    pub classification_id: Option<String>,
    /// Empty means `alex.customer@example.com`.
    pub creator_email: String,
    /// Empty means `Alex Customer`.
    pub creator_name: String,
    /// Back-dates the case (and its first version), e.g. for the 30-day pickup rule.
    pub create_time: Option<DateTime<Utc>>,
}

/// The emulator: cheap to clone, all clones share one state.
#[derive(Clone)]
pub struct Emulator {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator").finish_non_exhaustive()
    }
}

fn anyhow_err(e: ApiError) -> anyhow::Error {
    anyhow::Error::new(e)
}

fn resolve_number(st: &State, case: &str) -> Result<u64, ApiError> {
    case_number(case)
        .filter(|n| st.cases.contains_key(n))
        .ok_or_else(|| ApiError::not_found(format!("Case \"{case}\" was not found.")))
}

impl Emulator {
    pub fn new(config: EmulatorConfig) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::new(config))),
        }
    }

    /// The state lock. Handlers never panic while holding it, so a poisoned lock
    /// still holds consistent data and is used as is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config(&self) -> EmulatorConfig {
        self.lock().config.clone()
    }

    /// The public API (`/v2`, `/upload/v2`, `/download/v2`) and the control API
    /// (`/_control`).
    pub fn router(&self) -> Router {
        let public = axum::routing::any(public_api::handle);
        Router::new()
            .merge(control::routes())
            .route("/v2/{*rest}", public.clone())
            .route("/upload/v2/{*rest}", public.clone())
            .route("/download/v2/{*rest}", public.clone())
            .fallback(public)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self.clone())
    }

    /// Serves a new emulator on `127.0.0.1` with an ephemeral port.
    pub async fn spawn(config: EmulatorConfig) -> anyhow::Result<RunningEmulator> {
        Self::new(config).serve("127.0.0.1:0".parse()?).await
    }

    /// Serves this emulator on `addr` until the returned handle is dropped.
    pub async fn serve(&self, addr: SocketAddr) -> anyhow::Result<RunningEmulator> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let local = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = self.router();
        let handle = tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "csapi emulator server failed");
            }
        });
        Ok(RunningEmulator {
            emulator: self.clone(),
            base_url: format!("http://{local}"),
            addr: local,
            shutdown: Some(tx),
            handle: Some(handle),
        })
    }

    /// Like [`Self::create_case_as_customer`], with the error as a value.
    pub fn try_create_case_as_customer(&self, req: NewCustomerCase) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let priority = if req.priority.is_empty() {
            Priority::P3
        } else {
            Priority::parse_set(&req.priority).ok_or_else(|| {
                ApiError::bad_field(
                    "priority",
                    format!("Invalid priority \"{}\": expected P0..P4.", req.priority),
                )
            })?
        };
        if req.display_name.trim().is_empty() {
            return Err(ApiError::bad_field(
                "displayName",
                "displayName is required.",
            ));
        }
        let parent = if req.parent.is_empty() {
            match st.config.projects.first() {
                Some(p) => format!("projects/{p}"),
                None => st.config.organization.clone(),
            }
        } else {
            req.parent
        };
        let new = NewCase {
            parent,
            display_name: req.display_name,
            description: req.description,
            priority,
            classification_id: req
                .classification_id
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| model::default_classification_id().to_string()),
            creator: Actor::customer(
                if req.creator_name.is_empty() {
                    "Alex Customer"
                } else {
                    &req.creator_name
                },
                if req.creator_email.is_empty() {
                    "alex.customer@example.com"
                } else {
                    &req.creator_email
                },
            ),
            create_time: req.create_time,
            time_zone: None,
            subscriber_email_addresses: Vec::new(),
            test_case: false,
            language_code: None,
            contact_email: None,
        };
        let number = st.create_case(new)?;
        let case = st
            .cases
            .get(&number)
            .ok_or_else(|| ApiError::with_code(500, "case vanished after create"))?;
        Ok(case.to_json(&case.current, EnumEncoding::Names))
    }

    /// Opens a case as a customer person. Returns the case (string enums), or
    /// Google's error body (`{"error":{...}}`) if the request is invalid.
    pub fn create_case_as_customer(&self, req: NewCustomerCase) -> Value {
        self.try_create_case_as_customer(req)
            .unwrap_or_else(|e| e.body())
    }

    /// Adds a comment by any actor; `case` is a case number or name.
    pub fn try_add_comment(
        &self,
        case: &str,
        author: Actor,
        body: &str,
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let number = resolve_number(&st, case)?;
        let id = st.add_comment(number, body, author)?;
        let case = st
            .cases
            .get(&number)
            .ok_or_else(|| ApiError::with_code(500, "case vanished"))?;
        case.comments
            .iter()
            .find(|c| c.id == id)
            .map(|c| case.comment_json(c))
            .ok_or_else(|| ApiError::with_code(500, "comment vanished"))
    }

    /// A comment by a Google Support engineer (`creator.googleSupport = true`).
    /// Returns the comment, or Google's error body if the case is unknown or the body
    /// is invalid.
    pub fn add_google_comment(&self, case_number: &str, author_name: &str, body: &str) -> Value {
        self.try_add_comment(case_number, Actor::google(author_name, None), body)
            .unwrap_or_else(|e| e.body())
    }

    /// A comment by a customer person (not casesync), e.g. typed in the console.
    pub fn add_customer_comment(
        &self,
        case_number: &str,
        author_name: &str,
        author_email: &str,
        body: &str,
    ) -> Value {
        self.try_add_comment(
            case_number,
            Actor::customer(author_name, author_email),
            body,
        )
        .unwrap_or_else(|e| e.body())
    }

    /// Adds an attachment by any actor; `case` is a case number or name.
    pub fn try_add_attachment(
        &self,
        case: &str,
        author: Actor,
        filename: &str,
        mime: &str,
        data: &[u8],
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let number = resolve_number(&st, case)?;
        let mime = if mime.is_empty() {
            model::guess_mime(filename)
        } else {
            mime
        };
        let id = st.add_attachment(number, filename, mime, Bytes::copy_from_slice(data), author)?;
        let case = st
            .cases
            .get(&number)
            .ok_or_else(|| ApiError::with_code(500, "case vanished"))?;
        case.attachments
            .iter()
            .find(|a| a.id == id)
            .map(|a| case.attachment_json(a))
            .ok_or_else(|| ApiError::with_code(500, "attachment vanished"))
    }

    /// An attachment uploaded by Google Support. Returns the attachment, or Google's
    /// error body.
    pub fn add_google_attachment(
        &self,
        case_number: &str,
        author_name: &str,
        filename: &str,
        mime: &str,
        data: &[u8],
    ) -> Value {
        self.try_add_attachment(
            case_number,
            Actor::google(author_name, None),
            filename,
            mime,
            data,
        )
        .unwrap_or_else(|e| e.body())
    }

    /// Google Support changes the priority (`P0`..`P4`).
    pub fn set_priority(&self, case_number: &str, p: &str) -> anyhow::Result<()> {
        let priority = Priority::parse_set(p)
            .with_context(|| format!("invalid priority {p:?}: expected P0..P4"))?;
        let mut st = self.lock();
        let number = resolve_number(&st, case_number).map_err(anyhow_err)?;
        st.set_priority(number, priority).map_err(anyhow_err)
    }

    /// Google Support moves the case to a state (`NEW`, `IN_PROGRESS_GOOGLE_SUPPORT`,
    /// `ACTION_REQUIRED`, `SOLUTION_PROVIDED`, `CLOSED`).
    pub fn set_state(&self, case_number: &str, state: &str) -> anyhow::Result<()> {
        let s = CaseState::parse(state)
            .filter(|s| *s != CaseState::Unspecified)
            .with_context(|| format!("invalid state {state:?}"))?;
        let mut st = self.lock();
        let number = resolve_number(&st, case_number).map_err(anyhow_err)?;
        st.set_state(number, s).map_err(anyhow_err)
    }

    /// Google Support (or the customer in the console) closes the case; closing a
    /// closed case changes nothing.
    pub fn close_case(&self, case_number: &str) -> anyhow::Result<()> {
        let mut st = self.lock();
        let number = resolve_number(&st, case_number).map_err(anyhow_err)?;
        if st
            .cases
            .get(&number)
            .is_some_and(|c| c.current.state.is_closed())
        {
            return Ok(());
        }
        st.set_state(number, CaseState::Closed).map_err(anyhow_err)
    }

    /// A case with string enums plus `comments` (oldest first) and `attachments`
    /// (metadata) arrays; `case_number` may also be a case name.
    pub fn case(&self, case_number: &str) -> Option<Value> {
        let st = self.lock();
        let number = store::case_number(case_number)?;
        st.cases.get(&number).map(|c| st.control_case_json(c))
    }

    /// Every case, by case number, shaped like [`Self::case`].
    pub fn cases(&self) -> Vec<Value> {
        let st = self.lock();
        st.cases.values().map(|c| st.control_case_json(c)).collect()
    }

    /// The bytes of an attachment, by its name under any parent of its case.
    pub fn attachment_bytes(&self, attachment_name: &str) -> Option<Vec<u8>> {
        let st = self.lock();
        public_api::find_attachment(&st, attachment_name)
            .ok()
            .map(|(_, a)| a.data.to_vec())
    }

    /// Public requests per discovery method id, failed ones included.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.lock().counters.clone()
    }

    /// The next `count` calls of `method` (a discovery method id such as
    /// `cases.create`) answer `status` in Google's error shape without doing anything.
    pub fn inject_failures(&self, method: &str, status: u16, count: u32) {
        self.lock()
            .faults
            .add(method, FaultKind::Fail { status }, count);
    }

    /// The next `count` calls of `method` do their work, then answer 503.
    pub fn inject_lost_replies(&self, method: &str, count: u32) {
        self.lock().faults.add(method, FaultKind::LostReply, count);
    }

    /// Latency added to every public call.
    pub fn set_latency(&self, d: Duration) {
        self.lock().faults.latency = d;
    }

    /// `cases.search` sees the cases as they were `d` ago (see [`store`]).
    pub fn set_search_lag(&self, d: Duration) {
        self.lock().faults.search_lag = d;
    }

    /// Removes injected failures, lost replies, latency and search lag.
    pub fn clear_faults(&self) {
        self.lock().faults = faults::Faults::default();
    }

    /// Puts a project under another organization than the configured one (for
    /// organization-wide `cases.search`).
    pub fn map_project(&self, project: &str, organization: &str) {
        self.lock()
            .project_orgs
            .insert(project.to_string(), organization.to_string());
    }

    /// Every public request received since start or the last reset.
    pub fn request_log(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Clears cases, faults, counters and the request log (numbering restarts).
    pub fn reset(&self) {
        self.lock().reset();
    }
}

/// A served emulator; the server stops when this is dropped.
#[derive(Debug)]
pub struct RunningEmulator {
    pub emulator: Emulator,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl RunningEmulator {
    /// Stops the server and waits until it has finished serving in-flight requests.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Graceful shutdown waits for idle keep-alive connections; do not outlive the handle.
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}
