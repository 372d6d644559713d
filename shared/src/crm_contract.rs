//! The contract every CRM adapter passes (docs/ARCHITECTURE.md#testing): one suite, written against the `Crm`
//! port, so Jira, ServiceNow, Zendesk, Request Tracker and the in-memory double are held to
//! the same behaviour the task bodies rely on (lookups by Google case, paging, the `since`
//! windows, the coarse search timestamps of the skip rule, and telling casesync's own items
//! from a person's; docs/INVARIANTS.md).
//!
//! The suite needs a second voice besides the adapter: a person working in the CRM. Each
//! CRM's test supplies that as a [`CrmTestDriver`] (an emulator's control API, or the CRM's
//! REST API with a person's credentials), and calls the checks one by one, as separate
//! tests ([`crm_contract_tests!`](crate::crm_contract_tests)) or all at once ([`run_all`]).
//!
//! Checks panic with a message naming the check on the first violation: they are test code.
//! Every case they create gets a fresh random Google case number, so the suite can run
//! against a CRM that already holds data, and its checks can share one CRM.

/// Re-exported so a driver in another crate can `#[shared::crm_contract::async_trait]`
/// without depending on `async-trait` itself.
pub use async_trait::async_trait;

use crate::domain::{AttachmentUpload, CrmCase, CrmComment, GoogleCaseKey, NewCrmCase, Priority};
use crate::error::PortResult;
use crate::ports::{ByteStream, Crm};
use bytes::Bytes;
use chrono::{DateTime, Duration, DurationRound, Utc};
use futures::StreamExt;
use std::collections::{HashMap, HashSet};

/// What a driver reports when acting as a person failed. Boxed so drivers can use whatever
/// error type their client has (`anyhow` converts into it).
pub type DriverError = Box<dyn std::error::Error + Send + Sync>;
pub type DriverResult<T> = Result<T, DriverError>;

/// A case a person opens in the CRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonCase {
    pub summary: String,
    pub description: String,
    pub priority: Priority,
    /// Whether the person ticks the "synchronize with Google Cloud Support" flag.
    pub flagged: bool,
}

/// What the suite needs to know about a CRM (and its adapter's settings) to pick sizes
/// and expectations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverCapabilities {
    /// Comments in one page of the adapter's comment listing; the suite writes more than
    /// that, so at least two pages are read.
    pub comment_page_size: usize,
    /// Cases in one page of the adapter's search; the suite flags more than two pages.
    pub search_page_size: usize,
    /// The CRM documents a newest-first comment order and the adapter keeps it.
    pub comments_newest_first: bool,
}

/// A person working in the CRM, next to the adapter under test (which acts as casesync).
#[async_trait]
pub trait CrmTestDriver: Send + Sync {
    fn capabilities(&self) -> DriverCapabilities;

    /// The display name the CRM shows for the person (the adapter's `author_name`).
    fn person_name(&self) -> String;

    /// A well-formed case id that names no case, for the not-found check.
    fn unknown_case_id(&self) -> String;

    /// The priority the adapter reads back after writing `written`. Identity unless the
    /// CRM's vocabulary is smaller than P0..P4 (Zendesk has four values).
    fn priority_round_trip(&self, written: Priority) -> Priority {
        written
    }

    /// Opens a case as the person; returns its id as the adapter names it.
    async fn open_case(&self, case: &PersonCase) -> DriverResult<String>;

    /// Comments as the person; returns the comment's id as the adapter names it.
    async fn comment_as_person(&self, case_id: &str, body: &str) -> DriverResult<String>;

    /// Attaches a file as the person; returns the attachment's id as the adapter names it.
    async fn attach_as_person(
        &self,
        case_id: &str,
        filename: &str,
        data: &[u8],
    ) -> DriverResult<String>;

    /// Opens a case as the person with its created and last-updated time set to `at`,
    /// where the system allows backdating (emulators do, real CRMs do not). `Ok(None)`
    /// skips the checks that need it.
    async fn open_case_updated_at(
        &self,
        case: &PersonCase,
        at: DateTime<Utc>,
    ) -> DriverResult<Option<String>>;

    /// Waits until the CRM's search reflects every write made so far (search indexes lag
    /// in Jira and Zendesk). The default does not wait.
    async fn settle(&self) -> DriverResult<()> {
        Ok(())
    }
}

/// What a test file's setup hands to the generated tests: the adapter under test and the
/// person next to it, kept alive together (an emulator usually lives in the fixture too).
pub trait ContractFixture: Send + Sync {
    fn crm(&self) -> &dyn Crm;
    fn driver(&self) -> &dyn CrmTestDriver;
}

