//! In-memory doubles of `SupportApi` and `Crm`, a recording queue, and fault injection
//! (fail the Nth call, lose a reply), for the engine's tests and for the CRM contract suite.
//! Compiled only for tests and behind the `test-support` feature.

use crate::clock::Clock;
use crate::domain::{
    AttachmentUpload, CrmAttachment, CrmCase, CrmComment, Direction, GoogleActor, GoogleAttachment,
    GoogleCase, GoogleCaseKey, GoogleComment, NewCrmCase, NewGoogleCase, Priority,
};
use crate::error::{PortError, PortResult};
use crate::ports::{ByteStream, Crm, SupportApi, SyncQueue};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// What a planned fault does to one call.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The call fails with this error and changes nothing.
    Fail(PortError),
    /// The call takes effect, then reports this error: the reply was lost.
    LostReply(PortError),
}

/// Counts calls per operation and injects planned faults into chosen ones.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<FaultState>,
}

/// Something a test does at the moment a call starts (a person acting mid-sync).
struct Hook(Box<dyn FnOnce() + Send>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

#[derive(Debug, Default)]
struct FaultState {
    calls: HashMap<String, usize>,
    plans: Vec<(String, usize, Fault)>,
    hooks: Vec<(String, usize, Hook)>,
}

impl Faults {
    /// Plans a fault for call number `nth` (1-based, counted from now on) of `operation`.
    pub fn plan(&self, operation: &str, nth: usize, fault: Fault) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let base = s.calls.get(operation).copied().unwrap_or(0);
        s.plans.push((operation.to_string(), base + nth, fault));
    }

    /// Runs `action` when call number `nth` (1-based, counted from now on) of `operation`
    /// starts, before it takes effect: a person acting while a sync runs.
    pub fn before_call(&self, operation: &str, nth: usize, action: impl FnOnce() + Send + 'static) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let base = s.calls.get(operation).copied().unwrap_or(0);
        s.hooks
            .push((operation.to_string(), base + nth, Hook(Box::new(action))));
    }

    /// The next `count` calls of `operation` fail with a retryable 503.
    pub fn fail_next(&self, operation: &str, count: usize) {
        for n in 1..=count {
            self.plan(operation, n, Fault::Fail(unavailable(operation)));
        }
    }

    /// The next call of `operation` takes effect but its reply is lost.
    pub fn lose_next_reply(&self, operation: &str) {
        self.plan(operation, 1, Fault::LostReply(unavailable(operation)));
    }

    /// Drops every fault still planned: the outage is over.
    pub fn clear(&self) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .plans
            .clear();
    }

    pub fn calls(&self, operation: &str) -> usize {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.calls.get(operation).copied().unwrap_or(0)
    }

    /// Counts a call; runs a hook planned for it; returns a fault planned for it.
    fn enter(&self, operation: &str) -> Option<Fault> {
        let (hook, fault) = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let n = {
                let c = s.calls.entry(operation.to_string()).or_insert(0);
                *c += 1;
                *c
            };
            let hook = s
                .hooks
                .iter()
                .position(|(op, at, _)| op == operation && *at == n)
                .map(|pos| s.hooks.remove(pos).2);
            let fault = s
                .plans
                .iter()
                .position(|(op, at, _)| op == operation && *at == n)
                .map(|pos| s.plans.remove(pos).2);
            (hook, fault)
        };
        // Outside the lock: the hook may call into the doubles.
        if let Some(Hook(action)) = hook {
            action();
        }
        fault
    }

    /// Yields to the runtime first, as every real call does, so concurrent syncs on the
    /// doubles really interleave; then runs `effect` under the planned fault of this call.
    async fn run<T>(
        &self,
        operation: &str,
        effect: impl FnOnce() -> PortResult<T>,
    ) -> PortResult<T> {
        tokio::task::yield_now().await;
        match self.enter(operation) {
            None => effect(),
            Some(Fault::Fail(e)) => Err(e),
            Some(Fault::LostReply(e)) => {
                effect()?;
                Err(e)
            }
        }
    }
}

