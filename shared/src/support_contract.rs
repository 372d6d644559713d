//! The contract every `SupportApi` passes: one suite, written against the port, run against
//! the in-memory double (`testing::MemorySupportApi`, which the engine's tests use) and
//! against the real CSAPI client on the CSAPI emulator (`tests/integration/csapi_contract.rs`).
//! The engine's tests are only worth what the double is worth, so the double is held to what
//! the real client does: when the two disagree, the discovery document and the emulator's
//! strict reading of it decide, and the double is the one that changes.
//!
//! The suite needs a second voice besides casesync's: a person on Google's side (a customer
//! in the console, a Google Support engineer). Each implementation's test supplies that as a
//! [`SupportActor`]: the double's own methods, or the emulator's control API.
//!
//! Every check is an `async fn(&dyn SupportApi, &dyn SupportActor)` that panics with the
//! check's name on the first violation: they are test code. Each check makes its own cases
//! and only asserts about them, so the checks may share one API and run again on it.
//! [`all_checks`] lists them by name; [`run_all`] runs them one after another.

pub use crate::crm_contract::{DriverError, DriverResult};
/// Re-exported so an actor in another crate can `#[shared::support_contract::async_trait]`
/// without depending on `async-trait` itself.
pub use async_trait::async_trait;

use crate::domain::{
    AttachmentUpload, GoogleAttachment, GoogleCase, GoogleComment, NewGoogleCase, Priority,
};
use crate::error::{PortError, PortResult};
use crate::ports::{ByteStream, SupportApi};
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use futures::future::BoxFuture;
use std::collections::{BTreeSet, HashMap};

/// A case a customer opens in the Google Cloud console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerCase {
    pub display_name: String,
    pub description: String,
    pub priority: Priority,
    /// Back-dates the case (created and last updated then), where the API allows it.
    pub created: Option<DateTime<Utc>>,
}

/// A person on Google's side of the API, next to the implementation under test (which acts
/// as casesync).
#[async_trait]
pub trait SupportActor: Send + Sync {
    /// The parent casesync's calls use (`projects/{p}`); the actor's cases live under it.
    fn parent(&self) -> String;
    /// The email of casesync's identity, the caller of every port method.
    fn caller_email(&self) -> String;
    /// The display name and email of the customer [`Self::open_case_as_customer`] acts as.
    fn customer(&self) -> (String, String);
    /// A classification id the API knows.
    fn classification_id(&self) -> String;
    /// Items in one page of the implementation's lists and searches; the suite writes
    /// more than two pages' worth so that paging is exercised where there is paging.
    fn page_size(&self) -> usize;
    /// A well-formed case name under [`Self::parent`] that names no case.
    fn missing_case_name(&self) -> String {
        format!("{}/cases/99999999", self.parent())
    }

    /// Opens a case as the customer; returns its name.
    async fn open_case_as_customer(&self, case: &CustomerCase) -> DriverResult<String>;
    /// Comments as a Google Support engineer named `author`; returns the comment's name.
    async fn comment_as_engineer(
        &self,
        case_name: &str,
        author: &str,
        body: &str,
    ) -> DriverResult<String>;
    /// Attaches a file as a Google Support engineer; returns the attachment's name.
    async fn attach_as_engineer(
        &self,
        case_name: &str,
        author: &str,
        filename: &str,
        data: &[u8],
    ) -> DriverResult<String>;
    /// Google Support changes the priority.
    async fn set_priority(&self, case_name: &str, priority: Priority) -> DriverResult<()>;
    /// Google Support (or the customer) closes the case.
    async fn close(&self, case_name: &str) -> DriverResult<()>;
}

/// One check of the suite.
pub type SupportCheck = for<'a> fn(&'a dyn SupportApi, &'a dyn SupportActor) -> BoxFuture<'a, ()>;

