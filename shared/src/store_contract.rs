//! The contract every `MappingStore` passes (docs/ARCHITECTURE.md#testing, docs/INVARIANTS.md): one
//! suite, written against the port, so the embedded SQLite store the local runner uses and
//! the Firestore store production uses are held to the same semantics the task bodies rely
//! on. The engine's correctness (one counterpart, one sync per case at a time, writers that
//! never clobber each other's fields) rests on these, not on either implementation.
//!
//! Every check is an `async fn(&dyn MappingStore)` that panics with the check's name on the
//! first violation: they are test code. Each check makes fresh random case keys and only
//! asserts about the mappings it made, so the checks may share one store, even one that
//! already holds data, and may run again on it. The one singleton, `Global`, is moved by a
//! single check only, and forward from whatever it already holds.
//!
//! [`all_checks`] lists them by name, for a test that wants a fresh store (or database) per
//! check; [`run_all`] runs them one after another on one store.

use crate::domain::{
    CaseMapping, CompanyCaseKey, GoogleCaseKey, LedgerEntry, LedgerOutcome, Priority, Side,
    SyncState,
};
use crate::error::{ErrorClass, PortError, PortResult};
use crate::ports::{InsertOutcome, LeaseOutcome, MappingStore};
use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::future::BoxFuture;

/// One check of the suite.
pub type StoreCheck = for<'a> fn(&'a dyn MappingStore) -> BoxFuture<'a, ()>;

/// Every check, by name, in a stable order.
pub fn all_checks() -> Vec<(&'static str, StoreCheck)> {
    vec![
        ("insert_and_find_by_either_key", |s| {
            Box::pin(insert_and_find_by_either_key(s))
        }),
        ("a_full_mapping_round_trips", |s| {
            Box::pin(a_full_mapping_round_trips(s))
        }),
        (
            "a_clashing_insert_is_already_mapped_and_writes_nothing",
            |s| Box::pin(a_clashing_insert_is_already_mapped_and_writes_nothing(s)),
        ),
        ("the_lease_is_exclusive_until_it_expires", |s| {
            Box::pin(the_lease_is_exclusive_until_it_expires(s))
        }),
        ("save_synced_is_fenced_by_the_lease_holder", |s| {
            Box::pin(save_synced_is_fenced_by_the_lease_holder(s))
        }),
        ("save_synced_links_new_keys_and_refuses_taken_ones", |s| {
            Box::pin(save_synced_links_new_keys_and_refuses_taken_ones(s))
        }),
        ("release_lease_only_by_its_holder", |s| {
            Box::pin(release_lease_only_by_its_holder(s))
        }),
        ("renew_lease_only_by_its_holder", |s| {
            Box::pin(renew_lease_only_by_its_holder(s))
        }),
        ("mark_pending_keeps_the_latest", |s| {
            Box::pin(mark_pending_keeps_the_latest(s))
        }),
        (
            "clear_pending_only_clears_marks_set_before_the_sync_started",
            |s| {
                Box::pin(clear_pending_only_clears_marks_set_before_the_sync_started(
                    s,
                ))
            },
        ),
        ("writers_keep_to_their_own_fields", |s| {
            Box::pin(writers_keep_to_their_own_fields(s))
        }),
        ("writes_to_a_missing_mapping_create_nothing", |s| {
            Box::pin(writes_to_a_missing_mapping_create_nothing(s))
        }),
        ("list_open_excludes_resolved", |s| {
            Box::pin(list_open_excludes_resolved(s))
        }),
        ("delete_resolved_before_deletes_mappings_and_keys", |s| {
            Box::pin(delete_resolved_before_deletes_mappings_and_keys(s))
        }),
        ("poll_times_only_move_forward", |s| {
            Box::pin(poll_times_only_move_forward(s))
        }),
        ("concurrent_leases_have_one_winner", |s| {
            Box::pin(concurrent_leases_have_one_winner(s))
        }),
        ("concurrent_inserts_have_one_winner", |s| {
            Box::pin(concurrent_inserts_have_one_winner(s))
        }),
    ]
}