/// Generates one `#[tokio::test]` per check of the suite. `$setup` is an async fn (or
/// path to one) returning a [`ContractFixture`]; each test gets a fresh one.
///
/// ```ignore
/// mod contract {
///     shared::crm_contract_tests!(super::fixture);
/// }
/// ```
#[macro_export]
macro_rules! crm_contract_tests {
    ($setup:path) => {
        $crate::crm_contract_tests!(@tests $setup;
            get_case_by_id,
            get_unknown_case_is_not_found,
            create_and_find_by_google_case,
            set_google_case_name_is_found,
            close_case,
            update_priority,
            attachments_round_trip,
            comments_across_pages,
            comments_since,
            add_comment_round_trip,
            search_updated_since_with_flag,
            search_across_pages,
            search_coarse_timestamps,
            connector_items_are_told_apart,
        );
    };
    (@tests $setup:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let fixture = $setup().await;
                let crm = $crate::crm_contract::ContractFixture::crm(&fixture);
                let driver = $crate::crm_contract::ContractFixture::driver(&fixture);
                $crate::crm_contract::$check(crm, driver).await;
            }
        )*
    };
}

/// Runs every check in turn against one CRM.
pub async fn run_all(crm: &dyn Crm, driver: &dyn CrmTestDriver) {
    get_case_by_id(crm, driver).await;
    get_unknown_case_is_not_found(crm, driver).await;
    create_and_find_by_google_case(crm, driver).await;
    set_google_case_name_is_found(crm, driver).await;
    close_case(crm, driver).await;
    update_priority(crm, driver).await;
    attachments_round_trip(crm, driver).await;
    comments_across_pages(crm, driver).await;
    comments_since(crm, driver).await;
    add_comment_round_trip(crm, driver).await;
    search_updated_since_with_flag(crm, driver).await;
    search_across_pages(crm, driver).await;
    search_coarse_timestamps(crm, driver).await;
    connector_items_are_told_apart(crm, driver).await;
}

// ---- the checks -------------------------------------------------------------------------

/// A case opened by a person reads back with its fields; the flag is reported as set.
pub async fn get_case_by_id(crm: &dyn Crm, driver: &dyn CrmTestDriver) {
    const CHECK: &str = "get_case_by_id";
    let flagged = PersonCase {
        summary: "Printer on fire".into(),
        description: "The printer in room 4 is on fire.\nPlease advise.\n\nThanks".into(),
        priority: Priority::P1,
        flagged: true,
    };
    let id = drv(
        CHECK,
        "open a flagged case",
        driver.open_case(&flagged).await,
    );
    let case = port(CHECK, "get_case", crm.get_case(&id).await);
    assert_eq!(case.id, id, "{CHECK}: the case reads back under its id");
    assert_eq!(case.summary, flagged.summary, "{CHECK}: summary");
    assert_eq!(
        case.description, flagged.description,
        "{CHECK}: description"
    );
    assert_eq!(
        case.priority,
        Some(driver.priority_round_trip(Priority::P1)),
        "{CHECK}: priority"
    );
    assert!(case.sync_flag, "{CHECK}: the sync flag is set");
    assert!(!case.closed, "{CHECK}: a new case is open");
    assert_eq!(case.google_case_name, None, "{CHECK}: no Google case yet");
    assert!(
        case.created_at <= case.updated_at,
        "{CHECK}: created {} after updated {}",
        case.created_at,
        case.updated_at
    );

    let unflagged = PersonCase {
        flagged: false,
        summary: "Not for Google".into(),
        ..flagged
    };
    let other = drv(
        CHECK,
        "open an unflagged case",
        driver.open_case(&unflagged).await,
    );
    assert_ne!(other, id, "{CHECK}: two cases get two ids");
    let other = port(CHECK, "get_case (unflagged)", crm.get_case(&other).await);
    assert!(
        !other.sync_flag,
        "{CHECK}: the unflagged case reads unflagged"
    );
}

/// An id that names no case is `PortError::NotFound` (the engine marks the mapping suspect on it, docs/ARCHITECTURE.md#mapping-lifecycle).
pub async fn get_unknown_case_is_not_found(crm: &dyn Crm, driver: &dyn CrmTestDriver) {
    const CHECK: &str = "get_unknown_case_is_not_found";
    let id = driver.unknown_case_id();
    match crm.get_case(&id).await {
        Err(e) if e.is_not_found() => {}
        Err(e) => panic!("{CHECK}: expected NotFound for {id}, got {e}"),
        Ok(case) => panic!("{CHECK}: expected NotFound for {id}, got case {}", case.id),
    }
}