/// Every check, by name, in a stable order.
pub fn all_checks() -> Vec<(&'static str, SupportCheck)> {
    vec![
        ("get_case_reads_every_field", |a, p| {
            Box::pin(get_case_reads_every_field(a, p))
        }),
        ("get_case_of_a_missing_case_is_not_found", |a, p| {
            Box::pin(get_case_of_a_missing_case_is_not_found(a, p))
        }),
        (
            "search_returns_cases_updated_after_since_once_each",
            |a, p| Box::pin(search_returns_cases_updated_after_since_once_each(a, p)),
        ),
        ("search_reads_every_page", |a, p| {
            Box::pin(search_reads_every_page(a, p))
        }),
        ("find_matches_creator_and_text_and_nothing_else", |a, p| {
            Box::pin(find_matches_creator_and_text_and_nothing_else(a, p))
        }),
        (
            "create_case_round_trips_and_the_caller_is_the_creator",
            |a, p| Box::pin(create_case_round_trips_and_the_caller_is_the_creator(a, p)),
        ),
        ("update_priority_and_close_take_effect", |a, p| {
            Box::pin(update_priority_and_close_take_effect(a, p))
        }),
        ("changes_by_google_are_visible", |a, p| {
            Box::pin(changes_by_google_are_visible(a, p))
        }),
        (
            "list_comments_reads_every_page_oldest_first_with_authors",
            |a, p| {
                Box::pin(list_comments_reads_every_page_oldest_first_with_authors(
                    a, p,
                ))
            },
        ),
        ("create_comment_round_trips_unicode_and_newlines", |a, p| {
            Box::pin(create_comment_round_trips_unicode_and_newlines(a, p))
        }),
        (
            "attachments_round_trip_bytes_names_sizes_and_creators",
            |a, p| Box::pin(attachments_round_trip_bytes_names_sizes_and_creators(a, p)),
        ),
        ("classification_exists_tells_known_from_unknown", |a, p| {
            Box::pin(classification_exists_tells_known_from_unknown(a, p))
        }),
    ]
}

/// Runs every check on one API, one after another.
pub async fn run_all(api: &dyn SupportApi, actor: &dyn SupportActor) {
    for (_, check) in all_checks() {
        check(api, actor).await;
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

fn port<T>(check: &str, what: &str, result: PortResult<T>) -> T {
    result.unwrap_or_else(|e| panic!("support contract `{check}`: {what} failed: {e}"))
}

fn act<T>(check: &str, what: &str, result: DriverResult<T>) -> T {
    result.unwrap_or_else(|e| panic!("support contract `{check}`: the actor could not {what}: {e}"))
}

/// A line no other case carries: fixed width, so no token is a substring of another.
fn fresh_token() -> String {
    format!("{:016}", rand::random::<u64>() % 10_000_000_000_000_000)
}

fn customer_case(title: &str, created: Option<DateTime<Utc>>) -> CustomerCase {
    CustomerCase {
        display_name: title.to_string(),
        description: format!("{title}\nIt started this morning.\n\nRegards"),
        priority: Priority::P3,
        created,
    }
}

fn new_case(actor: &dyn SupportActor, display_name: &str, description: &str) -> NewGoogleCase {
    NewGoogleCase {
        display_name: display_name.to_string(),
        description: description.to_string(),
        classification_id: actor.classification_id(),
        priority: Priority::P2,
        subscriber_emails: vec![],
        test_case: true,
    }
}

async fn open(check: &str, actor: &dyn SupportActor, case: &CustomerCase) -> String {
    act(
        check,
        "open a case as a customer",
        actor.open_case_as_customer(case).await,
    )
}

fn upload(filename: &str, mime: &str, data: &[u8]) -> AttachmentUpload {
    let chunks: Vec<PortResult<Bytes>> = data
        .chunks(4096)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    AttachmentUpload {
        filename: filename.to_string(),
        mime_type: mime.to_string(),
        size_bytes: data.len() as u64,
        body: futures::stream::iter(chunks).boxed(),
        marker: None,
    }
}

async fn read_all(check: &str, mut body: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&port(check, "reading a download", chunk));
    }
    out
}

/// Bytes that look nothing like text: every byte value, CRLF and boundary-like runs.
fn binary_data(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    let mut out: Vec<u8> = (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect();
    let runs = b"\r\n--boundary\r\n\r\n\0\xff";
    if out.len() > runs.len() {
        out[..runs.len()].copy_from_slice(runs);
    }
    out
}

fn names(cases: &[GoogleCase]) -> Vec<&str> {
    cases.iter().map(|c| c.name.as_str()).collect()
}

/// How often each name occurs.
fn occurrences<'a>(names: impl IntoIterator<Item = &'a str>) -> HashMap<&'a str, usize> {
    let mut out = HashMap::new();
    for n in names {
        *out.entry(n).or_insert(0) += 1;
    }
    out
}

fn find_attachment<'a>(
    check: &str,
    listed: &'a [GoogleAttachment],
    name: &str,
) -> &'a GoogleAttachment {
    listed
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("support contract `{check}`: attachment {name} is not listed"))
}