fn unavailable(operation: &str) -> PortError {
    PortError::from_http(operation, 503, "injected fault: service unavailable", None)
}

/// What RT answers when it refuses a custom field: 200, and a refusal in its messages.
fn field_refused(operation: &str) -> PortError {
    PortError::Failed {
        operation: operation.to_string(),
        class: crate::error::ErrorClass::Systemic,
        status: Some(200),
        message: "the CRM answered 200 but did not apply the Google-name field".into(),
        retry_after: None,
    }
}

fn not_found(operation: &str, what: &str) -> PortError {
    PortError::NotFound {
        operation: operation.to_string(),
        what: what.to_string(),
    }
}

/// Hands out strictly increasing timestamps, so items created within one instant of a
/// manual clock still have an order, as real APIs' microsecond stamps do.
#[derive(Debug, Default)]
struct Stamps {
    last: Option<DateTime<Utc>>,
}

impl Stamps {
    fn next(&mut self, now: DateTime<Utc>) -> DateTime<Utc> {
        let t = match self.last {
            Some(last) if now <= last => last + chrono::Duration::milliseconds(1),
            _ => now,
        };
        self.last = Some(t);
        t
    }
}

async fn collect(mut body: ByteStream) -> PortResult<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

fn stream_of(data: Vec<u8>) -> ByteStream {
    futures::stream::iter(vec![Ok(Bytes::from(data))]).boxed()
}

#[derive(Debug, Clone)]
pub struct MemoryGoogleCase {
    pub case: GoogleCase,
    pub comments: Vec<GoogleComment>,
    pub attachments: Vec<(GoogleAttachment, Vec<u8>)>,
}

#[derive(Debug, Default)]
struct SupportState {
    cases: BTreeMap<String, MemoryGoogleCase>,
    next_number: u64,
    next_item: u64,
    stamps: Stamps,
}

/// The one case classification the double's catalogue holds.
pub const MEMORY_CLASSIFICATION_ID: &str = "demo-classification";

/// The display name and email of the customer who opens cases in the double.
pub const MEMORY_CUSTOMER: (&str, &str) = ("Casey Customer", "casey@example.com");

/// An in-memory Cloud Support API. Calls made through the `SupportApi` port are attributed
/// to casesync's identity; the other methods act as a customer or a Google engineer.
pub struct MemorySupportApi {
    state: Mutex<SupportState>,
    searches: Mutex<Vec<DateTime<Utc>>>,
    clock: Arc<dyn Clock>,
    pub faults: Faults,
    pub caller: GoogleActor,
    /// Cases created less than this long ago are missing from `cases.search`: its index lags.
    search_lag: Mutex<chrono::Duration>,
}