/// A case casesync creates carries the Google case and its flag, and is found again by
/// the Google case (under any parent), exactly: not by a case whose number merely
/// starts the same.
pub async fn create_and_find_by_google_case(crm: &dyn Crm, driver: &dyn CrmTestDriver) {
    const CHECK: &str = "create_and_find_by_google_case";
    let number = unique_case_number();
    let decoy_number = format!("{number}7");
    let new = new_case(&number, Priority::P1);
    let created = port(CHECK, "create_case", crm.create_case(&new).await);
    assert_eq!(created.summary, new.summary, "{CHECK}: summary");
    assert_eq!(
        created.description, new.description,
        "{CHECK}: description (line breaks kept)"
    );
    assert_eq!(
        created.google_case_name.as_deref(),
        Some(new.google_case_name.as_str()),
        "{CHECK}: the Google-name field"
    );
    assert!(
        created.sync_flag,
        "{CHECK}: a case casesync creates is flagged"
    );
    assert!(!created.closed, "{CHECK}: a new case is open");
    assert_eq!(
        created.priority,
        Some(driver.priority_round_trip(Priority::P1)),
        "{CHECK}: priority"
    );
    let read = port(CHECK, "get_case", crm.get_case(&created.id).await);
    assert_eq!(
        read.google_case_name, created.google_case_name,
        "{CHECK}: the Google-name field reads back"
    );
    let decoy = port(
        CHECK,
        "create_case (decoy)",
        crm.create_case(&new_case(&decoy_number, Priority::P3))
            .await,
    );
    drv(CHECK, "settle", driver.settle().await);

    let found = port(
        CHECK,
        "find_by_google_case",
        crm.find_by_google_case(&key(&number)).await,
    );
    assert_eq!(
        found.map(|c| c.id),
        Some(created.id.clone()),
        "{CHECK}: found by its Google case"
    );
    let under_org = port(
        CHECK,
        "find_by_google_case (organization name)",
        crm.find_by_google_case(&key(&format!("organizations/42/cases/{number}")))
            .await,
    );
    assert_eq!(
        under_org.map(|c| c.id),
        Some(created.id.clone()),
        "{CHECK}: found under another parent's name of the same case"
    );
    let found_decoy = port(
        CHECK,
        "find_by_google_case (decoy)",
        crm.find_by_google_case(&key(&decoy_number)).await,
    );
    assert_eq!(
        found_decoy.map(|c| c.id),
        Some(decoy.id),
        "{CHECK}: each Google case finds its own case"
    );
    let unrelated = port(
        CHECK,
        "find_by_google_case (unrelated)",
        crm.find_by_google_case(&key(&unique_case_number())).await,
    );
    assert_eq!(
        unrelated.map(|c| c.id),
        None,
        "{CHECK}: an unrelated Google case finds nothing"
    );
}

/// Writing the Google case name into a person's case (after casesync created its Google
/// counterpart, docs/INVARIANTS.md#create-intents-and-the-lookup-lag) makes it findable by that Google case.
pub async fn set_google_case_name_is_found(crm: &dyn Crm, driver: &dyn CrmTestDriver) {
    const CHECK: &str = "set_google_case_name_is_found";
    let id = drv(
        CHECK,
        "open a flagged case",
        driver.open_case(&person_case("Needs Google", true)).await,
    );
    let number = unique_case_number();
    let name = format!("projects/casesync-contract/cases/{number}");
    port(
        CHECK,
        "set_google_case_name",
        crm.set_google_case_name(&id, &name).await,
    );
    let case = port(CHECK, "get_case", crm.get_case(&id).await);
    assert_eq!(
        case.google_case_name.as_deref(),
        Some(name.as_str()),
        "{CHECK}: the Google-name field reads back"
    );
    drv(CHECK, "settle", driver.settle().await);
    let found = port(
        CHECK,
        "find_by_google_case",
        crm.find_by_google_case(&key(&number)).await,
    );
    assert_eq!(
        found.map(|c| c.id),
        Some(id),
        "{CHECK}: found by the Google case"
    );
}

/// Closing reads back as closed, and closing a closed case again is no error (a sync that
/// crashed after closing closes again).
pub async fn close_case(crm: &dyn Crm, driver: &dyn CrmTestDriver) {
    const CHECK: &str = "close_case";
    let id = drv(
        CHECK,
        "open a flagged case",
        driver.open_case(&person_case("To be closed", true)).await,
    );
    let before = port(CHECK, "get_case", crm.get_case(&id).await);
    assert!(!before.closed, "{CHECK}: open before closing");
    port(CHECK, "close_case", crm.close_case(&id).await);
    let after = port(CHECK, "get_case after close", crm.get_case(&id).await);
    assert!(after.closed, "{CHECK}: closed after closing");
    port(CHECK, "close_case again", crm.close_case(&id).await);
    let again = port(
        CHECK,
        "get_case after second close",
        crm.get_case(&id).await,
    );
    assert!(again.closed, "{CHECK}: still closed");
}