// ---------------------------------------------------------------------------------------
// The checks

/// A case a customer opened reads back with every field the engine uses.
pub async fn get_case_reads_every_field(api: &dyn SupportApi, actor: &dyn SupportActor) {
    const C: &str = "get_case_reads_every_field";
    let mut opened = customer_case("Disk is slow — ünïcødé ✓", None);
    opened.priority = Priority::P1;
    let name = open(C, actor, &opened).await;
    let case = port(C, "get_case", api.get_case(&name).await);
    let (customer_name, customer_email) = actor.customer();
    assert_eq!(case.name, name, "{C}: the case reads back under its name");
    assert_eq!(case.display_name, opened.display_name, "{C}: display name");
    assert_eq!(case.description, opened.description, "{C}: description");
    assert_eq!(case.priority, Priority::P1, "{C}: priority");
    assert!(!case.closed, "{C}: a new case is open");
    assert!(!case.classification_id.is_empty(), "{C}: classification id");
    assert!(
        !case.classification_display_name.is_empty(),
        "{C}: classification display name"
    );
    assert_eq!(
        case.creator.display_name, customer_name,
        "{C}: creator name"
    );
    assert_eq!(
        case.creator.email.as_deref(),
        Some(customer_email.as_str()),
        "{C}: creator email"
    );
    assert!(
        !case.creator.google_support,
        "{C}: a customer is not Google"
    );
    assert!(
        case.create_time <= case.update_time,
        "{C}: created {} after its update {}",
        case.create_time,
        case.update_time
    );
    let again = port(C, "get_case again", api.get_case(&name).await);
    assert_eq!(again, case, "{C}: reading twice gives the same case");
}

/// A case that does not exist is `PortError::NotFound`, for the case and for its lists.
pub async fn get_case_of_a_missing_case_is_not_found(
    api: &dyn SupportApi,
    actor: &dyn SupportActor,
) {
    const C: &str = "get_case_of_a_missing_case_is_not_found";
    let missing = actor.missing_case_name();
    let not_found = |what: &str, e: Option<PortError>| match e {
        Some(PortError::NotFound { .. }) => {}
        Some(other) => panic!("{C}: {what} of {missing} answered {other:?}, not NotFound"),
        None => panic!("{C}: {what} of {missing} succeeded"),
    };
    not_found("get_case", api.get_case(&missing).await.err());
    not_found("list_comments", api.list_comments(&missing).await.err());
    not_found(
        "list_attachments",
        api.list_attachments(&missing).await.err(),
    );
}

/// Only cases updated after `since` come back (the window may widen by the query's whole
/// seconds, never more), each once however often it changed.
pub async fn search_returns_cases_updated_after_since_once_each(
    api: &dyn SupportApi,
    actor: &dyn SupportActor,
) {
    const C: &str = "search_returns_cases_updated_after_since_once_each";
    let long_ago = Utc::now() - Duration::hours(3);
    let since = Utc::now() - Duration::hours(1);
    let quiet = open(C, actor, &customer_case("quiet", Some(long_ago))).await;
    let busy = open(C, actor, &customer_case("busy", Some(long_ago))).await;
    act(
        C,
        "comment as an engineer",
        actor
            .comment_as_engineer(&busy, "Support Engineer", "We are looking into it.")
            .await,
    );
    act(
        C,
        "set the priority",
        actor.set_priority(&busy, Priority::P1).await,
    );
    port(
        C,
        "create_comment",
        api.create_comment(&busy, "Thanks.").await,
    );

    let found = port(
        C,
        "search_cases_updated_since",
        api.search_cases_updated_since(&actor.parent(), since).await,
    );
    let counts = occurrences(names(&found));
    assert_eq!(
        counts.get(busy.as_str()),
        Some(&1),
        "{C}: the case updated after `since` comes back once"
    );
    assert_eq!(
        counts.get(quiet.as_str()),
        None,
        "{C}: a case last updated before `since` does not come back"
    );
    assert!(
        counts.values().all(|n| *n == 1),
        "{C}: a case came back twice: {counts:?}"
    );
    let bound = since - Duration::seconds(1);
    for c in &found {
        assert!(
            c.update_time > bound,
            "{C}: {} was last updated at {}, before {since}",
            c.name,
            c.update_time
        );
    }
    let b = found.iter().find(|c| c.name == busy);
    assert_eq!(
        b.map(|c| c.priority),
        Some(Priority::P1),
        "{C}: the case comes back in its newest version"
    );
}