impl MemorySupportApi {
    pub fn new(clock: Arc<dyn Clock>, caller_email: &str) -> Self {
        MemorySupportApi {
            state: Mutex::new(SupportState {
                next_number: 10_000_000,
                ..SupportState::default()
            }),
            searches: Mutex::new(Vec::new()),
            clock,
            faults: Faults::default(),
            caller: GoogleActor {
                display_name: "casesync".into(),
                email: Some(caller_email.into()),
                google_support: false,
            },
            search_lag: Mutex::new(chrono::Duration::zero()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SupportState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn number_of(name: &str) -> String {
        name.rsplit('/').next().unwrap_or(name).to_string()
    }

    fn insert_case(
        &self,
        parent: &str,
        new: &NewGoogleCase,
        creator: GoogleActor,
        created: Option<DateTime<Utc>>,
    ) -> GoogleCase {
        let mut s = self.lock();
        s.next_number += 1;
        let number = s.next_number.to_string();
        let t = created.unwrap_or_else(|| s.stamps.next(self.clock.now()));
        let case = GoogleCase {
            name: format!("{parent}/cases/{number}"),
            display_name: new.display_name.clone(),
            description: new.description.clone(),
            classification_id: new.classification_id.clone(),
            classification_display_name: "Compute \u{3e} Compute Engine".into(),
            priority: new.priority,
            closed: false,
            create_time: t,
            update_time: t,
            creator,
        };
        s.cases.insert(
            number,
            MemoryGoogleCase {
                case: case.clone(),
                comments: Vec::new(),
                attachments: Vec::new(),
            },
        );
        case
    }

    /// A customer opens a case in the Google console.
    /// From now on `cases.search` misses cases created less than `lag` ago.
    pub fn set_search_lag(&self, lag: chrono::Duration) {
        *self.search_lag.lock().unwrap_or_else(|e| e.into_inner()) = lag;
    }

    /// Whether search shows a case created at `created` yet.
    fn indexed(&self, created: DateTime<Utc>) -> bool {
        let lag = *self.search_lag.lock().unwrap_or_else(|e| e.into_inner());
        created + lag <= self.clock.now()
    }

    pub fn open_case_as_customer(
        &self,
        parent: &str,
        title: &str,
        description: &str,
        priority: Priority,
        created: Option<DateTime<Utc>>,
    ) -> GoogleCase {
        self.insert_case(
            parent,
            &NewGoogleCase {
                display_name: title.into(),
                description: description.into(),
                classification_id: MEMORY_CLASSIFICATION_ID.into(),
                priority,
                subscriber_emails: vec![],
                test_case: false,
            },
            GoogleActor {
                display_name: MEMORY_CUSTOMER.0.into(),
                email: Some(MEMORY_CUSTOMER.1.into()),
                google_support: false,
            },
            created,
        )
    }

    fn modify<T>(
        &self,
        number: &str,
        f: impl FnOnce(&mut MemoryGoogleCase, DateTime<Utc>, u64) -> T,
    ) -> PortResult<T> {
        let mut s = self.lock();
        let now = s.stamps.next(self.clock.now());
        s.next_item += 1;
        let item = s.next_item;
        let c = s
            .cases
            .get_mut(number)
            .ok_or_else(|| not_found("cases.get", &format!("case {number}")))?;
        c.case.update_time = now;
        Ok(f(c, now, item))
    }

    fn comment_as(
        &self,
        case_name: &str,
        actor: GoogleActor,
        body: &str,
    ) -> PortResult<GoogleComment> {
        let number = Self::number_of(case_name);
        self.modify(&number, |c, now, item| {
            let comment = GoogleComment {
                name: format!("{}/comments/{item}", c.case.name),
                body: body.to_string(),
                create_time: now,
                creator: actor,
            };
            c.comments.push(comment.clone());
            comment
        })
    }

    /// A Google engineer comments.
    pub fn comment_as_engineer(&self, case_name: &str, author: &str, body: &str) -> GoogleComment {
        let actor = GoogleActor {
            display_name: author.into(),
            email: None,
            google_support: true,
        };
        self.comment_as(case_name, actor, body)
            .unwrap_or_else(|e| panic!("test double: {e}"))
    }

    fn attach_as(
        &self,
        case_name: &str,
        actor: GoogleActor,
        filename: &str,
        mime: &str,
        data: Vec<u8>,
    ) -> PortResult<GoogleAttachment> {
        let number = Self::number_of(case_name);
        self.modify(&number, |c, now, item| {
            let a = GoogleAttachment {
                name: format!("{}/attachments/{item}", c.case.name),
                filename: filename.to_string(),
                mime_type: mime.to_string(),
                size_bytes: data.len() as u64,
                create_time: now,
                creator: actor,
            };
            c.attachments.push((a.clone(), data));
            a
        })
    }

    pub fn attach_as_engineer(
        &self,
        case_name: &str,
        author: &str,
        filename: &str,
        data: &[u8],
    ) -> GoogleAttachment {
        let actor = GoogleActor {
            display_name: author.into(),
            email: None,
            google_support: true,
        };
        self.attach_as(
            case_name,
            actor,
            filename,
            "application/octet-stream",
            data.to_vec(),
        )
        .unwrap_or_else(|e| panic!("test double: {e}"))
    }

    pub fn set_priority_as_google(&self, case_name: &str, p: Priority) {
        let number = Self::number_of(case_name);
        self.modify(&number, |c, _, _| c.case.priority = p)
            .unwrap_or_else(|e| panic!("test double: {e}"));
    }

    pub fn close_as_google(&self, case_name: &str) {
        let number = Self::number_of(case_name);
        self.modify(&number, |c, _, _| c.case.closed = true)
            .unwrap_or_else(|e| panic!("test double: {e}"));
    }

    pub fn delete_case(&self, case_name: &str) {
        self.lock().cases.remove(&Self::number_of(case_name));
    }

    /// The `since` of every update search, in order.
    pub fn searches(&self) -> Vec<DateTime<Utc>> {
        self.searches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn case(&self, case_name: &str) -> Option<MemoryGoogleCase> {
        self.lock().cases.get(&Self::number_of(case_name)).cloned()
    }

    pub fn cases(&self) -> Vec<MemoryGoogleCase> {
        self.lock().cases.values().cloned().collect()
    }
}

#[async_trait]
impl SupportApi for MemorySupportApi {
    async fn get_case(&self, name: &str) -> PortResult<GoogleCase> {
        self.faults
            .run("cases.get", || {
                self.lock()
                    .cases
                    .get(&Self::number_of(name))
                    .map(|c| c.case.clone())
                    .ok_or_else(|| not_found("cases.get", name))
            })
            .await
    }

    async fn search_cases_updated_since(
        &self,
        _parent: &str,
        since: DateTime<Utc>,
    ) -> PortResult<Vec<GoogleCase>> {
        self.searches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(since);
        self.faults
            .run("cases.search", || {
                Ok(self
                    .lock()
                    .cases
                    .values()
                    .filter(|c| c.case.update_time > since && self.indexed(c.case.create_time))
                    .map(|c| c.case.clone())
                    .collect())
            })
            .await
    }

    async fn find_cases_by_creator_and_text(
        &self,
        _parent: &str,
        creator_email: &str,
        text: &str,
    ) -> PortResult<Vec<GoogleCase>> {
        self.faults
            .run("cases.search", || {
                Ok(self
                    .lock()
                    .cases
                    .values()
                    // As `creator.email="…" AND "text"`: the email ignores case; free text
                    // is a case-insensitive match over display name, description and
                    // comments (the discovery document; the emulator's reading).
                    .filter(|c| {
                        let text = text.to_lowercase();
                        let has = |s: &str| s.to_lowercase().contains(&text);
                        c.case
                            .creator
                            .email
                            .as_deref()
                            .is_some_and(|e| e.eq_ignore_ascii_case(creator_email))
                            && (has(&c.case.display_name)
                                || has(&c.case.description)
                                || c.comments.iter().any(|x| has(&x.body)))
                            && self.indexed(c.case.create_time)
                    })
                    .map(|c| c.case.clone())
                    .collect())
            })
            .await
    }

    async fn create_case(&self, parent: &str, case: &NewGoogleCase) -> PortResult<GoogleCase> {
        self.faults
            .run("cases.create", || {
                Ok(self.insert_case(parent, case, self.caller.clone(), None))
            })
            .await
    }

    async fn update_priority(&self, name: &str, priority: Priority) -> PortResult<GoogleCase> {
        self.faults
            .run("cases.patch", || {
                self.modify(&Self::number_of(name), |c, _, _| {
                    c.case.priority = priority;
                    c.case.clone()
                })
            })
            .await
    }

    async fn close_case(&self, name: &str) -> PortResult<GoogleCase> {
        self.faults
            .run("cases.close", || {
                self.modify(&Self::number_of(name), |c, _, _| {
                    c.case.closed = true;
                    c.case.clone()
                })
            })
            .await
    }

    async fn list_comments(&self, case_name: &str) -> PortResult<Vec<GoogleComment>> {
        self.faults
            .run("cases.comments.list", || {
                let s = self.lock();
                let c = s
                    .cases
                    .get(&Self::number_of(case_name))
                    .ok_or_else(|| not_found("cases.comments.list", case_name))?;
                let mut out = c.comments.clone();
                out.sort_by_key(|c| c.create_time);
                Ok(out)
            })
            .await
    }

    async fn create_comment(&self, case_name: &str, body: &str) -> PortResult<GoogleComment> {
        if body.chars().count() > crate::domain::markers::MAX_COMMENT_CHARS {
            return Err(PortError::from_http(
                "cases.comments.create",
                400,
                "comment body over 12,800 characters",
                None,
            ));
        }
        self.faults
            .run("cases.comments.create", || {
                self.comment_as(case_name, self.caller.clone(), body)
            })
            .await
    }

    async fn list_attachments(&self, case_name: &str) -> PortResult<Vec<GoogleAttachment>> {
        self.faults
            .run("cases.attachments.list", || {
                let s = self.lock();
                let c = s
                    .cases
                    .get(&Self::number_of(case_name))
                    .ok_or_else(|| not_found("cases.attachments.list", case_name))?;
                Ok(c.attachments.iter().map(|(a, _)| a.clone()).collect())
            })
            .await
    }

    async fn download_attachment(&self, attachment: &GoogleAttachment) -> PortResult<ByteStream> {
        let data = self
            .faults
            .run("media.download", || {
                let s = self.lock();
                s.cases
                    .values()
                    .flat_map(|c| c.attachments.iter())
                    .find(|(a, _)| a.name == attachment.name)
                    .map(|(_, d)| d.clone())
                    .ok_or_else(|| not_found("media.download", &attachment.name))
            })
            .await?;
        Ok(stream_of(data))
    }

    async fn upload_attachment(
        &self,
        case_name: &str,
        upload: AttachmentUpload,
    ) -> PortResult<GoogleAttachment> {
        let data = collect(upload.body).await?;
        self.faults
            .run("media.upload", || {
                self.attach_as(
                    case_name,
                    self.caller.clone(),
                    &upload.filename,
                    &upload.mime_type,
                    data,
                )
            })
            .await
    }

    /// Like `caseClassifications.search`: only the catalogue's ids exist.
    async fn classification_exists(&self, classification_id: &str) -> PortResult<bool> {
        Ok(classification_id == MEMORY_CLASSIFICATION_ID)
    }
}

#[derive(Debug, Clone)]
pub struct MemoryCrmCase {
    pub case: CrmCase,
    pub comments: Vec<CrmComment>,
    pub attachments: Vec<(CrmAttachment, Vec<u8>)>,
}

#[derive(Debug, Default)]
struct CrmState {
    cases: BTreeMap<String, MemoryCrmCase>,
    next_id: u64,
    stamps: Stamps,
}

/// An in-memory CRM. Calls through the `Crm` port are casesync's own; the other methods act
/// as a support agent.
pub struct MemoryCrm {
    state: Mutex<CrmState>,
    searches: Mutex<Vec<DateTime<Utc>>>,
    clock: Arc<dyn Clock>,
    pub faults: Faults,
    /// Report case update times in whole seconds, as Request Tracker's `LastUpdated` does.
    whole_second_update_times: std::sync::atomic::AtomicBool,
    /// Refuse writes of the Google-name field, as RT does for a value it rejects: a create
    /// still creates the case, without the field, and says so.
    refuse_google_name_field: std::sync::atomic::AtomicBool,
}

pub const CONNECTOR_NAME: &str = "casesync";

impl MemoryCrm {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        MemoryCrm {
            state: Mutex::new(CrmState {
                next_id: 1000,
                ..CrmState::default()
            }),
            searches: Mutex::new(Vec::new()),
            clock,
            faults: Faults::default(),
            whole_second_update_times: std::sync::atomic::AtomicBool::new(false),
            refuse_google_name_field: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// While on, the CRM refuses the Google-name field on create and on update.
    pub fn refuse_google_name_field(&self, on: bool) {
        self.refuse_google_name_field
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    fn refuses_google_name_field(&self) -> bool {
        self.refuse_google_name_field
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// From now on case update times have whole seconds only, like RT's `LastUpdated`.
    pub fn use_whole_second_update_times(&self) {
        self.whole_second_update_times
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn case_update_time(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        if self
            .whole_second_update_times
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
        } else {
            t
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CrmState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(
        &self,
        summary: &str,
        description: &str,
        priority: Priority,
        flagged: bool,
        google: Option<String>,
        created: Option<DateTime<Utc>>,
    ) -> CrmCase {
        let mut s = self.lock();
        s.next_id += 1;
        let id = s.next_id.to_string();
        let t = created.unwrap_or_else(|| s.stamps.next(self.clock.now()));
        let case = CrmCase {
            id: id.clone(),
            summary: summary.into(),
            description: description.into(),
            priority: Some(priority),
            closed: false,
            sync_flag: flagged,
            google_case_name: google,
            created_at: t,
            updated_at: self.case_update_time(t),
            url: Some(format!("https://crm.example.com/cases/{id}")),
        };
        s.cases.insert(
            id,
            MemoryCrmCase {
                case: case.clone(),
                comments: Vec::new(),
                attachments: Vec::new(),
            },
        );
        case
    }

    /// An agent opens a case, flagged for sync or not.
    pub fn open_case_as_agent(
        &self,
        summary: &str,
        description: &str,
        priority: Priority,
        flagged: bool,
        created: Option<DateTime<Utc>>,
    ) -> CrmCase {
        self.insert(summary, description, priority, flagged, None, created)
    }

    fn modify<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut MemoryCrmCase, DateTime<Utc>, u64) -> T,
    ) -> PortResult<T> {
        let mut s = self.lock();
        let now = s.stamps.next(self.clock.now());
        s.next_id += 1;
        let item = s.next_id;
        let update_time = self.case_update_time(now);
        let c = s
            .cases
            .get_mut(id)
            .ok_or_else(|| not_found("crm", &format!("case {id}")))?;
        c.case.updated_at = update_time;
        Ok(f(c, now, item))
    }

    fn comment_as(
        &self,
        id: &str,
        author: &str,
        by_connector: bool,
        body: &str,
    ) -> PortResult<CrmComment> {
        self.modify(id, |c, now, item| {
            let comment = CrmComment {
                id: item.to_string(),
                body: body.into(),
                author_name: author.into(),
                by_connector,
                created_at: now,
            };
            c.comments.push(comment.clone());
            comment
        })
    }

    pub fn comment_as_agent(&self, id: &str, author: &str, body: &str) -> CrmComment {
        self.comment_as(id, author, false, body)
            .unwrap_or_else(|e| panic!("test double: {e}"))
    }

    fn attach_as(
        &self,
        id: &str,
        author: &str,
        by_connector: bool,
        filename: &str,
        mime: &str,
        data: Vec<u8>,
    ) -> PortResult<CrmAttachment> {
        self.modify(id, |c, now, item| {
            let a = CrmAttachment {
                id: item.to_string(),
                filename: filename.into(),
                mime_type: mime.into(),
                size_bytes: data.len() as u64,
                author_name: author.into(),
                by_connector,
                created_at: now,
            };
            c.attachments.push((a.clone(), data));
            a
        })
    }

    pub fn attach_as_agent(
        &self,
        id: &str,
        author: &str,
        filename: &str,
        data: &[u8],
    ) -> CrmAttachment {
        self.attach_as(
            id,
            author,
            false,
            filename,
            "application/octet-stream",
            data.to_vec(),
        )
        .unwrap_or_else(|e| panic!("test double: {e}"))
    }

    pub fn set_priority_as_agent(&self, id: &str, p: Priority) {
        self.modify(id, |c, _, _| c.case.priority = Some(p))
            .unwrap_or_else(|e| panic!("test double: {e}"));
    }

    pub fn set_closed_as_agent(&self, id: &str, closed: bool) {
        self.modify(id, |c, _, _| c.case.closed = closed)
            .unwrap_or_else(|e| panic!("test double: {e}"));
    }

    pub fn set_flag_as_agent(&self, id: &str, flagged: bool) {
        self.modify(id, |c, _, _| c.case.sync_flag = flagged)
            .unwrap_or_else(|e| panic!("test double: {e}"));
    }

    pub fn delete_case(&self, id: &str) {
        self.lock().cases.remove(id);
    }

    /// The `since` of every updated-since search, in order.
    pub fn searches(&self) -> Vec<DateTime<Utc>> {
        self.searches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn case(&self, id: &str) -> Option<MemoryCrmCase> {
        self.lock().cases.get(id).cloned()
    }

    pub fn cases(&self) -> Vec<MemoryCrmCase> {
        self.lock().cases.values().cloned().collect()
    }
}

#[async_trait]
impl Crm for MemoryCrm {
    fn kind(&self) -> &str {
        "memory"
    }

    async fn get_case(&self, id: &str) -> PortResult<CrmCase> {
        self.faults
            .run("get_case", || {
                self.lock()
                    .cases
                    .get(id)
                    .map(|c| c.case.clone())
                    .ok_or_else(|| not_found("get_case", id))
            })
            .await
    }

    async fn search_updated_since(&self, since: DateTime<Utc>) -> PortResult<Vec<CrmCase>> {
        self.searches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(since);
        self.faults
            .run("search", || {
                Ok(self
                    .lock()
                    .cases
                    .values()
                    .filter(|c| c.case.sync_flag && c.case.updated_at >= since)
                    .map(|c| c.case.clone())
                    .collect())
            })
            .await
    }

    async fn find_by_google_case(&self, key: &GoogleCaseKey) -> PortResult<Option<CrmCase>> {
        self.faults
            .run("search", || {
                Ok(self
                    .lock()
                    .cases
                    .values()
                    .find(|c| {
                        c.case
                            .google_case_name
                            .as_deref()
                            .and_then(|n| GoogleCaseKey::from_case_name(n).ok())
                            .as_ref()
                            == Some(key)
                    })
                    .map(|c| c.case.clone()))
            })
            .await
    }

    async fn create_case(&self, case: &NewCrmCase) -> PortResult<CrmCase> {
        self.faults
            .run("create_case", || {
                if self.refuses_google_name_field() {
                    let created = self.insert(
                        &case.summary,
                        &case.description,
                        case.priority,
                        true,
                        None,
                        None,
                    );
                    return Err(PortError::PartlyApplied {
                        id: created.id,
                        cause: Box::new(field_refused("create_case")),
                    });
                }
                Ok(self.insert(
                    &case.summary,
                    &case.description,
                    case.priority,
                    true,
                    Some(case.google_case_name.clone()),
                    None,
                ))
            })
            .await
    }

    async fn set_google_case_name(&self, id: &str, google_case_name: &str) -> PortResult<()> {
        self.faults
            .run("update_case", || {
                if self.refuses_google_name_field() {
                    return Err(field_refused("set_google_case_name"));
                }
                self.modify(id, |c, _, _| {
                    c.case.google_case_name = Some(google_case_name.into())
                })
            })
            .await
    }

    async fn set_priority(&self, id: &str, priority: Priority) -> PortResult<()> {
        self.faults
            .run("update_case", || {
                self.modify(id, |c, _, _| c.case.priority = Some(priority))
            })
            .await
    }

    async fn close_case(&self, id: &str) -> PortResult<()> {
        self.faults
            .run("close_case", || {
                self.modify(id, |c, _, _| c.case.closed = true)
            })
            .await
    }

    async fn list_comments(
        &self,
        id: &str,
        since: Option<DateTime<Utc>>,
    ) -> PortResult<Vec<CrmComment>> {
        self.faults
            .run("list_comments", || {
                let s = self.lock();
                let c = s
                    .cases
                    .get(id)
                    .ok_or_else(|| not_found("list_comments", id))?;
                let mut out: Vec<_> = c
                    .comments
                    .iter()
                    .filter(|x| since.is_none_or(|t| x.created_at >= t))
                    .cloned()
                    .collect();
                out.sort_by_key(|c| std::cmp::Reverse(c.created_at));
                Ok(out)
            })
            .await
    }

    async fn add_comment(&self, id: &str, body: &str) -> PortResult<CrmComment> {
        self.faults
            .run("add_comment", || {
                self.comment_as(id, CONNECTOR_NAME, true, body)
            })
            .await
    }

    async fn list_attachments(&self, id: &str) -> PortResult<Vec<CrmAttachment>> {
        self.faults
            .run("list_attachments", || {
                let s = self.lock();
                let c = s
                    .cases
                    .get(id)
                    .ok_or_else(|| not_found("list_attachments", id))?;
                Ok(c.attachments.iter().map(|(a, _)| a.clone()).collect())
            })
            .await
    }

    async fn download_attachment(
        &self,
        id: &str,
        attachment: &CrmAttachment,
    ) -> PortResult<ByteStream> {
        let data = self
            .faults
            .run("download_attachment", || {
                let s = self.lock();
                let c = s
                    .cases
                    .get(id)
                    .ok_or_else(|| not_found("download_attachment", id))?;
                c.attachments
                    .iter()
                    .find(|(a, _)| a.id == attachment.id)
                    .map(|(_, d)| d.clone())
                    .ok_or_else(|| not_found("download_attachment", &attachment.id))
            })
            .await?;
        Ok(stream_of(data))
    }

    async fn upload_attachment(
        &self,
        id: &str,
        upload: AttachmentUpload,
    ) -> PortResult<CrmAttachment> {
        let data = collect(upload.body).await?;
        self.faults
            .run("upload_attachment", || {
                self.attach_as(
                    id,
                    CONNECTOR_NAME,
                    true,
                    &upload.filename,
                    &upload.mime_type,
                    data,
                )
            })
            .await
    }
}

/// A `SyncQueue` that records what was published, for tests that run syncs by hand.
#[derive(Debug, Default)]
pub struct RecordingQueue {
    published: Mutex<Vec<(Direction, String)>>,
}

impl RecordingQueue {
    /// Takes everything published so far.
    pub fn take(&self) -> Vec<(Direction, String)> {
        std::mem::take(&mut *self.published.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn peek(&self) -> Vec<(Direction, String)> {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl SyncQueue for RecordingQueue {
    async fn publish(&self, direction: Direction, key: &str) -> PortResult<()> {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((direction, key.to_string()));
        Ok(())
    }
}

/// A server that answers every request with `status` and `body`, each request read
/// to its end first so the client sees the answer rather than a reset: for the adapters'
/// tests of how they classify a reply.
pub fn answering_server(status: u16, body: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("test server: cannot listen: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("test server: no address: {e}"));
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                let n = std::io::Read::read(&mut stream, &mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let reply = format!(
                "HTTP/1.1 {status} Answer\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = std::io::Write::write_all(&mut stream, reply.as_bytes());
        }
    });
    format!("http://{addr}")
}