/// Every priority written reads back (through the CRM's vocabulary).
pub async fn update_priority(crm: &dyn Crm, driver: &dyn CrmTestDriver) {
    const CHECK: &str = "update_priority";
    let id = drv(
        CHECK,
        "open a flagged case",
        driver
            .open_case(&person_case("Priority changes", true))
            .await,
    );
    for p in [
        Priority::P0,
        Priority::P4,
        Priority::P1,
        Priority::P3,
        Priority::P2,
    ] {
        port(CHECK, "set_priority", crm.set_priority(&id, p).await);
        let case = port(CHECK, "get_case", crm.get_case(&id).await);
        assert_eq!(
            case.priority,
            Some(driver.priority_round_trip(p)),
            "{CHECK}: priority after writing {p}"
        );
    }
}

/// Attachments by a person and by casesync are listed with names, sizes and authors, and
/// download to the same bytes; an upload streams in chunks and keeps its file name.
pub async fn attachments_round_trip(crm: &dyn Crm, driver: &dyn CrmTestDriver) {
    const CHECK: &str = "attachments_round_trip";
    let id = drv(
        CHECK,
        "open a flagged case",
        driver.open_case(&person_case("Attachments", true)).await,
    );
    let person_name = "person-notes.txt";
    let person_bytes = b"hello from a person\nsecond line\n".to_vec();
    let person_id = drv(
        CHECK,
        "attach as the person",
        driver
            .attach_as_person(&id, person_name, &person_bytes)
            .await,
    );

    let own_name = "casesync dump \u{2013} \u{fc}bersicht (1).bin";
    let own_bytes: Vec<u8> = (0..70_001u32).map(|i| (i * 7 % 256) as u8).collect();
    let uploaded = port(
        CHECK,
        "upload_attachment",
        crm.upload_attachment(
            &id,
            upload(own_name, "application/octet-stream", &own_bytes),
        )
        .await,
    );
    assert_eq!(
        uploaded.filename, own_name,
        "{CHECK}: upload keeps the name"
    );
    assert_eq!(
        uploaded.size_bytes,
        own_bytes.len() as u64,
        "{CHECK}: upload reports the size"
    );
    assert!(
        uploaded.by_connector,
        "{CHECK}: an upload is casesync's own"
    );
    assert!(!uploaded.id.is_empty(), "{CHECK}: an upload has an id");

    let listed = port(CHECK, "list_attachments", crm.list_attachments(&id).await);
    let ids: Vec<&str> = listed.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "{CHECK}: each attachment listed once: {ids:?}"
    );
    let person = listed
        .iter()
        .find(|a| a.id == person_id)
        .unwrap_or_else(|| panic!("{CHECK}: the person's attachment {person_id} is listed"));
    assert_eq!(person.filename, person_name, "{CHECK}: person's file name");
    assert_eq!(
        person.size_bytes,
        person_bytes.len() as u64,
        "{CHECK}: size"
    );
    assert!(
        !person.by_connector,
        "{CHECK}: the person's file is not ours"
    );
    assert_eq!(person.author_name, driver.person_name(), "{CHECK}: author");
    let own = listed
        .iter()
        .find(|a| a.id == uploaded.id)
        .unwrap_or_else(|| panic!("{CHECK}: the uploaded attachment {} is listed", uploaded.id));
    assert_eq!(own.filename, own_name, "{CHECK}: uploaded file name");
    assert_eq!(own.size_bytes, own_bytes.len() as u64, "{CHECK}: size");
    assert!(own.by_connector, "{CHECK}: the upload is ours");

    let got = collect(port(
        CHECK,
        "download_attachment (person)",
        crm.download_attachment(&id, person).await,
    ))
    .await;
    assert_eq!(got, person_bytes, "{CHECK}: the person's bytes");
    let got = collect(port(
        CHECK,
        "download_attachment (own)",
        crm.download_attachment(&id, own).await,
    ))
    .await;
    assert!(
        got == own_bytes,
        "{CHECK}: the uploaded bytes come back equal"
    );
}