/// More than two pages of updated cases all come back, each once.
pub async fn search_reads_every_page(api: &dyn SupportApi, actor: &dyn SupportActor) {
    const C: &str = "search_reads_every_page";
    let since = Utc::now() - Duration::minutes(1);
    let count = 2 * actor.page_size() + 7;
    let mut mine = BTreeSet::new();
    for i in 0..count {
        mine.insert(open(C, actor, &customer_case(&format!("paged case {i}"), None)).await);
    }
    let found = port(
        C,
        "search_cases_updated_since",
        api.search_cases_updated_since(&actor.parent(), since).await,
    );
    let counts = occurrences(names(&found));
    let missing: Vec<_> = mine
        .iter()
        .filter(|n| !counts.contains_key(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{C}: {} of {count} cases missing, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert!(
        counts.values().all(|n| *n == 1),
        "{C}: a case came back twice"
    );
}

/// The lookup of docs/INVARIANTS.md#create-intents-and-the-lookup-lag finds casesync's cases whose display name, description or comments
/// carry the text (the discovery document's free-text search), and no case by anybody
/// else, and none without the text.
pub async fn find_matches_creator_and_text_and_nothing_else(
    api: &dyn SupportApi,
    actor: &dyn SupportActor,
) {
    const C: &str = "find_matches_creator_and_text_and_nothing_else";
    let parent = actor.parent();
    let line = format!("casesync: contract case {}", fresh_token());
    let other_line = format!("casesync: contract case {}", fresh_token());
    let create = |display: String, description: String| {
        let parent = parent.clone();
        async move {
            port(
                C,
                "create_case",
                api.create_case(&parent, &new_case(actor, &display, &description))
                    .await,
            )
        }
    };
    let in_description = create("Mine".into(), format!("Problem.\n{line}")).await;
    let in_display_name = create(format!("Mine: {line}"), "Problem.".into()).await;
    let in_comment = create("Mine, commented".into(), "Problem.".into()).await;
    port(
        C,
        "create_comment",
        api.create_comment(&in_comment.name, &format!("More.\n{line}"))
            .await,
    );
    let other_text = create("Not mine".into(), format!("Problem.\n{other_line}")).await;
    let by_customer = open(
        C,
        actor,
        &CustomerCase {
            display_name: "pasted".into(),
            description: format!("pasted: {line}"),
            priority: Priority::P4,
            created: None,
        },
    )
    .await;

    let found = port(
        C,
        "find_cases_by_creator_and_text",
        api.find_cases_by_creator_and_text(&parent, &actor.caller_email(), &line)
            .await,
    );
    let found: BTreeSet<_> = names(&found).into_iter().map(String::from).collect();
    let expected: BTreeSet<_> = [
        in_description.name.clone(),
        in_display_name.name.clone(),
        in_comment.name.clone(),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        found, expected,
        "{C}: casesync's cases with the text in display name, description or a comment; \
         not {} (other text) nor {by_customer} (another creator)",
        other_text.name
    );

    let by_nobody = port(
        C,
        "find_cases_by_creator_and_text",
        api.find_cases_by_creator_and_text(&parent, "nobody@example.com", &line)
            .await,
    );
    assert!(
        by_nobody.is_empty(),
        "{C}: another creator finds nothing: {:?}",
        names(&by_nobody)
    );
}

/// What casesync creates reads back as sent; casesync's identity is its creator.
pub async fn create_case_round_trips_and_the_caller_is_the_creator(
    api: &dyn SupportApi,
    actor: &dyn SupportActor,
) {
    const C: &str = "create_case_round_trips_and_the_caller_is_the_creator";
    let parent = actor.parent();
    let new = NewGoogleCase {
        priority: Priority::P1,
        ..new_case(
            actor,
            "Printer on fire ✓",
            &format!(
                "The printer in room 4 is on fire — ünïcødé.\n\n\"Quoted\" \\ line\ncasesync: contract case {}",
                fresh_token()
            ),
        )
    };
    let created = port(C, "create_case", api.create_case(&parent, &new).await);
    assert!(
        created.name.starts_with(&format!("{parent}/cases/")),
        "{C}: {} is not under {parent}",
        created.name
    );
    assert_eq!(created.display_name, new.display_name, "{C}: display name");
    assert_eq!(created.description, new.description, "{C}: description");
    assert_eq!(created.priority, new.priority, "{C}: priority");
    assert_eq!(
        created.classification_id, new.classification_id,
        "{C}: classification"
    );
    assert!(
        !created.classification_display_name.is_empty(),
        "{C}: the classification has a display name"
    );
    assert!(!created.closed, "{C}: a new case is open");
    assert_eq!(
        created.creator.email.as_deref(),
        Some(actor.caller_email().as_str()),
        "{C}: the caller is the creator"
    );
    assert!(
        !created.creator.google_support,
        "{C}: casesync is not Google"
    );
    assert!(
        !created.creator.display_name.is_empty(),
        "{C}: the creator has a display name"
    );
    let got = port(C, "get_case", api.get_case(&created.name).await);
    assert_eq!(
        got, created,
        "{C}: get_case reads what create_case answered"
    );
}

/// `update_priority` and `close_case` answer the changed case, and `get_case` sees it.
pub async fn update_priority_and_close_take_effect(api: &dyn SupportApi, actor: &dyn SupportActor) {
    const C: &str = "update_priority_and_close_take_effect";
    let name = open(C, actor, &customer_case("to change", None)).await;
    let before = port(C, "get_case", api.get_case(&name).await);

    let patched = port(
        C,
        "update_priority",
        api.update_priority(&name, Priority::P0).await,
    );
    assert_eq!(patched.priority, Priority::P0, "{C}: the answer has P0");
    assert_eq!(
        patched.display_name, before.display_name,
        "{C}: the rest is kept"
    );
    assert_eq!(
        patched.description, before.description,
        "{C}: the rest is kept"
    );
    assert!(
        patched.update_time > before.update_time,
        "{C}: a change moves the update time"
    );
    let got = port(C, "get_case", api.get_case(&name).await);
    assert_eq!(got.priority, Priority::P0, "{C}: get_case sees P0");
    assert!(!got.closed, "{C}: still open");

    let closed = port(C, "close_case", api.close_case(&name).await);
    assert!(closed.closed, "{C}: the answer is closed");
    assert_eq!(
        closed.priority,
        Priority::P0,
        "{C}: closing keeps the priority"
    );
    assert!(
        closed.update_time > got.update_time,
        "{C}: closing moves the update time"
    );
    let got = port(C, "get_case", api.get_case(&name).await);
    assert!(got.closed, "{C}: get_case sees it closed");
}

/// What Google Support changes is what `get_case` reads.
pub async fn changes_by_google_are_visible(api: &dyn SupportApi, actor: &dyn SupportActor) {
    const C: &str = "changes_by_google_are_visible";
    let name = open(C, actor, &customer_case("Google changes it", None)).await;
    let before = port(C, "get_case", api.get_case(&name).await);
    act(
        C,
        "set the priority",
        actor.set_priority(&name, Priority::P1).await,
    );
    let got = port(C, "get_case", api.get_case(&name).await);
    assert_eq!(got.priority, Priority::P1, "{C}: Google's priority");
    assert!(
        got.update_time > before.update_time,
        "{C}: Google's change moves the update time"
    );
    act(C, "close the case", actor.close(&name).await);
    let got = port(C, "get_case", api.get_case(&name).await);
    assert!(got.closed, "{C}: closed by Google");
}

/// Every comment, across pages, oldest first, each once, with who wrote it; casesync's own
/// carry the caller's identity.
pub async fn list_comments_reads_every_page_oldest_first_with_authors(
    api: &dyn SupportApi,
    actor: &dyn SupportActor,
) {
    const C: &str = "list_comments_reads_every_page_oldest_first_with_authors";
    let name = open(C, actor, &customer_case("chatty", None)).await;
    let count = 2 * actor.page_size() + 5;
    let mut written = Vec::with_capacity(count + 1);
    for i in 0..count {
        let id = act(
            C,
            "comment as an engineer",
            actor
                .comment_as_engineer(&name, "Support Engineer", &format!("engineer {i}"))
                .await,
        );
        written.push(id);
    }
    let mine = port(
        C,
        "create_comment",
        api.create_comment(&name, "casesync's reply").await,
    );
    written.push(mine.name.clone());

    let listed: Vec<GoogleComment> = port(C, "list_comments", api.list_comments(&name).await);
    let listed_names: Vec<&str> = listed.iter().map(|c| c.name.as_str()).collect();
    let written_names: Vec<&str> = written.iter().map(String::as_str).collect();
    assert_eq!(
        listed.len(),
        count + 1,
        "{C}: every comment of every page, each once"
    );
    assert_eq!(
        listed_names, written_names,
        "{C}: oldest first, in the order written"
    );
    assert!(
        listed
            .windows(2)
            .all(|w| w[0].create_time <= w[1].create_time),
        "{C}: create times never go back"
    );
    let caller = actor.caller_email();
    for (i, c) in listed[..count].iter().enumerate() {
        assert_eq!(c.body, format!("engineer {i}"), "{C}: body of {}", c.name);
        assert!(
            c.name.starts_with(&format!("{name}/comments/")),
            "{C}: {} is not under its case",
            c.name
        );
        assert!(c.creator.google_support, "{C}: {} is by Google", c.name);
        assert!(
            !c.creator.display_name.is_empty(),
            "{C}: the engineer has a display name"
        );
        assert_ne!(
            c.creator.email.as_deref(),
            Some(caller.as_str()),
            "{C}: an engineer's comment is not casesync's"
        );
    }
    let last = &listed[count];
    assert_eq!(last, &mine, "{C}: casesync's comment lists as created");
    assert_eq!(
        last.creator.email.as_deref(),
        Some(caller.as_str()),
        "{C}: casesync's comment carries the caller's email"
    );
    assert!(!last.creator.google_support, "{C}: casesync is not Google");
    assert!(
        !last.creator.display_name.is_empty(),
        "{C}: casesync's comment has a display name"
    );
}

/// A body with Unicode, blank lines and quotes comes back byte for byte.
pub async fn create_comment_round_trips_unicode_and_newlines(
    api: &dyn SupportApi,
    actor: &dyn SupportActor,
) {
    const C: &str = "create_comment_round_trips_unicode_and_newlines";
    let name = open(C, actor, &customer_case("unicode", None)).await;
    let body = "[Company Comment 7 by Zoë Ünïcødé]\nHello ✓ 日本語 🚀\n\n\"quoted\" \\ back\n\ttabbed\nlast line";
    let created = port(C, "create_comment", api.create_comment(&name, body).await);
    assert_eq!(created.body, body, "{C}: the answer carries the body");
    assert!(
        created.name.starts_with(&format!("{name}/comments/")),
        "{C}: {} is not under its case",
        created.name
    );
    assert_eq!(
        created.creator.email.as_deref(),
        Some(actor.caller_email().as_str()),
        "{C}: by the caller"
    );
    let listed = port(C, "list_comments", api.list_comments(&name).await);
    let found: Vec<_> = listed.iter().filter(|c| c.name == created.name).collect();
    assert_eq!(found.len(), 1, "{C}: listed once");
    assert_eq!(found[0].body, body, "{C}: listed with the same body");
}

/// Bytes, filename, size, type and creator survive an upload, a listing and a download,
/// for casesync's files and for an engineer's.
pub async fn attachments_round_trip_bytes_names_sizes_and_creators(
    api: &dyn SupportApi,
    actor: &dyn SupportActor,
) {
    const C: &str = "attachments_round_trip_bytes_names_sizes_and_creators";
    let name = open(C, actor, &customer_case("with files", None)).await;
    let theirs = binary_data(70_001);
    let theirs_name = act(
        C,
        "attach as an engineer",
        actor
            .attach_as_engineer(&name, "Support Engineer", "trace.bin", &theirs)
            .await,
    );
    let ours = binary_data(123_457);
    let filename = "Résumé \"final\" (2).pdf";
    let uploaded = port(
        C,
        "upload_attachment",
        api.upload_attachment(&name, upload(filename, "application/pdf", &ours))
            .await,
    );
    assert!(
        uploaded.name.starts_with(&format!("{name}/attachments/")),
        "{C}: {} is not under its case",
        uploaded.name
    );
    assert_eq!(uploaded.filename, filename, "{C}: filename");
    assert_eq!(uploaded.mime_type, "application/pdf", "{C}: type");
    assert_eq!(uploaded.size_bytes, ours.len() as u64, "{C}: size");
    assert_eq!(
        uploaded.creator.email.as_deref(),
        Some(actor.caller_email().as_str()),
        "{C}: uploaded by the caller"
    );
    assert!(
        !uploaded.creator.google_support,
        "{C}: casesync is not Google"
    );
    let empty = port(
        C,
        "upload_attachment (empty)",
        api.upload_attachment(&name, upload("empty.txt", "text/plain", &[]))
            .await,
    );
    assert_eq!(empty.size_bytes, 0, "{C}: an empty file has size 0");

    let listed = port(C, "list_attachments", api.list_attachments(&name).await);
    assert_eq!(listed.len(), 3, "{C}: each attachment listed once");
    let distinct: BTreeSet<_> = listed.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(distinct.len(), 3, "{C}: each attachment listed once");
    assert_eq!(
        find_attachment(C, &listed, &uploaded.name),
        &uploaded,
        "{C}: casesync's file lists as uploaded"
    );
    let t = find_attachment(C, &listed, &theirs_name);
    assert_eq!(t.filename, "trace.bin", "{C}: the engineer's filename");
    assert_eq!(
        t.size_bytes,
        theirs.len() as u64,
        "{C}: the engineer's size"
    );
    assert!(
        t.creator.google_support,
        "{C}: the engineer's file is Google's"
    );
    assert!(
        !t.creator.display_name.is_empty(),
        "{C}: the engineer has a display name"
    );

    let down = port(C, "download_attachment", api.download_attachment(t).await);
    assert!(
        read_all(C, down).await == theirs,
        "{C}: the engineer's bytes download unchanged"
    );
    let down = port(
        C,
        "download_attachment",
        api.download_attachment(&uploaded).await,
    );
    assert!(
        read_all(C, down).await == ours,
        "{C}: casesync's bytes download unchanged"
    );
    let down = port(
        C,
        "download_attachment (empty)",
        api.download_attachment(find_attachment(C, &listed, &empty.name))
            .await,
    );
    assert!(read_all(C, down).await.is_empty(), "{C}: an empty file");
}

/// The start-up check tells a classification the API knows from one it does not.
pub async fn classification_exists_tells_known_from_unknown(
    api: &dyn SupportApi,
    actor: &dyn SupportActor,
) {
    const C: &str = "classification_exists_tells_known_from_unknown";
    let known = actor.classification_id();
    assert!(
        port(
            C,
            "classification_exists",
            api.classification_exists(&known).await
        ),
        "{C}: {known} exists"
    );
    assert!(
        !port(
            C,
            "classification_exists",
            api.classification_exists("NO-SUCH-CLASSIFICATION").await
        ),
        "{C}: an unknown id does not exist"
    );
}

// ---------------------------------------------------------------------------------------
// The double's actor

/// The parent the double's actor works under (the double keys cases by number only).
pub const MEMORY_PARENT: &str = "projects/memory-project";

/// The in-memory double acts as Google's people through its own methods.
#[async_trait]
impl SupportActor for crate::testing::MemorySupportApi {
    fn parent(&self) -> String {
        MEMORY_PARENT.to_string()
    }

    fn caller_email(&self) -> String {
        self.caller.email.clone().unwrap_or_default()
    }

    fn customer(&self) -> (String, String) {
        let (name, email) = crate::testing::MEMORY_CUSTOMER;
        (name.to_string(), email.to_string())
    }

    fn classification_id(&self) -> String {
        crate::testing::MEMORY_CLASSIFICATION_ID.to_string()
    }

    /// The double does not page; the CSAPI client's page size (100) only decides how much
    /// the suite writes, so the double sees the same volumes as the client.
    fn page_size(&self) -> usize {
        100
    }

    async fn open_case_as_customer(&self, case: &CustomerCase) -> DriverResult<String> {
        Ok(self
            .open_case_as_customer(
                MEMORY_PARENT,
                &case.display_name,
                &case.description,
                case.priority,
                case.created,
            )
            .name)
    }

    async fn comment_as_engineer(
        &self,
        case_name: &str,
        author: &str,
        body: &str,
    ) -> DriverResult<String> {
        Ok(self.comment_as_engineer(case_name, author, body).name)
    }

    async fn attach_as_engineer(
        &self,
        case_name: &str,
        author: &str,
        filename: &str,
        data: &[u8],
    ) -> DriverResult<String> {
        Ok(self
            .attach_as_engineer(case_name, author, filename, data)
            .name)
    }

    async fn set_priority(&self, case_name: &str, priority: Priority) -> DriverResult<()> {
        self.set_priority_as_google(case_name, priority);
        Ok(())
    }

    async fn close(&self, case_name: &str) -> DriverResult<()> {
        self.close_as_google(case_name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::testing::MemorySupportApi;
    use std::sync::Arc;

    const CALLER: &str = "casesync@memory-project.iam.gserviceaccount.com";

    fn double() -> MemorySupportApi {
        MemorySupportApi::new(Arc::new(SystemClock), CALLER)
    }

    /// One test per check, each on a fresh double, so a failure names its check.
    macro_rules! memory_contract_tests {
        ($($check:ident),* $(,)?) => {
            $(
                #[tokio::test]
                async fn $check() {
                    let api = double();
                    super::super::$check(&api, &api).await;
                }
            )*

            /// The list above and [`all_checks`] name the same checks.
            #[test]
            fn every_check_is_listed() {
                let listed: Vec<&str> = all_checks().into_iter().map(|(n, _)| n).collect();
                assert_eq!(listed, [$(stringify!($check)),*]);
                let distinct: BTreeSet<_> = listed.iter().collect();
                assert_eq!(distinct.len(), listed.len(), "names are unique");
            }
        };
    }

    mod memory_support_api {
        use super::*;
        memory_contract_tests!(
            get_case_reads_every_field,
            get_case_of_a_missing_case_is_not_found,
            search_returns_cases_updated_after_since_once_each,
            search_reads_every_page,
            find_matches_creator_and_text_and_nothing_else,
            create_case_round_trips_and_the_caller_is_the_creator,
            update_priority_and_close_take_effect,
            changes_by_google_are_visible,
            list_comments_reads_every_page_oldest_first_with_authors,
            create_comment_round_trips_unicode_and_newlines,
            attachments_round_trip_bytes_names_sizes_and_creators,
            classification_exists_tells_known_from_unknown,
        );
    }

    #[tokio::test]
    async fn the_whole_suite_shares_one_double_and_runs_twice() {
        assert_eq!(all_checks().len(), 12);
        let api = double();
        run_all(&api, &api).await;
        run_all(&api, &api).await;
    }

    /// The suite must be able to fail: a double that loses one comment of a long listing
    /// (as a client that stops one page early would) is caught.
    #[tokio::test]
    #[should_panic(expected = "list_comments_reads_every_page_oldest_first_with_authors")]
    async fn the_suite_catches_an_api_that_drops_a_comment() {
        let api = DroppingComment(double());
        list_comments_reads_every_page_oldest_first_with_authors(&api, &api.0).await;
    }

    /// Wraps the double, but its comment listing drops the second comment.
    struct DroppingComment(MemorySupportApi);

    #[async_trait]
    impl SupportApi for DroppingComment {
        async fn get_case(&self, name: &str) -> PortResult<GoogleCase> {
            self.0.get_case(name).await
        }
        async fn search_cases_updated_since(
            &self,
            parent: &str,
            since: DateTime<Utc>,
        ) -> PortResult<Vec<GoogleCase>> {
            self.0.search_cases_updated_since(parent, since).await
        }
        async fn find_cases_by_creator_and_text(
            &self,
            parent: &str,
            creator_email: &str,
            text: &str,
        ) -> PortResult<Vec<GoogleCase>> {
            self.0
                .find_cases_by_creator_and_text(parent, creator_email, text)
                .await
        }
        async fn create_case(&self, parent: &str, case: &NewGoogleCase) -> PortResult<GoogleCase> {
            self.0.create_case(parent, case).await
        }
        async fn update_priority(&self, name: &str, priority: Priority) -> PortResult<GoogleCase> {
            self.0.update_priority(name, priority).await
        }
        async fn close_case(&self, name: &str) -> PortResult<GoogleCase> {
            self.0.close_case(name).await
        }
        async fn list_comments(&self, case_name: &str) -> PortResult<Vec<GoogleComment>> {
            let mut all = self.0.list_comments(case_name).await?;
            if all.len() > 1 {
                all.remove(1);
            }
            Ok(all)
        }
        async fn create_comment(&self, case_name: &str, body: &str) -> PortResult<GoogleComment> {
            self.0.create_comment(case_name, body).await
        }
        async fn list_attachments(&self, case_name: &str) -> PortResult<Vec<GoogleAttachment>> {
            self.0.list_attachments(case_name).await
        }
        async fn download_attachment(
            &self,
            attachment: &GoogleAttachment,
        ) -> PortResult<ByteStream> {
            self.0.download_attachment(attachment).await
        }
        async fn upload_attachment(
            &self,
            case_name: &str,
            upload: AttachmentUpload,
        ) -> PortResult<GoogleAttachment> {
            self.0.upload_attachment(case_name, upload).await
        }
        async fn classification_exists(&self, classification_id: &str) -> PortResult<bool> {
            self.0.classification_exists(classification_id).await
        }
    }
}