/// Runs every check on one store, one after another.
pub async fn run_all(store: &dyn MappingStore) {
    for (_, check) in all_checks() {
        check(store).await;
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

/// A fixed base time with whole seconds: every store keeps at least millisecond precision,
/// so the times the checks write come back equal.
fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
        + Duration::minutes(minutes)
}

fn fresh_number() -> String {
    format!("7{:014}", rand::random::<u64>() % 100_000_000_000_000)
}

/// A CRM id with a character a Firestore document id cannot hold, so the store's id
/// derivation is exercised too.
fn fresh_company_id() -> String {
    format!("CT/{}", rand::random::<u64>() % 1_000_000_000_000)
}

fn gkey(number: &str) -> GoogleCaseKey {
    GoogleCaseKey::from_case_name(number).unwrap_or_else(|e| panic!("bad test key: {e}"))
}

fn ckey(id: &str) -> CompanyCaseKey {
    CompanyCaseKey::new(id).unwrap_or_else(|e| panic!("bad test key: {e}"))
}

/// A mapping first seen on Google, not linked yet.
fn google_mapping(number: &str) -> CaseMapping {
    CaseMapping::from_google(
        &format!("projects/contract/cases/{number}"),
        &gkey(number),
        Priority::P2,
        t(0),
    )
}

/// A mapping first seen on Google and linked to a CRM case.
fn linked_mapping() -> (CaseMapping, String, String) {
    let number = fresh_number();
    let company = fresh_company_id();
    let mut m = google_mapping(&number);
    m.company_case_id = Some(company.clone());
    (m, number, company)
}

fn ok<T>(check: &str, what: &str, result: PortResult<T>) -> T {
    result.unwrap_or_else(|e| panic!("store contract `{check}`: {what} failed: {e}"))
}

async fn insert(check: &str, store: &dyn MappingStore, m: &CaseMapping) {
    let outcome = ok(check, "insert_new", store.insert_new(m).await);
    assert_eq!(
        outcome,
        InsertOutcome::Created,
        "store contract `{check}`: inserting fresh mapping {} was not Created",
        m.id
    );
}

async fn get(check: &str, store: &dyn MappingStore, id: &str) -> Option<CaseMapping> {
    ok(check, "get", store.get(id).await)
}

async fn must_get(check: &str, store: &dyn MappingStore, id: &str) -> CaseMapping {
    get(check, store, id)
        .await
        .unwrap_or_else(|| panic!("store contract `{check}`: mapping {id} is missing"))
}

async fn lease(
    check: &str,
    store: &dyn MappingStore,
    id: &str,
    holder: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> CaseMapping {
    match ok(
        check,
        "acquire_lease",
        store.acquire_lease(id, holder, until, now).await,
    ) {
        LeaseOutcome::Acquired(m) => *m,
        LeaseOutcome::Missing => panic!("store contract `{check}`: mapping {id} is missing"),
    }
}

/// The fields a sync owns, i.e. what `save_synced` writes; the rest have other writers.
fn sync_owned(m: &CaseMapping) -> CaseMapping {
    let mut m = m.clone();
    m.lease = None;
    m.google_pending_since = None;
    m.company_pending_since = None;
    m.outage_comment_sent_to_google = false;
    m.outage_comment_sent_to_company = false;
    m
}

// ---------------------------------------------------------------------------------------
// The checks

/// A new mapping is found by its id and by each of its keys (docs/ARCHITECTURE.md#case-keys).
pub async fn insert_and_find_by_either_key(store: &dyn MappingStore) {
    const C: &str = "insert_and_find_by_either_key";
    let (m, number, company) = linked_mapping();
    assert_eq!(
        get(C, store, &m.id).await,
        None,
        "{C}: fresh id already used"
    );
    insert(C, store, &m).await;

    let by_id = must_get(C, store, &m.id).await;
    let by_google = ok(
        C,
        "find_by_google",
        store.find_by_google(&gkey(&number)).await,
    );
    let by_company = ok(
        C,
        "find_by_company",
        store.find_by_company(&ckey(&company)).await,
    );
    assert_eq!(
        by_id, m,
        "store contract `{C}`: get returned another mapping"
    );
    assert_eq!(
        by_google.as_ref(),
        Some(&m),
        "store contract `{C}`: find_by_google"
    );
    assert_eq!(
        by_company.as_ref(),
        Some(&m),
        "store contract `{C}`: find_by_company"
    );

    // A Google key is the case number, whatever parent the name was read under.
    let other_name = GoogleCaseKey::from_case_name(&format!("organizations/9/cases/{number}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ok(C, "find_by_google", store.find_by_google(&other_name).await).map(|m| m.id),
        Some(m.id.clone()),
        "store contract `{C}`: a key is the number, not the name"
    );
    // An unknown key finds nothing.
    assert_eq!(
        ok(
            C,
            "find_by_google",
            store.find_by_google(&gkey(&fresh_number())).await
        ),
        None,
        "store contract `{C}`: an unknown Google key found a mapping"
    );
    assert_eq!(
        ok(
            C,
            "find_by_company",
            store.find_by_company(&ckey(&fresh_company_id())).await
        ),
        None,
        "store contract `{C}`: an unknown CRM key found a mapping"
    );
}

/// Every sync-owned field comes back as written, through insert and through save_synced.
pub async fn a_full_mapping_round_trips(store: &dyn MappingStore) {
    const C: &str = "a_full_mapping_round_trips";
    let (mut m, _, _) = linked_mapping();
    m.new_content_at = Some(t(3));
    m.google_updates_synced_at = Some(t(4));
    m.google_create_intent_at = Some(t(-2));
    m.company_create_intent_at = Some(t(-1));
    m.google_update_time_synced = Some(t(5) + Duration::milliseconds(123));
    m.company_update_time_synced = Some(t(6));
    m.now_syncing_comment_posted = true;
    m.priority = Priority::P0;
    m.google_pending_since = Some(t(7));
    m.attachment_ledger.insert(
        "google:projects/contract/cases/1/attachments/a b.txt".into(),
        LedgerEntry {
            outcome: LedgerOutcome::Mirrored,
            target_id: Some("10001".into()),
            attempted_at: t(8),
            reason: None,
        },
    );
    m.attachment_ledger.insert(
        "company:10002".into(),
        LedgerEntry {
            outcome: LedgerOutcome::Attempted,
            target_id: None,
            attempted_at: t(9) + Duration::milliseconds(1),
            reason: None,
        },
    );
    insert(C, store, &m).await;
    assert_eq!(
        must_get(C, store, &m.id).await,
        m,
        "store contract `{C}`: the inserted mapping came back changed"
    );

    let mut leased = lease(C, store, &m.id, "h", t(60), t(10)).await;
    assert_eq!(
        sync_owned(&leased),
        sync_owned(&m),
        "store contract `{C}`: acquire_lease returned a changed mapping"
    );
    leased.sync_state = SyncState::Unlinked {
        reason: "Google case gone".into(),
    };
    leased.reopen_notice_sent = true;
    leased.resolved_at = Some(t(11));
    leased.priority = Priority::P4;
    leased.attachment_ledger.insert(
        "google:x".into(),
        LedgerEntry {
            outcome: LedgerOutcome::Skipped,
            target_id: None,
            attempted_at: t(12),
            reason: None,
        },
    );
    ok(C, "save_synced", store.save_synced(&leased, "h").await);
    let back = must_get(C, store, &m.id).await;
    assert_eq!(
        sync_owned(&back),
        sync_owned(&leased),
        "store contract `{C}`: the saved mapping came back changed"
    );
    assert_eq!(
        back.google_pending_since,
        Some(t(7)),
        "store contract `{C}`: the pending mark written at insert was lost"
    );
    assert_eq!(
        back.lease.map(|l| (l.holder, l.until)),
        Some(("h".to_string(), t(60))),
        "store contract `{C}`: the lease did not round-trip"
    );
}

/// A second mapping that claims a key already mapped is not written at all (docs/INVARIANTS.md#one-counterpart).
pub async fn a_clashing_insert_is_already_mapped_and_writes_nothing(store: &dyn MappingStore) {
    const C: &str = "a_clashing_insert_is_already_mapped_and_writes_nothing";
    let (first, number, company) = linked_mapping();
    insert(C, store, &first).await;

    // The same mapping again.
    assert_eq!(
        ok(C, "insert_new", store.insert_new(&first).await),
        InsertOutcome::AlreadyMapped(first.id.clone()),
        "store contract `{C}`: a second insert of one mapping"
    );

    // A mapping from the CRM side whose Google key is already mapped.
    let other_company = fresh_company_id();
    let mut from_crm = CaseMapping::from_company(&ckey(&other_company), Priority::P1, t(1));
    from_crm.google_case_name = Some(format!("projects/contract/cases/{number}"));
    assert_eq!(
        ok(C, "insert_new", store.insert_new(&from_crm).await),
        InsertOutcome::AlreadyMapped(first.id.clone()),
        "store contract `{C}`: a clash on the Google key"
    );
    assert_eq!(
        get(C, store, &from_crm.id).await,
        None,
        "store contract `{C}`: the clashing mapping was written"
    );
    assert_eq!(
        ok(
            C,
            "find_by_company",
            store.find_by_company(&ckey(&other_company)).await
        ),
        None,
        "store contract `{C}`: the clashing mapping's free key was written"
    );

    // A mapping from the Google side whose CRM key is already mapped.
    let other_number = fresh_number();
    let mut from_google = google_mapping(&other_number);
    from_google.company_case_id = Some(company.clone());
    assert_eq!(
        ok(C, "insert_new", store.insert_new(&from_google).await),
        InsertOutcome::AlreadyMapped(first.id.clone()),
        "store contract `{C}`: a clash on the CRM key"
    );
    assert_eq!(
        get(C, store, &from_google.id).await,
        None,
        "store contract `{C}`: the clashing mapping was written"
    );
    assert_eq!(
        ok(
            C,
            "find_by_google",
            store.find_by_google(&gkey(&other_number)).await
        ),
        None,
        "store contract `{C}`: the clashing mapping's free key was written"
    );
    assert_eq!(
        must_get(C, store, &first.id).await,
        first,
        "store contract `{C}`: the first mapping changed"
    );
}

/// One holder at a time while the lease is live; anyone after it expires (docs/INVARIANTS.md#the-lease).
pub async fn the_lease_is_exclusive_until_it_expires(store: &dyn MappingStore) {
    const C: &str = "the_lease_is_exclusive_until_it_expires";
    let missing = CaseMapping::id_for_google(&gkey(&fresh_number()));
    assert_eq!(
        ok(
            C,
            "acquire_lease",
            store.acquire_lease(&missing, "a", t(10), t(0)).await
        ),
        LeaseOutcome::Missing,
        "store contract `{C}`: a lease on a missing mapping"
    );
    let (m, _, _) = linked_mapping();
    insert(C, store, &m).await;

    let got = lease(C, store, &m.id, "a", t(10), t(0)).await;
    assert_eq!(
        got.lease.as_ref().map(|l| (l.holder.as_str(), l.until)),
        Some(("a", t(10))),
        "store contract `{C}`: the returned mapping does not carry the lease"
    );
    assert_eq!(sync_owned(&got), sync_owned(&m), "{C}: the mapping changed");

    match store.acquire_lease(&m.id, "b", t(20), t(5)).await {
        Err(PortError::LeaseHeld { mapping_id, .. }) => assert_eq!(mapping_id, m.id),
        other => panic!("store contract `{C}`: a live lease was taken over: {other:?}"),
    }
    // The holder itself may renew.
    let renewed = lease(C, store, &m.id, "a", t(15), t(6)).await;
    assert_eq!(renewed.lease.map(|l| l.until), Some(t(15)), "{C}: renewal");
    match store.acquire_lease(&m.id, "b", t(20), t(14)).await {
        Err(PortError::LeaseHeld { .. }) => {}
        other => panic!("store contract `{C}`: a renewed lease was taken over: {other:?}"),
    }
    // Once expired, another holder takes it over.
    let taken = lease(C, store, &m.id, "b", t(30), t(16)).await;
    assert_eq!(
        taken.lease.map(|l| l.holder),
        Some("b".to_string()),
        "store contract `{C}`: takeover after expiry"
    );
    assert_eq!(
        must_get(C, store, &m.id).await.lease.map(|l| l.holder),
        Some("b".to_string()),
        "store contract `{C}`: the stored lease"
    );
    // A lease held by another is an error the engine retries.
    let err = store
        .acquire_lease(&m.id, "a", t(40), t(17))
        .await
        .err()
        .unwrap_or_else(|| panic!("store contract `{C}`: the old holder took it back"));
    assert_eq!(err.class(), ErrorClass::Retryable, "{C}: LeaseHeld class");
}

/// Writes by a holder whose lease was taken over are refused (docs/INVARIANTS.md#the-lease).
pub async fn save_synced_is_fenced_by_the_lease_holder(store: &dyn MappingStore) {
    const C: &str = "save_synced_is_fenced_by_the_lease_holder";
    let (m, _, _) = linked_mapping();
    insert(C, store, &m).await;

    // Without any lease.
    match store.save_synced(&m, "nobody").await {
        Err(PortError::LeaseLost { mapping_id }) => assert_eq!(mapping_id, m.id),
        other => panic!("store contract `{C}`: a save without a lease: {other:?}"),
    }

    let mut a = lease(C, store, &m.id, "a", t(10), t(0)).await;
    a.priority = Priority::P1;
    ok(C, "save_synced", store.save_synced(&a, "a").await);
    assert_eq!(
        must_get(C, store, &m.id).await.priority,
        Priority::P1,
        "{C}"
    );

    // "b" takes the expired lease over; "a" may no longer write.
    let mut b = lease(C, store, &m.id, "b", t(30), t(11)).await;
    a.priority = Priority::P3;
    match store.save_synced(&a, "a").await {
        Err(PortError::LeaseLost { .. }) => {}
        other => panic!("store contract `{C}`: the old holder's save: {other:?}"),
    }
    assert_eq!(
        must_get(C, store, &m.id).await.priority,
        Priority::P1,
        "store contract `{C}`: the refused save was written"
    );
    b.priority = Priority::P0;
    ok(C, "save_synced", store.save_synced(&b, "b").await);
    assert_eq!(
        must_get(C, store, &m.id).await.priority,
        Priority::P0,
        "{C}"
    );

    // A save of a mapping that does not exist is refused the same way.
    let ghost = google_mapping(&fresh_number());
    match store.save_synced(&ghost, "b").await {
        Err(PortError::LeaseLost { .. }) => {}
        other => panic!("store contract `{C}`: a save of a missing mapping: {other:?}"),
    }
    assert_eq!(get(C, store, &ghost.id).await, None, "{C}: ghost written");
}

/// Linking writes the new key; a key another mapping holds is a permanent error and
/// nothing is written (docs/INVARIANTS.md#one-counterpart).
pub async fn save_synced_links_new_keys_and_refuses_taken_ones(store: &dyn MappingStore) {
    const C: &str = "save_synced_links_new_keys_and_refuses_taken_ones";
    let number = fresh_number();
    let m = google_mapping(&number);
    insert(C, store, &m).await;
    let (other, _, taken_company) = linked_mapping();
    insert(C, store, &other).await;

    let mut leased = lease(C, store, &m.id, "h", t(10), t(0)).await;
    leased.company_case_id = Some(taken_company.clone());
    leased.priority = Priority::P0;
    let err = store
        .save_synced(&leased, "h")
        .await
        .err()
        .unwrap_or_else(|| panic!("store contract `{C}`: a taken key was linked"));
    assert_eq!(
        err.class(),
        ErrorClass::Permanent,
        "store contract `{C}`: class of a taken key: {err}"
    );
    let unchanged = must_get(C, store, &m.id).await;
    assert_eq!(
        (unchanged.company_case_id, unchanged.priority),
        (None, Priority::P2),
        "store contract `{C}`: the refused save was written"
    );
    assert_eq!(
        ok(
            C,
            "find_by_company",
            store.find_by_company(&ckey(&taken_company)).await
        )
        .map(|m| m.id),
        Some(other.id.clone()),
        "store contract `{C}`: the taken key changed hands"
    );

    let company = fresh_company_id();
    leased.company_case_id = Some(company.clone());
    ok(C, "save_synced", store.save_synced(&leased, "h").await);
    let found = ok(
        C,
        "find_by_company",
        store.find_by_company(&ckey(&company)).await,
    );
    assert_eq!(
        found.as_ref().map(|f| f.id.as_str()),
        Some(m.id.as_str()),
        "store contract `{C}`: the new key does not find the mapping"
    );
    assert_eq!(
        found.and_then(|f| f.company_case_id),
        Some(company.clone()),
        "{C}"
    );
    assert_eq!(
        ok(
            C,
            "find_by_google",
            store.find_by_google(&gkey(&number)).await
        )
        .map(|m| m.id),
        Some(m.id.clone()),
        "store contract `{C}`: the old key was lost"
    );
    // Saving again with the same keys is no clash with itself.
    ok(C, "save_synced", store.save_synced(&leased, "h").await);
}

/// Releasing drops the lease only for its holder.
pub async fn release_lease_only_by_its_holder(store: &dyn MappingStore) {
    const C: &str = "release_lease_only_by_its_holder";
    let (m, _, _) = linked_mapping();
    insert(C, store, &m).await;
    lease(C, store, &m.id, "a", t(10), t(0)).await;

    ok(C, "release_lease", store.release_lease(&m.id, "b").await);
    assert_eq!(
        must_get(C, store, &m.id).await.lease.map(|l| l.holder),
        Some("a".to_string()),
        "store contract `{C}`: a stranger released the lease"
    );
    ok(C, "release_lease", store.release_lease(&m.id, "a").await);
    assert_eq!(
        must_get(C, store, &m.id).await.lease,
        None,
        "store contract `{C}`: the holder's release"
    );
    // Released: anyone may lease it at once, long before the old expiry.
    lease(C, store, &m.id, "b", t(10), t(1)).await;
    // And the old holder may no longer write.
    match store.save_synced(&m, "a").await {
        Err(PortError::LeaseLost { .. }) => {}
        other => panic!("store contract `{C}`: a released holder's save: {other:?}"),
    }
}

/// A long sync renews its lease while it holds it; once another delivery took the lease over,
/// renewing is refused, so the old sync stops before its next write (docs/INVARIANTS.md#the-lease).
pub async fn renew_lease_only_by_its_holder(store: &dyn MappingStore) {
    const C: &str = "renew_lease_only_by_its_holder";
    let (m, _, _) = linked_mapping();
    insert(C, store, &m).await;
    lease(C, store, &m.id, "a", t(10), t(0)).await;
    ok(C, "renew_lease", store.renew_lease(&m.id, "a", t(20)).await);
    let renewed = must_get(C, store, &m.id).await.lease;
    assert_eq!(
        renewed.map(|l| (l.holder, l.until)),
        Some(("a".to_string(), t(20))),
        "store contract `{C}`: the holder's renewal"
    );
    // A second delivery sees the renewed lease as live at t(15).
    match store.acquire_lease(&m.id, "b", t(30), t(15)).await {
        Err(PortError::LeaseHeld { .. }) => {}
        other => panic!("store contract `{C}`: lease taken despite renewal: {other:?}"),
    }
    // Past the renewed expiry another delivery takes it; the old holder cannot renew.
    lease(C, store, &m.id, "b", t(40), t(21)).await;
    match store.renew_lease(&m.id, "a", t(50)).await {
        Err(PortError::LeaseLost { .. }) => {}
        other => panic!("store contract `{C}`: a stranger renewed the lease: {other:?}"),
    }
    match store.renew_lease("no-such-mapping", "a", t(50)).await {
        Err(PortError::LeaseLost { .. }) => {}
        other => panic!("store contract `{C}`: renewed a missing mapping: {other:?}"),
    }
}

/// A poll's mark keeps the latest time a sync of that side was enqueued, per side, so a sync
/// that started between two enqueues does not clear the second.
pub async fn mark_pending_keeps_the_latest(store: &dyn MappingStore) {
    const C: &str = "mark_pending_keeps_the_latest";
    let (m, _, _) = linked_mapping();
    insert(C, store, &m).await;

    ok(
        C,
        "mark_pending",
        store.mark_pending(&m.id, Side::Google, t(5)).await,
    );
    ok(
        C,
        "mark_pending",
        store.mark_pending(&m.id, Side::Google, t(7)).await,
    );
    let got = must_get(C, store, &m.id).await;
    assert_eq!(
        (got.google_pending_since, got.company_pending_since),
        (Some(t(7)), None),
        "store contract `{C}`: a later mark did not replace the earlier"
    );
    ok(
        C,
        "mark_pending",
        store.mark_pending(&m.id, Side::Google, t(3)).await,
    );
    assert_eq!(
        must_get(C, store, &m.id).await.google_pending_since,
        Some(t(7)),
        "store contract `{C}`: an earlier mark arriving late replaced a later one"
    );
    ok(
        C,
        "mark_pending",
        store.mark_pending(&m.id, Side::Company, t(8)).await,
    );
    let got = must_get(C, store, &m.id).await;
    assert_eq!(
        (got.google_pending_since, got.company_pending_since),
        (Some(t(7)), Some(t(8))),
        "store contract `{C}`: the sides are not independent"
    );
}

/// A successful sync clears only the marks it covers: those set at or before it started.
pub async fn clear_pending_only_clears_marks_set_before_the_sync_started(store: &dyn MappingStore) {
    const C: &str = "clear_pending_only_clears_marks_set_before_the_sync_started";
    let (m, _, _) = linked_mapping();
    insert(C, store, &m).await;
    ok(
        C,
        "mark_pending",
        store.mark_pending(&m.id, Side::Company, t(5)).await,
    );
    ok(
        C,
        "mark_pending",
        store.mark_pending(&m.id, Side::Google, t(5)).await,
    );

    ok(
        C,
        "clear_pending",
        store.clear_pending(&m.id, Side::Company, t(4)).await,
    );
    assert_eq!(
        must_get(C, store, &m.id).await.company_pending_since,
        Some(t(5)),
        "store contract `{C}`: a sync that started before the mark cleared it"
    );
    ok(
        C,
        "clear_pending",
        store.clear_pending(&m.id, Side::Company, t(5)).await,
    );
    let got = must_get(C, store, &m.id).await;
    assert_eq!(
        (got.company_pending_since, got.google_pending_since),
        (None, Some(t(5))),
        "store contract `{C}`: a sync started at the mark clears that side only"
    );
    // Clearing what is not marked is harmless.
    ok(
        C,
        "clear_pending",
        store.clear_pending(&m.id, Side::Company, t(9)).await,
    );
    ok(
        C,
        "mark_pending",
        store.mark_pending(&m.id, Side::Company, t(7)).await,
    );
    ok(
        C,
        "clear_pending",
        store.clear_pending(&m.id, Side::Company, t(6)).await,
    );
    assert_eq!(
        must_get(C, store, &m.id).await.company_pending_since,
        Some(t(7)),
        "store contract `{C}`: a new mark was cleared by an older sync"
    );
}

/// The sync, the polls and detect-outages each own their fields (mapping.rs): a save does
/// not undo a pending mark or an outage flag set meanwhile, and those writers do not touch
/// the sync's fields or the lease.
pub async fn writers_keep_to_their_own_fields(store: &dyn MappingStore) {
    const C: &str = "writers_keep_to_their_own_fields";
    let (m, _, _) = linked_mapping();
    insert(C, store, &m).await;
    let mut leased = lease(C, store, &m.id, "h", t(10), t(0)).await;

    // While the sync runs, detect-outages and a poll write their own fields.
    ok(
        C,
        "set_outage_flag",
        store.set_outage_flag(&m.id, Side::Google, true).await,
    );
    ok(
        C,
        "mark_pending",
        store.mark_pending(&m.id, Side::Company, t(2)).await,
    );
    let seen = must_get(C, store, &m.id).await;
    assert!(
        seen.outage_comment_sent_to_google && !seen.outage_comment_sent_to_company,
        "store contract `{C}`: set_outage_flag"
    );
    assert_eq!(
        seen.lease.as_ref().map(|l| l.holder.as_str()),
        Some("h"),
        "store contract `{C}`: a flag or mark dropped the lease"
    );
    assert_eq!(sync_owned(&seen), sync_owned(&m), "{C}: sync fields moved");

    // The sync's copy still has the flag unset and nothing pending; its save keeps both.
    leased.priority = Priority::P0;
    leased.google_updates_synced_at = Some(t(3));
    leased.new_content_at = Some(t(3));
    assert!(!leased.outage_comment_sent_to_google && leased.company_pending_since.is_none());
    ok(C, "save_synced", store.save_synced(&leased, "h").await);
    let after = must_get(C, store, &m.id).await;
    assert!(
        after.outage_comment_sent_to_google,
        "store contract `{C}`: save_synced overwrote the outage flag"
    );
    assert_eq!(
        after.company_pending_since,
        Some(t(2)),
        "store contract `{C}`: save_synced overwrote the pending mark"
    );
    assert_eq!(
        after.lease.as_ref().map(|l| (l.holder.as_str(), l.until)),
        Some(("h", t(10))),
        "store contract `{C}`: save_synced changed the lease"
    );
    assert_eq!(
        (
            after.priority,
            after.google_updates_synced_at,
            after.new_content_at
        ),
        (Priority::P0, Some(t(3)), Some(t(3))),
        "store contract `{C}`: save_synced did not write its fields"
    );

    // A sync's copy carrying a flag set does not set it either: the flag is not its field.
    ok(
        C,
        "set_outage_flag",
        store.set_outage_flag(&m.id, Side::Google, false).await,
    );
    leased.outage_comment_sent_to_company = true;
    leased.google_pending_since = Some(t(1));
    ok(C, "save_synced", store.save_synced(&leased, "h").await);
    let after = must_get(C, store, &m.id).await;
    assert_eq!(
        (
            after.outage_comment_sent_to_google,
            after.outage_comment_sent_to_company,
            after.google_pending_since
        ),
        (false, false, None),
        "store contract `{C}`: save_synced wrote fields it does not own"
    );
    ok(
        C,
        "set_outage_flag",
        store.set_outage_flag(&m.id, Side::Company, true).await,
    );
    let after = must_get(C, store, &m.id).await;
    assert!(
        !after.outage_comment_sent_to_google && after.outage_comment_sent_to_company,
        "store contract `{C}`: the flags are not independent"
    );
}

/// The writers that address a mapping by id do nothing when it is gone (cleaned up
/// meanwhile): no half-written document appears.
pub async fn writes_to_a_missing_mapping_create_nothing(store: &dyn MappingStore) {
    const C: &str = "writes_to_a_missing_mapping_create_nothing";
    let id = CaseMapping::id_for_google(&gkey(&fresh_number()));
    ok(
        C,
        "mark_pending",
        store.mark_pending(&id, Side::Google, t(1)).await,
    );
    ok(
        C,
        "clear_pending",
        store.clear_pending(&id, Side::Google, t(1)).await,
    );
    ok(
        C,
        "set_outage_flag",
        store.set_outage_flag(&id, Side::Company, true).await,
    );
    ok(C, "release_lease", store.release_lease(&id, "h").await);
    assert_eq!(
        get(C, store, &id).await,
        None,
        "store contract `{C}`: a write created mapping {id}"
    );
    let listed = ok(C, "list_open", store.list_open().await);
    assert!(
        listed.iter().all(|m| m.id != id),
        "store contract `{C}`: list_open shows mapping {id}"
    );
}

/// The outage scan reads open mappings only (docs/ARCHITECTURE.md#detect-outages).
pub async fn list_open_excludes_resolved(store: &dyn MappingStore) {
    const C: &str = "list_open_excludes_resolved";
    let (open, _, _) = linked_mapping();
    let (mut resolved, _, _) = linked_mapping();
    resolved.resolved_at = Some(t(1));
    let (closing, _, _) = linked_mapping();
    insert(C, store, &open).await;
    insert(C, store, &resolved).await;
    insert(C, store, &closing).await;
    ok(
        C,
        "set_outage_flag",
        store.set_outage_flag(&open.id, Side::Google, true).await,
    );

    let listed = ok(C, "list_open", store.list_open().await);
    let ids: Vec<&str> = listed.iter().map(|m| m.id.as_str()).collect();
    assert!(
        ids.contains(&open.id.as_str()) && ids.contains(&closing.id.as_str()),
        "store contract `{C}`: open mappings missing from {ids:?}"
    );
    assert!(
        !ids.contains(&resolved.id.as_str()),
        "store contract `{C}`: a resolved mapping is listed"
    );
    let listed_open = listed.iter().find(|m| m.id == open.id);
    assert!(
        listed_open.is_some_and(|m| m.outage_comment_sent_to_google),
        "store contract `{C}`: list_open does not carry the outage flags"
    );

    // Resolving through a sync takes it off the list.
    let mut leased = lease(C, store, &closing.id, "h", t(10), t(0)).await;
    leased.resolved_at = Some(t(2));
    ok(C, "save_synced", store.save_synced(&leased, "h").await);
    let listed = ok(C, "list_open", store.list_open().await);
    assert!(
        listed.iter().all(|m| m.id != closing.id),
        "store contract `{C}`: a mapping resolved by save_synced is still listed"
    );
    assert!(
        listed.iter().any(|m| m.id == open.id),
        "store contract `{C}`: the open mapping went missing"
    );
}

/// Cleanup deletes mappings resolved before the cutoff, with their key entries, and
/// nothing else (docs/ARCHITECTURE.md#cleanup-case-mappings).
pub async fn delete_resolved_before_deletes_mappings_and_keys(store: &dyn MappingStore) {
    const C: &str = "delete_resolved_before_deletes_mappings_and_keys";
    let (mut old, old_number, old_company) = linked_mapping();
    old.resolved_at = Some(t(-60 * 24 * 40));
    let (mut recent, _, _) = linked_mapping();
    recent.resolved_at = Some(t(-60 * 24));
    let (open, _, _) = linked_mapping();
    for m in [&old, &recent, &open] {
        insert(C, store, m).await;
    }

    let deleted = ok(
        C,
        "delete_resolved_before",
        store.delete_resolved_before(t(-60 * 24 * 30)).await,
    );
    assert!(
        deleted.contains(&old.id),
        "store contract `{C}`: {} not reported deleted: {deleted:?}",
        old.id
    );
    assert!(
        !deleted.contains(&recent.id) && !deleted.contains(&open.id),
        "store contract `{C}`: deleted too much: {deleted:?}"
    );
    assert_eq!(get(C, store, &old.id).await, None, "{C}: old mapping kept");
    assert_eq!(
        ok(
            C,
            "find_by_google",
            store.find_by_google(&gkey(&old_number)).await
        ),
        None,
        "store contract `{C}`: the Google key entry was kept"
    );
    assert_eq!(
        ok(
            C,
            "find_by_company",
            store.find_by_company(&ckey(&old_company)).await
        ),
        None,
        "store contract `{C}`: the CRM key entry was kept"
    );
    assert!(
        get(C, store, &recent.id).await.is_some(),
        "{C}: recent gone"
    );
    assert!(get(C, store, &open.id).await.is_some(), "{C}: open gone");

    // The keys are free again: the same case may be picked up afresh.
    let mut again = google_mapping(&old_number);
    again.company_case_id = Some(old_company.clone());
    insert(C, store, &again).await;
    let second = ok(
        C,
        "delete_resolved_before",
        store.delete_resolved_before(t(-60 * 24 * 30)).await,
    );
    assert!(
        !second.contains(&again.id),
        "store contract `{C}`: an open mapping on freed keys was deleted"
    );
    assert_eq!(
        ok(
            C,
            "find_by_company",
            store.find_by_company(&ckey(&old_company)).await
        )
        .map(|m| m.id),
        Some(again.id.clone()),
        "store contract `{C}`: the re-created mapping lost its key"
    );
}

/// The poll bookkeeping moves forward only, per side, and reads back as written (docs/INVARIANTS.md#derived-synced-at).
pub async fn poll_times_only_move_forward(store: &dyn MappingStore) {
    const C: &str = "poll_times_only_move_forward";
    let before = ok(C, "global", store.global().await);
    let base = [
        before.google_last_polled_at,
        before.company_last_polled_at,
        before.google_last_good_poll_at,
        before.company_last_good_poll_at,
    ]
    .into_iter()
    .flatten()
    .chain([t(0)])
    .max()
    .unwrap_or_else(|| t(0))
        + Duration::hours(1);

    let g = ok(
        C,
        "advance_poll",
        store
            .advance_poll(Side::Google, base + Duration::minutes(10))
            .await,
    );
    assert_eq!(
        (g.google_last_polled_at, g.google_last_good_poll_at),
        (
            Some(base + Duration::minutes(10)),
            Some(base + Duration::minutes(10))
        ),
        "store contract `{C}`: advance_poll's answer"
    );
    assert_eq!(
        (g.company_last_polled_at, g.company_last_good_poll_at),
        (
            before.company_last_polled_at,
            before.company_last_good_poll_at
        ),
        "store contract `{C}`: advancing Google moved the company side"
    );
    let back = ok(
        C,
        "advance_poll",
        store
            .advance_poll(Side::Google, base + Duration::minutes(5))
            .await,
    );
    assert_eq!(
        back.google_last_polled_at,
        Some(base + Duration::minutes(10)),
        "store contract `{C}`: a poll time moved back"
    );
    let c = ok(
        C,
        "advance_poll",
        store
            .advance_poll(Side::Company, base + Duration::minutes(1))
            .await,
    );
    assert_eq!(
        (c.company_last_polled_at, c.google_last_polled_at),
        (
            Some(base + Duration::minutes(1)),
            Some(base + Duration::minutes(10))
        ),
        "store contract `{C}`: the company side"
    );
    assert_eq!(
        ok(C, "global", store.global().await),
        c,
        "store contract `{C}`: global() differs from advance_poll's answer"
    );
}

/// Two deliveries racing for one mapping's lease: exactly one wins (docs/INVARIANTS.md#the-lease). Several rounds,
/// so a store that only sometimes lets both through is caught.
pub async fn concurrent_leases_have_one_winner(store: &dyn MappingStore) {
    const C: &str = "concurrent_leases_have_one_winner";
    for round in 0..5 {
        let (m, _, _) = linked_mapping();
        insert(C, store, &m).await;
        let (a, b) = futures::join!(
            store.acquire_lease(&m.id, "a", t(10), t(0)),
            store.acquire_lease(&m.id, "b", t(10), t(0)),
        );
        let won = |r: &PortResult<LeaseOutcome>| matches!(r, Ok(LeaseOutcome::Acquired(_)));
        let held = |r: &PortResult<LeaseOutcome>| matches!(r, Err(PortError::LeaseHeld { .. }));
        assert!(
            (won(&a) && held(&b)) || (held(&a) && won(&b)),
            "store contract `{C}`: round {round}: not exactly one winner: {a:?} / {b:?}"
        );
        let winner = if won(&a) { "a" } else { "b" };
        assert_eq!(
            must_get(C, store, &m.id).await.lease.map(|l| l.holder),
            Some(winner.to_string()),
            "store contract `{C}`: round {round}: the stored lease is not the winner's"
        );
    }
}

/// Two polls racing to create one case's mapping: exactly one is Created (docs/INVARIANTS.md#one-counterpart), whether
/// they insert the same mapping or one from each side with the same keys.
pub async fn concurrent_inserts_have_one_winner(store: &dyn MappingStore) {
    const C: &str = "concurrent_inserts_have_one_winner";
    for round in 0..3 {
        let (m, _, _) = linked_mapping();
        let (a, b) = futures::join!(store.insert_new(&m), store.insert_new(&m));
        let outcomes = [ok(C, "insert_new", a), ok(C, "insert_new", b)];
        let created = outcomes
            .iter()
            .filter(|o| **o == InsertOutcome::Created)
            .count();
        assert_eq!(
            created, 1,
            "store contract `{C}`: round {round}: same mapping twice: {outcomes:?}"
        );
        assert!(
            outcomes.contains(&InsertOutcome::AlreadyMapped(m.id.clone())),
            "store contract `{C}`: round {round}: the loser's answer: {outcomes:?}"
        );

        // The same case seen from both sides at once: two ids, the same keys.
        let (g, number, company) = linked_mapping();
        let mut c = CaseMapping::from_company(&ckey(&company), Priority::P2, t(0));
        c.google_case_name = Some(format!("projects/contract/cases/{number}"));
        let (a, b) = futures::join!(store.insert_new(&g), store.insert_new(&c));
        let outcomes = [ok(C, "insert_new", a), ok(C, "insert_new", b)];
        let created = outcomes
            .iter()
            .filter(|o| **o == InsertOutcome::Created)
            .count();
        assert_eq!(
            created, 1,
            "store contract `{C}`: round {round}: both sides at once: {outcomes:?}"
        );
        let winner = if outcomes[0] == InsertOutcome::Created {
            &g
        } else {
            &c
        };
        let loser = if outcomes[0] == InsertOutcome::Created {
            &c
        } else {
            &g
        };
        assert_eq!(
            get(C, store, &loser.id).await,
            None,
            "store contract `{C}`: round {round}: the loser was written"
        );
        for found in [
            ok(
                C,
                "find_by_google",
                store.find_by_google(&gkey(&number)).await,
            ),
            ok(
                C,
                "find_by_company",
                store.find_by_company(&ckey(&company)).await,
            ),
        ] {
            assert_eq!(
                found.map(|f| f.id),
                Some(winner.id.clone()),
                "store contract `{C}`: round {round}: a key names the loser"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sqlite_store::SqliteStore;

    fn sqlite() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
        (dir, store)
    }

    /// One test per check, each on a fresh SQLite file, so a failure names its check.
    macro_rules! sqlite_contract_tests {
        ($($check:ident),* $(,)?) => {$(
            #[tokio::test]
            async fn $check() {
                let (_dir, store) = sqlite();
                super::$check(&store).await;
            }
        )*};
    }

    mod sqlite_store {
        use super::*;
        sqlite_contract_tests!(
            insert_and_find_by_either_key,
            a_full_mapping_round_trips,
            a_clashing_insert_is_already_mapped_and_writes_nothing,
            the_lease_is_exclusive_until_it_expires,
            save_synced_is_fenced_by_the_lease_holder,
            save_synced_links_new_keys_and_refuses_taken_ones,
            release_lease_only_by_its_holder,
            mark_pending_keeps_the_latest,
            clear_pending_only_clears_marks_set_before_the_sync_started,
            writers_keep_to_their_own_fields,
            writes_to_a_missing_mapping_create_nothing,
            list_open_excludes_resolved,
            delete_resolved_before_deletes_mappings_and_keys,
            poll_times_only_move_forward,
            concurrent_leases_have_one_winner,
            concurrent_inserts_have_one_winner,
        );
    }

    #[tokio::test]
    async fn every_check_is_listed_and_the_suite_shares_one_store() {
        assert_eq!(all_checks().len(), 17);
        // Twice on one store: the checks tolerate each other's data and their own reruns.
        let (_dir, store) = sqlite();
        run_all(&store).await;
        run_all(&store).await;
    }

    /// The suite must be able to fail: a store that forgets pending marks on save is caught.
    #[tokio::test]
    #[should_panic(expected = "writers_keep_to_their_own_fields")]
    async fn the_suite_catches_a_store_that_clobbers_pending_marks() {
        let (_dir, inner) = sqlite();
        let store = ClobberingStore(inner);
        writers_keep_to_their_own_fields(&store).await;
    }

    /// Wraps the SQLite store, but its save also clears pending marks, as a naive
    /// whole-document write would.
    struct ClobberingStore(SqliteStore);

    #[async_trait::async_trait]
    impl MappingStore for ClobberingStore {
        async fn find_by_google(&self, k: &GoogleCaseKey) -> PortResult<Option<CaseMapping>> {
            self.0.find_by_google(k).await
        }
        async fn find_by_company(&self, k: &CompanyCaseKey) -> PortResult<Option<CaseMapping>> {
            self.0.find_by_company(k).await
        }
        async fn get(&self, id: &str) -> PortResult<Option<CaseMapping>> {
            self.0.get(id).await
        }
        async fn insert_new(&self, m: &CaseMapping) -> PortResult<InsertOutcome> {
            self.0.insert_new(m).await
        }
        async fn acquire_lease(
            &self,
            id: &str,
            holder: &str,
            until: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> PortResult<LeaseOutcome> {
            self.0.acquire_lease(id, holder, until, now).await
        }
        async fn save_synced(&self, m: &CaseMapping, holder: &str) -> PortResult<()> {
            self.0.save_synced(m, holder).await?;
            self.0.clear_pending(&m.id, Side::Company, t(100_000)).await
        }
        async fn renew_lease(
            &self,
            id: &str,
            holder: &str,
            until: DateTime<Utc>,
        ) -> PortResult<()> {
            self.0.renew_lease(id, holder, until).await
        }
        async fn release_lease(&self, id: &str, holder: &str) -> PortResult<()> {
            self.0.release_lease(id, holder).await
        }
        async fn mark_pending(&self, id: &str, side: Side, at: DateTime<Utc>) -> PortResult<()> {
            self.0.mark_pending(id, side, at).await
        }
        async fn clear_pending(
            &self,
            id: &str,
            side: Side,
            started_at: DateTime<Utc>,
        ) -> PortResult<()> {
            self.0.clear_pending(id, side, started_at).await
        }
        async fn set_outage_flag(&self, id: &str, side: Side, sent: bool) -> PortResult<()> {
            self.0.set_outage_flag(id, side, sent).await
        }
        async fn list_open(&self) -> PortResult<Vec<CaseMapping>> {
            self.0.list_open().await
        }
        async fn delete_resolved_before(&self, c: DateTime<Utc>) -> PortResult<Vec<String>> {
            self.0.delete_resolved_before(c).await
        }
        async fn global(&self) -> PortResult<crate::domain::Global> {
            self.0.global().await
        }
        async fn advance_poll(
            &self,
            side: Side,
            at: DateTime<Utc>,
        ) -> PortResult<crate::domain::Global> {
            self.0.advance_poll(side, at).await
        }
    }
}