/// More than a page of comments are all listed, each once, with id, author and body
/// (newest first where the CRM documents it).
pub async fn comments_across_pages(crm: &dyn Crm, driver: &dyn CrmTestDriver) {
    const CHECK: &str = "comments_across_pages";
    let caps = driver.capabilities();
    let (id, written) = case_with_person_comments(CHECK, driver, caps.comment_page_size + 5).await;
    let listed = port(CHECK, "list_comments", crm.list_comments(&id, None).await);
    assert_each_once(CHECK, &listed);
    let by_id: HashMap<&str, &CrmComment> = listed.iter().map(|c| (c.id.as_str(), c)).collect();
    for (comment_id, body) in &written {
        let c = by_id
            .get(comment_id.as_str())
            .unwrap_or_else(|| panic!("{CHECK}: comment {comment_id} is listed"));
        assert_eq!(&c.body, body, "{CHECK}: body of {comment_id}");
        assert_eq!(
            c.author_name,
            driver.person_name(),
            "{CHECK}: author of {comment_id}"
        );
        assert!(!c.by_connector, "{CHECK}: {comment_id} is a person's");
    }
    if caps.comments_newest_first {
        assert!(
            listed
                .windows(2)
                .all(|w| w[0].created_at >= w[1].created_at),
            "{CHECK}: comments come newest first"
        );
    }
}

/// `list_comments(since)` returns every comment created at or after `since`, also when
/// those reach onto a second page, and at least the newest one for a `since` equal to
/// its time.
pub async fn comments_since(crm: &dyn Crm, driver: &dyn CrmTestDriver) {
    const CHECK: &str = "comments_since";
    let caps = driver.capabilities();
    let (id, _) = case_with_person_comments(CHECK, driver, caps.comment_page_size + 5).await;
    let mut all = port(CHECK, "list_comments", crm.list_comments(&id, None).await);
    all.sort_by_key(|c| c.created_at);
    // The third-oldest: with newest-first pages, the adapter must read into the last page.
    for since in [all[2].created_at, all[all.len() - 1].created_at] {
        let got = port(
            CHECK,
            "list_comments(since)",
            crm.list_comments(&id, Some(since)).await,
        );
        assert_each_once(CHECK, &got);
        let got: HashSet<&str> = got.iter().map(|c| c.id.as_str()).collect();
        for c in all.iter().filter(|c| c.created_at >= since) {
            assert!(
                got.contains(c.id.as_str()),
                "{CHECK}: comment {} created {} is returned for since {since}",
                c.id,
                c.created_at
            );
        }
    }
}

/// A comment casesync adds keeps its text exactly (marker line, line breaks, blank lines,
/// markup characters) and is reported as casesync's own.
pub async fn add_comment_round_trip(crm: &dyn Crm, driver: &dyn CrmTestDriver) {
    const CHECK: &str = "add_comment_round_trip";
    let id = drv(
        CHECK,
        "open a flagged case",
        driver.open_case(&person_case("Comments", true)).await,
    );
    let body = "[Google Comment 123456 by Gina (Google)]\n\
                Hello <team> & \"friends\" *not bold* {code}\n  an indented line\n\n\
                second paragraph\n\n\nafter two blank lines\nlast line \u{2713}";
    let added = port(CHECK, "add_comment", crm.add_comment(&id, body).await);
    assert!(!added.id.is_empty(), "{CHECK}: the comment has an id");
    assert_eq!(added.body, body, "{CHECK}: the returned body");
    assert!(added.by_connector, "{CHECK}: the comment is casesync's own");
    let listed = port(CHECK, "list_comments", crm.list_comments(&id, None).await);
    let c = listed
        .iter()
        .find(|c| c.id == added.id)
        .unwrap_or_else(|| panic!("{CHECK}: comment {} is listed", added.id));
    assert_eq!(c.body, body, "{CHECK}: the listed body");
    assert!(c.by_connector, "{CHECK}: listed as casesync's own");
    let since = port(
        CHECK,
        "list_comments(since)",
        crm.list_comments(&id, Some(added.created_at)).await,
    );
    assert!(
        since.iter().any(|c| c.id == added.id),
        "{CHECK}: a comment is returned for since = its creation time"
    );
}

/// The search returns flagged cases updated at or after `since` (the one updated exactly
/// then included), each once, and never an unflagged one.
pub async fn search_updated_since_with_flag(crm: &dyn Crm, driver: &dyn CrmTestDriver) {
    const CHECK: &str = "search_updated_since_with_flag";
    let first = drv(
        CHECK,
        "open flagged case",
        driver.open_case(&person_case("Search first", true)).await,
    );
    let unflagged = drv(
        CHECK,
        "open unflagged case",
        driver
            .open_case(&person_case("Search unflagged", false))
            .await,
    );
    let since = port(CHECK, "get_case", crm.get_case(&first).await).updated_at;
    let later = drv(
        CHECK,
        "open flagged case",
        driver.open_case(&person_case("Search later", true)).await,
    );
    drv(
        CHECK,
        "comment on the unflagged case",
        driver
            .comment_as_person(&unflagged, "still not for Google")
            .await,
    );
    let commented = drv(
        CHECK,
        "open flagged case",
        driver
            .open_case(&person_case("Search commented", true))
            .await,
    );
    drv(
        CHECK,
        "comment on a flagged case",
        driver
            .comment_as_person(&commented, "a person writes")
            .await,
    );
    drv(CHECK, "settle", driver.settle().await);

    let found = port(
        CHECK,
        "search_updated_since",
        crm.search_updated_since(since).await,
    );
    assert_search_result(CHECK, &found, since);
    let ids: HashSet<&str> = found.iter().map(|c| c.id.as_str()).collect();
    assert!(
        ids.contains(first.as_str()),
        "{CHECK}: the case updated exactly at since is returned"
    );
    assert!(
        ids.contains(later.as_str()),
        "{CHECK}: a later case is returned"
    );
    assert!(
        ids.contains(commented.as_str()),
        "{CHECK}: a case with a new comment is returned"
    );
    assert!(
        !ids.contains(unflagged.as_str()),
        "{CHECK}: an unflagged case is never returned"
    );
}

/// More than two pages of flagged cases are all returned, each once.
pub async fn search_across_pages(crm: &dyn Crm, driver: &dyn CrmTestDriver) {
    const CHECK: &str = "search_across_pages";
    let n = driver.capabilities().search_page_size * 2 + 1;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let case = person_case(&format!("Paged search {i}"), true);
        ids.push(drv(
            CHECK,
            "open flagged case",
            driver.open_case(&case).await,
        ));
    }
    let since = port(CHECK, "get_case", crm.get_case(&ids[0]).await).updated_at;
    drv(CHECK, "settle", driver.settle().await);
    let found = port(
        CHECK,
        "search_updated_since",
        crm.search_updated_since(since).await,
    );
    assert_search_result(CHECK, &found, since);
    let got: HashSet<&str> = found.iter().map(|c| c.id.as_str()).collect();
    for id in &ids {
        assert!(got.contains(id.as_str()), "{CHECK}: case {id} is returned");
    }
}

/// With update times set by hand: a case updated late in a minute is found for `since`
/// equal to its time (the adapter floors, never rounds up, and converts to the CRM's time
/// zone); a case updated half an hour earlier is not (the widening stays small); an
/// unflagged case updated at `since` is not. Skipped where the driver cannot backdate.
pub async fn search_coarse_timestamps(crm: &dyn Crm, driver: &dyn CrmTestDriver) {
    const CHECK: &str = "search_coarse_timestamps";
    let minute = (Utc::now() - Duration::minutes(90))
        .duration_trunc(Duration::minutes(1))
        .unwrap_or_else(|e| panic!("{CHECK}: truncating now: {e}"));
    let late_in_minute = minute + Duration::milliseconds(59_999);
    let plan = [
        ("Coarse exact", true, late_in_minute),
        ("Coarse unflagged", false, late_in_minute),
        ("Coarse after", true, minute + Duration::seconds(70)),
        ("Coarse before", true, minute - Duration::minutes(30)),
    ];
    let mut ids = Vec::new();
    for (summary, flagged, at) in plan {
        let case = person_case(summary, flagged);
        match drv(
            CHECK,
            "open a backdated case",
            driver.open_case_updated_at(&case, at).await,
        ) {
            Some(id) => ids.push(id),
            None => return,
        }
    }
    let [exact, unflagged, after, before] =
        <[String; 4]>::try_from(ids).unwrap_or_else(|_| panic!("{CHECK}: four cases were opened"));
    // The CRM's own precision decides what `since` is: take the time it stored.
    let since = port(CHECK, "get_case", crm.get_case(&exact).await).updated_at;
    assert!(
        (since - late_in_minute).abs() < Duration::seconds(1),
        "{CHECK}: the driver set updated to {late_in_minute}, the CRM reports {since}"
    );
    drv(CHECK, "settle", driver.settle().await);
    let found = port(
        CHECK,
        "search_updated_since",
        crm.search_updated_since(since).await,
    );
    assert_search_result(CHECK, &found, since);
    let ids: HashSet<&str> = found.iter().map(|c| c.id.as_str()).collect();
    assert!(
        ids.contains(exact.as_str()),
        "{CHECK}: the case updated exactly at since ({since}) is returned"
    );
    assert!(
        ids.contains(after.as_str()),
        "{CHECK}: the case updated in the next minute is returned"
    );
    assert!(
        !ids.contains(before.as_str()),
        "{CHECK}: a case updated 30 minutes before since is not returned"
    );
    assert!(
        !ids.contains(unflagged.as_str()),
        "{CHECK}: an unflagged case is never returned"
    );
}

/// Only casesync's own comments and attachments count as its own (docs/INVARIANTS.md#no-spoofing): a person typing
/// a marker does not make a comment casesync's.
pub async fn connector_items_are_told_apart(crm: &dyn Crm, driver: &dyn CrmTestDriver) {
    const CHECK: &str = "connector_items_are_told_apart";
    let id = drv(
        CHECK,
        "open a flagged case",
        driver.open_case(&person_case("Whose is it", true)).await,
    );
    let spoof = drv(
        CHECK,
        "comment as the person",
        driver
            .comment_as_person(&id, "[Google Comment 3 by Gina]\nlooks like a mirror")
            .await,
    );
    let own = port(
        CHECK,
        "add_comment",
        crm.add_comment(&id, "[Company Comment 1 by Alex]\nis a mirror")
            .await,
    );
    let person_file = drv(
        CHECK,
        "attach as the person",
        driver.attach_as_person(&id, "same.txt", b"person").await,
    );
    let own_file = port(
        CHECK,
        "upload_attachment",
        crm.upload_attachment(&id, upload("same.txt", "text/plain", b"casesync"))
            .await,
    );

    let comments = port(CHECK, "list_comments", crm.list_comments(&id, None).await);
    let find = |cid: &str| {
        comments
            .iter()
            .find(|c| c.id == cid)
            .unwrap_or_else(|| panic!("{CHECK}: comment {cid} is listed"))
    };
    assert!(
        !find(&spoof).by_connector,
        "{CHECK}: a person's comment with a marker is not casesync's"
    );
    assert_eq!(find(&spoof).author_name, driver.person_name(), "{CHECK}");
    assert!(find(&own.id).by_connector, "{CHECK}: casesync's comment");

    let files = port(CHECK, "list_attachments", crm.list_attachments(&id).await);
    let file = |fid: &str| {
        files
            .iter()
            .find(|a| a.id == fid)
            .unwrap_or_else(|| panic!("{CHECK}: attachment {fid} is listed"))
    };
    assert!(
        !file(&person_file).by_connector,
        "{CHECK}: a person's attachment is not casesync's"
    );
    assert!(
        file(&own_file.id).by_connector,
        "{CHECK}: casesync's upload is its own"
    );
}

// ---- helpers ----------------------------------------------------------------------------

/// Unwraps a port call or fails the check naming the call.
fn port<T>(check: &str, what: &str, result: PortResult<T>) -> T {
    result.unwrap_or_else(|e| panic!("{check}: {what} failed: {e}"))
}

/// Unwraps a driver call or fails the check naming the call.
fn drv<T>(check: &str, what: &str, result: DriverResult<T>) -> T {
    result.unwrap_or_else(|e| panic!("{check}: driver: {what} failed: {e}"))
}

/// A Google case number no earlier run used, so the suite can share a CRM with old data.
pub fn unique_case_number() -> String {
    format!("9{:015}", rand::random::<u64>() % 1_000_000_000_000_000)
}

fn key(name: &str) -> GoogleCaseKey {
    GoogleCaseKey::from_case_name(name).unwrap_or_else(|e| panic!("contract: {e}"))
}

fn person_case(summary: &str, flagged: bool) -> PersonCase {
    PersonCase {
        summary: summary.into(),
        description: format!("{summary}: opened by a person for the contract suite."),
        priority: Priority::P2,
        flagged,
    }
}

fn new_case(number: &str, priority: Priority) -> NewCrmCase {
    let name = format!("projects/casesync-contract/cases/{number}");
    NewCrmCase {
        summary: format!("Contract case {number}"),
        description: format!(
            "{}The VM does not boot.\nSerial console attached.\n\nhttps://console.cloud.google.com/support/cases/detail/v2/{number}",
            crate::domain::markers::MIRRORED_DESCRIPTION_PREFIX
        ),
        priority,
        google_case_name: name,
        google_case_number: number.into(),
    }
}

/// An upload whose body arrives in several chunks, as a real transfer does.
fn upload(filename: &str, mime_type: &str, data: &[u8]) -> AttachmentUpload {
    let chunks: Vec<PortResult<Bytes>> = data
        .chunks(16 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let body: ByteStream = futures::stream::iter(chunks).boxed();
    AttachmentUpload {
        filename: filename.into(),
        mime_type: mime_type.into(),
        size_bytes: data.len() as u64,
        body,
        marker: None,
    }
}

async fn collect(mut body: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.unwrap_or_else(|e| panic!("contract: download: {e}")));
    }
    out
}

/// Opens a flagged case and has the person write `n` comments on it; returns the case id
/// and (comment id, body) in writing order.
async fn case_with_person_comments(
    check: &str,
    driver: &dyn CrmTestDriver,
    n: usize,
) -> (String, Vec<(String, String)>) {
    let id = drv(
        check,
        "open a flagged case",
        driver.open_case(&person_case("Many comments", true)).await,
    );
    let mut written = Vec::with_capacity(n);
    for i in 0..n {
        let body = format!("person comment {i}\nsecond line of {i}");
        let cid = drv(
            check,
            "comment as the person",
            driver.comment_as_person(&id, &body).await,
        );
        written.push((cid, body));
    }
    (id, written)
}

fn assert_each_once(check: &str, comments: &[CrmComment]) {
    let mut seen = HashSet::new();
    for c in comments {
        assert!(
            seen.insert(c.id.as_str()),
            "{check}: comment {} listed twice",
            c.id
        );
    }
}

/// How far before `since` a search may reach: coarse timestamps widen the window by
/// about a minute (plus an hour inside a daylight-saving fold), never by more.
const MAX_SEARCH_WIDENING: i64 = 2 * 60;

fn assert_search_result(check: &str, found: &[CrmCase], since: DateTime<Utc>) {
    let mut seen = HashSet::new();
    for c in found {
        assert!(
            seen.insert(c.id.as_str()),
            "{check}: case {} returned twice",
            c.id
        );
        assert!(c.sync_flag, "{check}: case {} returned unflagged", c.id);
        assert!(
            c.updated_at >= since - Duration::minutes(MAX_SEARCH_WIDENING),
            "{check}: case {} updated {} is far older than since {since}",
            c.id,
            c.updated_at
        );
    }
}

// ---- the in-memory CRM as a contract participant ------------------------------------------

/// The person's display name in [`MemoryCrm`](crate::testing::MemoryCrm).
pub const MEMORY_PERSON: &str = "Alex Agent";

/// A person working in a [`MemoryCrm`](crate::testing::MemoryCrm).
pub struct MemoryCrmDriver {
    pub crm: std::sync::Arc<crate::testing::MemoryCrm>,
}

#[async_trait]
impl CrmTestDriver for MemoryCrmDriver {
    fn capabilities(&self) -> DriverCapabilities {
        DriverCapabilities {
            comment_page_size: 50,
            search_page_size: 10,
            comments_newest_first: true,
        }
    }

    fn person_name(&self) -> String {
        MEMORY_PERSON.into()
    }

    fn unknown_case_id(&self) -> String {
        "no-such-case".into()
    }

    async fn open_case(&self, case: &PersonCase) -> DriverResult<String> {
        Ok(self
            .crm
            .open_case_as_agent(
                &case.summary,
                &case.description,
                case.priority,
                case.flagged,
                None,
            )
            .id)
    }

    async fn comment_as_person(&self, case_id: &str, body: &str) -> DriverResult<String> {
        Ok(self.crm.comment_as_agent(case_id, MEMORY_PERSON, body).id)
    }

    async fn attach_as_person(
        &self,
        case_id: &str,
        filename: &str,
        data: &[u8],
    ) -> DriverResult<String> {
        Ok(self
            .crm
            .attach_as_agent(case_id, MEMORY_PERSON, filename, data)
            .id)
    }

    async fn open_case_updated_at(
        &self,
        case: &PersonCase,
        at: DateTime<Utc>,
    ) -> DriverResult<Option<String>> {
        Ok(Some(
            self.crm
                .open_case_as_agent(
                    &case.summary,
                    &case.description,
                    case.priority,
                    case.flagged,
                    Some(at),
                )
                .id,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::testing::MemoryCrm;
    use std::sync::Arc;

    struct MemoryFixture {
        crm: Arc<MemoryCrm>,
        driver: MemoryCrmDriver,
    }

    impl ContractFixture for MemoryFixture {
        fn crm(&self) -> &dyn Crm {
            &*self.crm
        }
        fn driver(&self) -> &dyn CrmTestDriver {
            &self.driver
        }
    }

    async fn memory_fixture() -> MemoryFixture {
        let crm = Arc::new(MemoryCrm::new(Arc::new(SystemClock)));
        MemoryFixture {
            driver: MemoryCrmDriver { crm: crm.clone() },
            crm,
        }
    }

    mod each_check {
        crate::crm_contract_tests!(super::memory_fixture);
    }

    #[tokio::test]
    async fn the_whole_suite_passes_against_the_memory_crm_in_one_crm() {
        let f = memory_fixture().await;
        run_all(f.crm(), f.driver()).await;
    }

    #[test]
    fn case_numbers_are_google_case_keys() {
        let n = unique_case_number();
        assert_eq!(n.len(), 16);
        assert_eq!(key(&n).as_str(), n);
    }
}
