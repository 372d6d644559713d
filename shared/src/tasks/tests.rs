//! One test per rule of docs/ARCHITECTURE.md#task-bodies, and the invariants of docs/INVARIANTS.md under injected faults, run on
//! the in-memory doubles, a manual clock and the real SQLite store.

use super::tolerance::{Freshness, tolerance};
use super::*;
use crate::adapters::sqlite_store::SqliteStore;
use crate::clock::ManualClock;
use crate::domain::markers;
use crate::domain::{CaseMapping, CompanyCaseKey, Direction, GoogleCaseKey, Priority, SyncState};
use crate::ports::LeaseOutcome;
use crate::testing::{Fault, MemoryCrm, MemorySupportApi, RecordingQueue};
use chrono::{DateTime, TimeZone, Utc};

const OWN: &str = "casesync@demo-project.iam.gserviceaccount.com";
const PARENT: &str = "projects/demo-project";

struct Harness {
    clock: ManualClock,
    google: Arc<MemorySupportApi>,
    crm: Arc<MemoryCrm>,
    store: Arc<SqliteStore>,
    queue: Arc<RecordingQueue>,
    engine: Engine,
    _dir: tempfile::TempDir,
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
}

impl Harness {
    fn new() -> Self {
        Self::with_settings(|_| {})
    }

    fn with_settings(adjust: impl FnOnce(&mut SyncSettings)) -> Self {
        let clock = ManualClock::new(start());
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("casesync.sqlite")).unwrap());
        let google = Arc::new(MemorySupportApi::new(Arc::new(clock.clone()), OWN));
        let crm = Arc::new(MemoryCrm::new(Arc::new(clock.clone())));
        let queue = Arc::new(RecordingQueue::default());
        let mut settings = SyncSettings::with_defaults(PARENT, OWN);
        settings.classification_id = "demo-classification".into();
        adjust(&mut settings);
        let engine = Engine {
            support: google.clone(),
            crm: crm.clone(),
            store: store.clone(),
            queue: queue.clone(),
            clock: Arc::new(clock.clone()),
            settings: Arc::new(settings),
        };
        Harness {
            clock,
            google,
            crm,
            store,
            queue,
            engine,
            _dir: dir,
        }
    }

    fn tick(&self, minutes: i64) {
        self.clock.advance(chrono::Duration::minutes(minutes));
    }

    /// Runs every queued sync until the queue is empty, retrying failed ones (as the
    /// subscription would) up to a bound; returns the errors seen.
    async fn drain(&self) -> Vec<TaskError> {
        let mut errors = Vec::new();
        for _ in 0..20 {
            let batch = self.queue.take();
            if batch.is_empty() {
                break;
            }
            for (direction, key) in batch {
                if let Err(e) = self.engine.sync(direction, &key).await {
                    if e.class() != crate::error::ErrorClass::Permanent {
                        self.queue.publish(direction, &key).await.unwrap();
                    }
                    errors.push(e);
                }
            }
        }
        errors
    }

    /// One poll of both sides and the syncs they enqueue.
    async fn cycle(&self) -> Vec<TaskError> {
        self.engine.poll_google().await.unwrap();
        self.engine.poll_company().await.unwrap();
        self.drain().await
    }

    async fn mapping_for_google(&self, name: &str) -> CaseMapping {
        let key = GoogleCaseKey::from_case_name(name).unwrap();
        self.store
            .find_by_google(&key)
            .await
            .unwrap()
            .expect("mapping")
    }

    async fn mapping_for_company(&self, id: &str) -> CaseMapping {
        let key = CompanyCaseKey::new(id).unwrap();
        self.store
            .find_by_company(&key)
            .await
            .unwrap()
            .expect("mapping")
    }

    fn google_case(&self, summary: &str) -> String {
        self.google
            .open_case_as_customer(PARENT, summary, "VM does not boot", Priority::P2, None)
            .name
    }

    /// A Google case fully synced to a new CRM case; returns (google name, CRM id).
    async fn linked_from_google(&self) -> (String, String) {
        let name = self.google_case("Broken VM");
        self.tick(1);
        assert!(self.cycle().await.is_empty());
        // casesync's own "now syncing" comment moved the case: one more sync sees that.
        self.tick(1);
        assert!(self.cycle().await.is_empty());
        let m = self.mapping_for_google(&name).await;
        (name, m.company_case_id.expect("linked"))
    }

    fn crm_comments(&self, id: &str) -> Vec<String> {
        self.crm
            .case(id)
            .unwrap()
            .comments
            .iter()
            .map(|c| c.body.clone())
            .collect()
    }

    fn google_comments(&self, name: &str) -> Vec<String> {
        self.google
            .case(name)
            .unwrap()
            .comments
            .iter()
            .map(|c| c.body.clone())
            .collect()
    }
}

fn count_with_prefix(bodies: &[String], prefix: &str) -> usize {
    bodies.iter().filter(|b| b.starts_with(prefix)).count()
}

// ---- poll rules ----------------------------------------------------------------------

#[tokio::test]
async fn cases_created_more_than_30_days_ago_are_never_picked_up() {
    let h = Harness::new();
    let old = h.google.open_case_as_customer(
        PARENT,
        "old",
        "d",
        Priority::P2,
        Some(start() - chrono::Duration::days(31)),
    );
    let young = h.google.open_case_as_customer(
        PARENT,
        "young",
        "d",
        Priority::P2,
        Some(start() - chrono::Duration::days(29)),
    );
    // Both were touched recently, so search returns both.
    h.google.comment_as_engineer(&old.name, "Eng", "ping");
    h.google.comment_as_engineer(&young.name, "Eng", "ping");
    let old_crm = h.crm.open_case_as_agent(
        "old",
        "d",
        Priority::P2,
        true,
        Some(start() - chrono::Duration::days(31)),
    );
    h.crm.comment_as_agent(&old_crm.id, "Agent", "ping");
    h.tick(1);
    h.cycle().await;
    let key = |n: &str| GoogleCaseKey::from_case_name(n).unwrap();
    assert!(
        h.store
            .find_by_google(&key(&old.name))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.store
            .find_by_google(&key(&young.name))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        h.store
            .find_by_company(&CompanyCaseKey::new(&old_crm.id).unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn polls_search_from_30_days_back_first_then_from_the_last_poll_minus_each_window() {
    let h = Harness::new();
    h.engine.poll_google().await.unwrap();
    h.engine.poll_company().await.unwrap();
    let first = start();
    h.tick(1);
    h.engine.poll_google().await.unwrap();
    h.engine.poll_company().await.unwrap();
    assert_eq!(
        h.google.searches(),
        vec![
            first - chrono::Duration::days(30),
            first - chrono::Duration::minutes(30)
        ]
    );
    assert_eq!(
        h.crm.searches(),
        vec![
            first - chrono::Duration::days(30),
            first - chrono::Duration::minutes(5)
        ]
    );
}

#[tokio::test]
async fn a_new_google_case_gets_a_mapping_with_the_seed_field_values() {
    let h = Harness::new();
    let case = h
        .google
        .open_case_as_customer(PARENT, "t", "d", Priority::P1, None);
    h.tick(1);
    h.engine.poll_google().await.unwrap();
    let m = h.mapping_for_google(&case.name).await;
    assert_eq!(m.google_case_name.as_deref(), Some(case.name.as_str()));
    assert_eq!(m.company_case_id, None);
    assert_eq!(m.company_updates_synced_at, Some(h.clock.now()));
    assert_eq!(m.google_updates_synced_at, None);
    assert_eq!(m.priority, Priority::P1);
    assert_eq!(m.resolved_at, None);
    assert!(!m.outage_comment_sent_to_google && !m.outage_comment_sent_to_company);
    assert_eq!(
        h.queue.peek(),
        vec![(
            Direction::GoogleToCompany,
            GoogleCaseKey::from_case_name(&case.name)
                .unwrap()
                .to_string()
        )]
    );
}

#[tokio::test]
async fn a_new_flagged_crm_case_gets_a_mapping_with_the_mirrored_field_values() {
    let h = Harness::new();
    let unflagged = h
        .crm
        .open_case_as_agent("quiet", "d", Priority::P3, false, None);
    let c = h
        .crm
        .open_case_as_agent("loud", "d", Priority::P3, true, None);
    h.tick(1);
    h.engine.poll_company().await.unwrap();
    let m = h.mapping_for_company(&c.id).await;
    assert_eq!(m.company_case_id.as_deref(), Some(c.id.as_str()));
    assert_eq!(m.google_case_name, None);
    assert_eq!(m.google_updates_synced_at, Some(h.clock.now()));
    assert_eq!(m.company_updates_synced_at, None);
    assert_eq!(m.priority, Priority::P3);
    assert!(
        h.store
            .find_by_company(&CompanyCaseKey::new(&unflagged.id).unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        h.queue.peek(),
        vec![(Direction::CompanyToGoogle, c.id.clone())]
    );
}

#[tokio::test]
async fn idle_open_mappings_count_as_synced_as_of_the_last_good_poll_without_being_written() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    h.tick(30);
    let writes = h.store.write_count();
    h.engine.poll_google().await.unwrap();
    h.engine.poll_company().await.unwrap();
    assert_eq!(
        h.store.write_count() - writes,
        2,
        "one Global write per idle poll"
    );
    assert!(
        h.queue.peek().is_empty(),
        "an unchanged case is not re-synced"
    );
    let m = h.mapping_for_google(&name).await;
    let g = h.store.global().await.unwrap();
    assert_eq!(
        m.effective_synced_at(crate::domain::Side::Google, g.google_last_good_poll_at),
        h.clock.now()
    );
    assert_eq!(
        m.effective_synced_at(crate::domain::Side::Company, g.company_last_good_poll_at),
        h.clock.now()
    );
    assert!(m.google_updates_synced_at.unwrap() < h.clock.now());
    let _ = id;
}

#[tokio::test]
async fn global_poll_times_move_forward_only_on_success() {
    let h = Harness::new();
    h.engine.poll_google().await.unwrap();
    let first = h.clock.now();
    h.tick(1);
    h.google.faults.fail_next("cases.search", 1);
    assert!(h.engine.poll_google().await.is_err());
    let g = h.store.global().await.unwrap();
    assert_eq!(g.google_last_polled_at, Some(first));
    assert_eq!(g.google_last_good_poll_at, Some(first));
    assert_eq!(g.company_last_polled_at, None);
    h.engine.poll_google().await.unwrap();
    h.engine.poll_company().await.unwrap();
    let g = h.store.global().await.unwrap();
    assert_eq!(g.google_last_polled_at, Some(h.clock.now()));
    assert_eq!(g.company_last_good_poll_at, Some(h.clock.now()));
}

// ---- sync rules ----------------------------------------------------------------------

#[tokio::test]
async fn an_existing_crm_case_naming_the_google_case_is_linked_instead_of_creating_one() {
    let h = Harness::new();
    let name = h.google_case("t");
    let existing = h
        .crm
        .open_case_as_agent("made by hand", "d", Priority::P2, true, None);
    h.crm
        .set_google_case_name(&existing.id, &name)
        .await
        .unwrap();
    h.tick(1);
    h.engine.poll_google().await.unwrap();
    assert!(h.drain().await.is_empty());
    assert_eq!(h.crm.cases().len(), 1, "no second CRM case");
    assert_eq!(
        h.mapping_for_google(&name).await.company_case_id,
        Some(existing.id)
    );
}

#[tokio::test]
async fn a_google_case_gets_one_crm_case_with_the_mirrored_fields_and_one_now_syncing_comment() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    let crm = h.crm.case(&id).unwrap().case;
    assert_eq!(crm.summary, "Broken VM");
    assert!(
        crm.description
            .starts_with("CONTENT MIRRORED FROM GOOGLE SUPPORT:\nVM does not boot")
    );
    assert!(
        crm.description.contains("10000001"),
        "links the Google case"
    );
    assert_eq!(crm.google_case_name.as_deref(), Some(name.as_str()));
    assert_eq!(crm.priority, Some(Priority::P2));
    let now_syncing = markers::now_syncing_comment(&id);
    assert_eq!(h.google_comments(&name), vec![now_syncing.clone()]);
    // More cycles, with activity, never repeat it.
    h.google.comment_as_engineer(&name, "Eng", "hello");
    h.tick(1);
    h.cycle().await;
    assert_eq!(
        h.google_comments(&name)
            .iter()
            .filter(|b| **b == now_syncing)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_flagged_crm_case_gets_one_google_case_naming_it_on_its_last_line() {
    let h = Harness::new();
    let c = h
        .crm
        .open_case_as_agent("Printer on fire", "Really", Priority::P1, true, None);
    h.tick(1);
    assert!(h.cycle().await.is_empty());
    let m = h.mapping_for_company(&c.id).await;
    let g = h
        .google
        .case(m.google_case_name.as_deref().unwrap())
        .unwrap()
        .case;
    assert_eq!(g.display_name, "Printer on fire");
    assert_eq!(g.priority, Priority::P1);
    assert_eq!(g.creator.email.as_deref(), Some(OWN));
    assert!(
        g.description
            .ends_with(&markers::description_line("memory", &c.id))
    );
    assert_eq!(
        h.crm.case(&c.id).unwrap().case.google_case_name.as_deref(),
        Some(g.name.as_str())
    );
    // poll-google sees the new case and never treats it as new.
    h.tick(1);
    h.cycle().await;
    assert_eq!(h.google.cases().len(), 1);
    assert_eq!(h.crm.cases().len(), 1);
}

#[tokio::test]
async fn comments_are_mirrored_both_ways_once_with_the_exact_prefixes() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    let g = h
        .google
        .comment_as_engineer(&name, "Ann [GCP]", "first line\nsecond line");
    let c = h.crm.comment_as_agent(&id, "Bob", "from the company");
    h.tick(1);
    assert!(h.cycle().await.is_empty());
    h.tick(1);
    h.cycle().await;
    let gnum = g.name.rsplit('/').next().unwrap();
    assert_eq!(
        count_with_prefix(
            &h.crm_comments(&id),
            &format!("[Google Comment {gnum} by Ann (GCP)]\nfirst line\nsecond line")
        ),
        1
    );
    assert_eq!(
        count_with_prefix(
            &h.google_comments(&name),
            &format!("[Company Comment {} by Bob]\nfrom the company", c.id)
        ),
        1
    );
    // No echo: the mirrors are not mirrored back.
    assert_eq!(
        count_with_prefix(&h.google_comments(&name), "[Google Comment"),
        0
    );
    assert_eq!(
        count_with_prefix(&h.crm_comments(&id), "[Company Comment"),
        0
    );
}

#[tokio::test]
async fn a_comment_longer_than_the_api_allows_arrives_in_marked_parts() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    let body = "x".repeat(30_000);
    let c = h.crm.comment_as_agent(&id, "Bob", &body);
    h.tick(1);
    assert!(h.cycle().await.is_empty());
    let parts: Vec<String> = h
        .google_comments(&name)
        .into_iter()
        .filter(|b| b.starts_with("[Company Comment"))
        .collect();
    assert_eq!(parts.len(), 3);
    assert!(parts[0].starts_with(&format!("[Company Comment {} by Bob] (part 1/3)\n", c.id)));
    let joined: String = parts
        .iter()
        .map(|p| p.split_once('\n').unwrap().1)
        .collect();
    assert_eq!(joined, body);
}

#[tokio::test]
async fn attachments_are_copied_both_ways_once_with_bytes_and_names() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    h.google
        .attach_as_engineer(&name, "Eng", "trace.log", b"google bytes");
    h.crm
        .attach_as_agent(&id, "Bob", "screenshot.png", b"\x89PNG crm bytes");
    h.tick(1);
    assert!(h.cycle().await.is_empty());
    h.tick(1);
    h.cycle().await;
    let crm_files: Vec<(String, Vec<u8>)> = h
        .crm
        .case(&id)
        .unwrap()
        .attachments
        .into_iter()
        .map(|(a, d)| (a.filename, d))
        .collect();
    let google_files: Vec<(String, Vec<u8>)> = h
        .google
        .case(&name)
        .unwrap()
        .attachments
        .into_iter()
        .map(|(a, d)| (a.filename, d))
        .collect();
    assert_eq!(
        crm_files,
        vec![
            ("screenshot.png".to_string(), b"\x89PNG crm bytes".to_vec()),
            ("trace.log".to_string(), b"google bytes".to_vec())
        ]
    );
    assert_eq!(
        google_files,
        vec![
            ("trace.log".to_string(), b"google bytes".to_vec()),
            ("screenshot.png".to_string(), b"\x89PNG crm bytes".to_vec())
        ]
    );
}

#[tokio::test]
async fn an_attachment_over_the_limit_is_not_copied_but_announced_once() {
    let h = Harness::with_settings(|s| s.max_attachment_bytes = 10);
    let (name, id) = h.linked_from_google().await;
    let a = h
        .google
        .attach_as_engineer(&name, "Eng", "huge.bin", &[0u8; 11]);
    h.tick(1);
    assert!(h.cycle().await.is_empty());
    h.google.comment_as_engineer(&name, "Eng", "poke");
    h.tick(1);
    h.cycle().await;
    assert!(h.crm.case(&id).unwrap().attachments.is_empty());
    let anum = a.name.rsplit('/').next().unwrap();
    let notes = count_with_prefix(
        &h.crm_comments(&id),
        &format!("[Google Attachment {anum} by Eng]\nThe attachment \"huge.bin\""),
    );
    assert_eq!(notes, 1);
}

#[tokio::test]
async fn priority_changes_flow_both_ways_and_a_conflict_goes_to_the_configured_side() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    h.google.set_priority_as_google(&name, Priority::P0);
    h.tick(1);
    h.cycle().await;
    assert_eq!(h.crm.case(&id).unwrap().case.priority, Some(Priority::P0));
    h.crm.set_priority_as_agent(&id, Priority::P3);
    h.tick(1);
    h.cycle().await;
    assert_eq!(h.google.case(&name).unwrap().case.priority, Priority::P3);
    // Both change: Google wins by default.
    h.google.set_priority_as_google(&name, Priority::P1);
    h.crm.set_priority_as_agent(&id, Priority::P4);
    h.tick(1);
    h.cycle().await;
    assert_eq!(h.google.case(&name).unwrap().case.priority, Priority::P1);
    assert_eq!(h.crm.case(&id).unwrap().case.priority, Some(Priority::P1));
    assert_eq!(h.mapping_for_google(&name).await.priority, Priority::P1);
}

#[tokio::test]
async fn closing_on_google_closes_the_crm_case_and_sets_resolved_at() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    h.google.comment_as_engineer(&name, "Eng", "last words");
    h.google.close_as_google(&name);
    // What the CRM case held when casesync closed it.
    let at_close = Arc::new(std::sync::Mutex::new(None));
    {
        let (crm, at_close, id) = (h.crm.clone(), at_close.clone(), id.clone());
        h.crm.faults.before_call("close_case", 1, move || {
            *at_close.lock().unwrap() = Some(crm.case(&id).unwrap().comments.len());
        });
    }
    h.tick(1);
    h.cycle().await;
    let crm = h.crm.case(&id).unwrap();
    assert!(crm.case.closed);
    assert_eq!(
        *at_close.lock().unwrap(),
        Some(crm.comments.len()),
        "every comment was mirrored before the close"
    );
    assert_eq!(
        count_with_prefix(
            &crm.comments
                .iter()
                .map(|c| c.body.clone())
                .collect::<Vec<_>>(),
            "[Google Comment"
        ),
        1,
        "comments first, close last"
    );
    let m = h.mapping_for_google(&name).await;
    assert!(m.resolved_at.is_some());
}

#[tokio::test]
async fn closing_in_the_crm_closes_the_google_case_and_sets_resolved_at() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    h.crm.set_closed_as_agent(&id, true);
    h.tick(1);
    h.cycle().await;
    assert!(h.google.case(&name).unwrap().case.closed);
    assert_eq!(
        h.mapping_for_google(&name).await.resolved_at,
        Some(h.clock.now())
    );
    // Reopening in the CRM cannot reopen Google: the CRM case is told, once.
    h.crm.set_closed_as_agent(&id, false);
    h.tick(1);
    h.cycle().await;
    h.crm.comment_as_agent(&id, "Bob", "hello?");
    h.tick(1);
    h.cycle().await;
    let notices = h
        .crm_comments(&id)
        .iter()
        .filter(|b| b.contains("is closed and cannot be reopened"))
        .count();
    assert_eq!(notices, 1);
}

#[tokio::test]
async fn a_case_already_closed_when_first_seen_is_created_mirrored_then_closed() {
    let h = Harness::new();
    let name = h.google_case("t");
    h.google.comment_as_engineer(&name, "Eng", "history");
    h.google.close_as_google(&name);
    h.tick(1);
    h.cycle().await;
    let id = h.mapping_for_google(&name).await.company_case_id.unwrap();
    let crm = h.crm.case(&id).unwrap();
    assert!(crm.case.closed);
    assert_eq!(
        count_with_prefix(
            &crm.comments
                .iter()
                .map(|c| c.body.clone())
                .collect::<Vec<_>>(),
            "[Google Comment"
        ),
        1
    );
}

#[tokio::test]
async fn removing_the_crm_flag_pauses_the_mapping_and_setting_it_resumes() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    h.crm.set_flag_as_agent(&id, false);
    h.google.comment_as_engineer(&name, "Eng", "while paused");
    h.tick(1);
    h.cycle().await;
    assert_eq!(
        h.mapping_for_google(&name).await.sync_state,
        SyncState::Paused
    );
    assert_eq!(
        count_with_prefix(&h.crm_comments(&id), "[Google Comment"),
        0
    );
    h.crm.set_flag_as_agent(&id, true);
    h.tick(1);
    h.cycle().await;
    assert_eq!(
        h.mapping_for_google(&name).await.sync_state,
        SyncState::Active
    );
    h.google.comment_as_engineer(&name, "Eng", "after resume");
    h.tick(1);
    h.cycle().await;
    assert_eq!(
        count_with_prefix(&h.crm_comments(&id), "[Google Comment"),
        2
    );
}

#[tokio::test]
async fn a_404_makes_a_mapping_suspect_and_only_repeated_404s_over_hours_unlink_it() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    // A brief permission change: the CRM answers 404 once.
    h.crm.faults.plan(
        "get_case",
        1,
        Fault::Fail(PortError::NotFound {
            operation: "get_case".into(),
            what: id.clone(),
        }),
    );
    h.google.comment_as_engineer(&name, "Eng", "anyone?");
    h.tick(1);
    assert!(
        h.cycle().await.is_empty(),
        "no error, so nothing is retried or dead-lettered"
    );
    assert!(matches!(
        h.mapping_for_google(&name).await.sync_state,
        SyncState::Suspect { checks: 1, .. }
    ));
    // It answers again: relinked, and what waited is mirrored.
    h.tick(1);
    h.engine.detect_outages().await.unwrap();
    h.tick(60);
    h.engine.detect_outages().await.unwrap();
    assert!(h.drain().await.is_empty());
    assert_eq!(
        h.mapping_for_google(&name).await.sync_state,
        SyncState::Active
    );
    assert!(h.crm_comments(&id).iter().any(|b| b.ends_with("\nanyone?")));

    // Gone for good: suspect, re-checked hourly, unlinked after 3 checks spanning 6 h.
    h.crm.delete_case(&id);
    h.google.comment_as_engineer(&name, "Eng", "hello?");
    h.tick(1);
    assert!(h.cycle().await.is_empty());
    for _ in 0..7 {
        assert!(
            h.engine.detect_outages().await.is_ok(),
            "a suspect mapping is not an outage"
        );
        assert!(h.drain().await.is_empty());
        h.tick(60);
    }
    assert!(matches!(
        h.mapping_for_google(&name).await.sync_state,
        SyncState::Unlinked { .. }
    ));
    assert!(h.engine.detect_outages().await.is_ok());
    // Unlinked mappings are not re-checked by the scan; only activity re-checks them.
    h.tick(120);
    let report = h.engine.detect_outages().await.unwrap();
    assert_eq!(report.requeued, 0);
    assert_eq!(report.unlinked.len(), 1);

    // After sync.abandon_after without a successful sync it is resolved, then cleaned up.
    h.tick(31 * 24 * 60);
    let report = h.engine.detect_outages().await.unwrap();
    assert_eq!(report.abandoned.len(), 1);
    assert!(h.mapping_for_google(&name).await.resolved_at.is_some());
}

#[test]
fn every_cell_of_the_tolerance_table() {
    use Freshness::*;
    use Priority::*;
    let table = [
        (P0, [10, 10, 15]),
        (P1, [10, 15, 60]),
        (P2, [10, 20, 120]),
        (P3, [10, 20, 240]),
        (P4, [10, 30, 240]),
    ];
    for (p, minutes) in table {
        for (f, m) in [Fresh, Recent, Stale].into_iter().zip(minutes) {
            assert_eq!(tolerance(p, f), chrono::Duration::minutes(m), "{p} {f:?}");
        }
    }
    assert_eq!(Freshness::of_age(chrono::Duration::minutes(59)), Fresh);
    assert_eq!(Freshness::of_age(chrono::Duration::hours(1)), Recent);
    assert_eq!(Freshness::of_age(chrono::Duration::hours(23)), Recent);
    assert_eq!(Freshness::of_age(chrono::Duration::hours(24)), Stale);
}

/// A linked mapping at priority `p` whose content is `age` old and whose Google side last
/// synced `lag` ago with a sync still pending: does detect-outages call it an outage?
async fn outage_at(p: Priority, age: chrono::Duration, lag: chrono::Duration) -> bool {
    let h = Harness::new();
    let (name, _) = h.linked_from_google().await;
    h.tick(24 * 60 * 3);
    let now = h.clock.now();
    let m = h.mapping_for_google(&name).await;
    let LeaseOutcome::Acquired(m) = h
        .store
        .acquire_lease(&m.id, "test", now + chrono::Duration::minutes(1), now)
        .await
        .unwrap()
    else {
        panic!("mapping missing")
    };
    let mut m = *m;
    m.priority = p;
    m.new_content_at = Some(now - age);
    m.google_updates_synced_at = Some(now - lag);
    m.company_updates_synced_at = Some(now);
    h.store.save_synced(&m, "test").await.unwrap();
    h.store.release_lease(&m.id, "test").await.unwrap();
    // The Google side has a sync pending since then, so the last good poll does not count.
    h.store
        .mark_pending(&m.id, crate::domain::Side::Google, now - lag)
        .await
        .unwrap();
    h.engine.detect_outages().await.is_err()
}

/// The 15 cells of docs/ARCHITECTURE.md#the-tolerance-table, written out, each checked one minute inside and one
/// minute past its tolerance, at both ends of each freshness bucket.
#[tokio::test]
async fn detect_outages_applies_the_table_by_priority_and_freshness() {
    use Priority::*;
    use chrono::Duration as D;
    // (priority, content age, tolerance in minutes)
    let cells = [
        (P0, D::zero(), 10),
        (P0, D::minutes(59), 10),
        (P0, D::hours(1), 10),
        (P0, D::minutes(24 * 60 - 1), 10),
        (P0, D::hours(24), 15),
        (P1, D::zero(), 10),
        (P1, D::hours(1), 15),
        (P1, D::minutes(24 * 60 - 1), 15),
        (P1, D::hours(24), 60),
        (P2, D::minutes(59), 10),
        (P2, D::hours(1), 20),
        (P2, D::hours(24), 120),
        (P3, D::zero(), 10),
        (P3, D::hours(1), 20),
        (P3, D::hours(30), 240),
        (P4, D::minutes(59), 10),
        (P4, D::hours(1), 30),
        (P4, D::minutes(24 * 60 - 1), 30),
        (P4, D::hours(24), 240),
    ];
    for (p, age, minutes) in cells {
        assert!(
            !outage_at(p, age, D::minutes(minutes - 1)).await,
            "{p} at age {age}: {} minutes is within the tolerance",
            minutes - 1
        );
        assert!(
            outage_at(p, age, D::minutes(minutes + 1)).await,
            "{p} at age {age}: {} minutes is past the tolerance",
            minutes + 1
        );
    }
}

#[tokio::test]
async fn an_outage_is_announced_once_per_side_and_its_end_once_per_side() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    // The CRM goes down: polls of it fail, so its side stops counting as synced.
    h.crm.faults.fail_next("search", 1000);
    for _ in 0..4 {
        h.tick(5);
        let _ = h.engine.poll_company().await;
        let _ = h.engine.poll_google().await;
        let _ = h.engine.detect_outages().await;
    }
    let outage_prefix = "This case has not synced properly in ";
    assert_eq!(
        count_with_prefix(&h.google_comments(&name), outage_prefix),
        1
    );
    assert_eq!(count_with_prefix(&h.crm_comments(&id), outage_prefix), 1);
    let m = h.mapping_for_google(&name).await;
    assert!(m.outage_comment_sent_to_google && m.outage_comment_sent_to_company);
    // The CRM is back: a good poll of it, and the lagging syncs run.
    h.crm.faults.clear();
    h.tick(1);
    h.cycle().await;
    h.engine.detect_outages().await.unwrap();
    h.engine.detect_outages().await.unwrap();
    assert_eq!(
        count_with_prefix(&h.google_comments(&name), markers::RESUMED_COMMENT),
        1
    );
    assert_eq!(
        count_with_prefix(&h.crm_comments(&id), markers::RESUMED_COMMENT),
        1
    );
    let m = h.mapping_for_google(&name).await;
    assert!(!m.outage_comment_sent_to_google && !m.outage_comment_sent_to_company);
}

#[tokio::test]
async fn detect_outages_fails_while_an_outage_lasts_and_requeues_the_lagging_case() {
    let h = Harness::new();
    let (name, _) = h.linked_from_google().await;
    h.engine.detect_outages().await.unwrap();
    h.google.faults.fail_next("cases.search", 1000);
    h.tick(20);
    let _ = h.engine.poll_google().await;
    h.engine.poll_company().await.unwrap();
    let err = h.engine.detect_outages().await.unwrap_err();
    assert!(matches!(err, TaskError::OutageDetected { lagging: 1, .. }));
    assert_eq!(
        err.class(),
        crate::error::ErrorClass::Retryable,
        "answers 5xx"
    );
    let key = GoogleCaseKey::from_case_name(&name).unwrap().to_string();
    assert!(h.queue.take().contains(&(Direction::GoogleToCompany, key)));
}

#[tokio::test]
async fn cleanup_deletes_mappings_resolved_more_than_30_days_ago() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    let (open_name, _) = h.linked_from_google().await;
    h.google.close_as_google(&name);
    h.tick(1);
    h.cycle().await;
    h.tick(60 * 24 * 29);
    assert!(
        h.engine
            .cleanup_case_mappings()
            .await
            .unwrap()
            .deleted
            .is_empty()
    );
    h.tick(60 * 24 + 1);
    let report = h.engine.cleanup_case_mappings().await.unwrap();
    assert_eq!(report.deleted.len(), 1);
    assert!(
        h.store
            .find_by_google(&GoogleCaseKey::from_case_name(&name).unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.store
            .find_by_company(&CompanyCaseKey::new(&id).unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.store
            .find_by_google(&GoogleCaseKey::from_case_name(&open_name).unwrap())
            .await
            .unwrap()
            .is_some()
    );
}

// ---- invariants (docs/INVARIANTS.md) under injected faults -------------------------------------------------

#[tokio::test]
async fn a_lost_reply_on_crm_create_never_makes_a_second_crm_case() {
    let h = Harness::new();
    let name = h.google_case("t");
    h.crm.faults.lose_next_reply("create_case");
    h.tick(1);
    let errors = h.cycle().await;
    assert!(
        !errors.is_empty(),
        "the lost reply surfaced as a retryable error"
    );
    h.tick(1);
    h.cycle().await;
    assert_eq!(h.crm.cases().len(), 1);
    assert!(h.mapping_for_google(&name).await.company_case_id.is_some());
}

#[tokio::test]
async fn a_lost_reply_on_google_create_never_makes_a_second_google_case() {
    let h = Harness::new();
    let c = h.crm.open_case_as_agent("t", "d", Priority::P2, true, None);
    h.google.faults.lose_next_reply("cases.create");
    h.tick(1);
    assert!(!h.cycle().await.is_empty());
    for _ in 0..3 {
        h.tick(1);
        h.cycle().await;
    }
    assert_eq!(h.google.cases().len(), 1);
    assert!(
        h.mapping_for_company(&c.id)
            .await
            .google_case_name
            .is_some()
    );
}

#[tokio::test]
async fn when_search_has_not_caught_up_a_create_is_retried_later_not_repeated() {
    let h = Harness::new();
    let c = h.crm.open_case_as_agent("t", "d", Priority::P2, true, None);
    // The create takes effect but its reply is lost, and search lags 5 minutes behind.
    h.google.faults.lose_next_reply("cases.create");
    h.google.set_search_lag(chrono::Duration::minutes(5));
    h.tick(1);
    h.engine.poll_company().await.unwrap();
    let err = h.drain().await;
    assert!(!err.is_empty());
    assert_eq!(h.google.cases().len(), 1);
    let m = h.mapping_for_company(&c.id).await;
    assert!(m.google_create_intent_at.is_some());
    assert_eq!(m.google_case_name, None, "search did not show it yet");
    // Minutes later, still inside the lookup lag, search shows it: it is linked, not
    // created again.
    h.tick(6);
    h.engine.sync_company_to_google(&c.id).await.unwrap();
    assert_eq!(h.google.cases().len(), 1);
    let m = h.mapping_for_company(&c.id).await;
    assert_eq!(
        m.google_case_name.as_deref(),
        Some(h.google.cases()[0].case.name.as_str())
    );
}

#[tokio::test]
async fn lost_replies_on_comments_and_uploads_never_double_a_mirror() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    h.google.comment_as_engineer(&name, "Eng", "g1");
    h.crm.comment_as_agent(&id, "Bob", "c1");
    h.google.attach_as_engineer(&name, "Eng", "a.txt", b"aaa");
    h.crm.attach_as_agent(&id, "Bob", "b.txt", b"bbb");
    h.crm.faults.lose_next_reply("add_comment");
    h.google.faults.lose_next_reply("cases.comments.create");
    h.crm.faults.lose_next_reply("upload_attachment");
    h.google.faults.lose_next_reply("media.upload");
    for _ in 0..3 {
        h.tick(1);
        h.cycle().await;
    }
    assert_eq!(
        count_with_prefix(&h.crm_comments(&id), "[Google Comment"),
        1
    );
    assert_eq!(
        count_with_prefix(&h.google_comments(&name), "[Company Comment"),
        1
    );
    assert_eq!(h.crm.case(&id).unwrap().attachments.len(), 2);
    assert_eq!(h.google.case(&name).unwrap().attachments.len(), 2);
}

#[tokio::test]
async fn failed_calls_are_retried_until_everything_is_mirrored_once() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    for i in 0..3 {
        h.google.comment_as_engineer(&name, "Eng", &format!("g{i}"));
        h.crm.comment_as_agent(&id, "Bob", &format!("c{i}"));
    }
    h.crm.faults.plan(
        "add_comment",
        2,
        Fault::Fail(crate::PortError::retryable("add_comment", "boom")),
    );
    h.google.faults.plan(
        "cases.comments.create",
        3,
        Fault::Fail(crate::PortError::retryable("create", "boom")),
    );
    h.google.faults.fail_next("cases.get", 1);
    for _ in 0..3 {
        h.tick(1);
        h.cycle().await;
    }
    assert_eq!(
        count_with_prefix(&h.crm_comments(&id), "[Google Comment"),
        3
    );
    assert_eq!(
        count_with_prefix(&h.google_comments(&name), "[Company Comment"),
        3
    );
}

#[tokio::test]
async fn duplicate_deliveries_mirror_each_item_once() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    h.google.comment_as_engineer(&name, "Eng", "once");
    h.tick(1);
    let key = name.rsplit('/').next().unwrap().to_string();
    h.engine.sync_google_to_company(&key).await.unwrap();
    h.engine.sync_google_to_company(&key).await.unwrap();
    assert_eq!(
        count_with_prefix(&h.crm_comments(&id), "[Google Comment"),
        1
    );
}

#[tokio::test]
async fn concurrent_deliveries_of_one_case_mirror_each_item_once() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    h.google.comment_as_engineer(&name, "Eng", "once");
    h.google.attach_as_engineer(&name, "Eng", "f.txt", b"f");
    h.tick(1);
    let key = name.rsplit('/').next().unwrap().to_string();
    let (a, b) = tokio::join!(
        h.engine.sync_google_to_company(&key),
        h.engine.sync_google_to_company(&key)
    );
    // The doubles yield at every call, so the two really overlap: the second finds the
    // first's lease and answers retryable; its retry then finds nothing new.
    let held = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(TaskError::Port(PortError::LeaseHeld { .. }))))
        .count();
    assert_eq!(held, 1, "the deliveries did not contend: {a:?} {b:?}");
    for r in [a, b] {
        if let Err(e) = r {
            assert_eq!(e.class(), crate::error::ErrorClass::Retryable);
            h.engine.sync_google_to_company(&key).await.unwrap();
        }
    }
    assert_eq!(
        count_with_prefix(&h.crm_comments(&id), "[Google Comment"),
        1
    );
    assert_eq!(h.crm.case(&id).unwrap().attachments.len(), 1);
}

#[tokio::test]
async fn a_live_lease_makes_a_second_delivery_retry() {
    let h = Harness::new();
    let (name, _) = h.linked_from_google().await;
    let m = h.mapping_for_google(&name).await;
    let until = h.clock.now() + chrono::Duration::minutes(5);
    h.store
        .acquire_lease(&m.id, "someone-else", until, h.clock.now())
        .await
        .unwrap();
    let key = name.rsplit('/').next().unwrap().to_string();
    let err = h.engine.sync_google_to_company(&key).await.unwrap_err();
    assert_eq!(err.class(), crate::error::ErrorClass::Retryable);
    h.tick(6);
    h.engine.sync_google_to_company(&key).await.unwrap();
}

#[tokio::test]
async fn a_person_imitating_a_marker_does_not_suppress_a_sync() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    let real = h.google.comment_as_engineer(&name, "Eng", "the real one");
    let num = real.name.rsplit('/').next().unwrap();
    // Someone types the marker the mirror would carry into the CRM by hand.
    h.crm.comment_as_agent(
        &id,
        "Mallory",
        &format!("[Google Comment {num} by Eng]\nthe real one"),
    );
    h.tick(1);
    h.cycle().await;
    let bodies = h.crm_comments(&id);
    let by_casesync: Vec<_> = h
        .crm
        .case(&id)
        .unwrap()
        .comments
        .into_iter()
        .filter(|c| c.by_connector)
        .map(|c| c.body)
        .collect();
    assert_eq!(
        count_with_prefix(&by_casesync, &format!("[Google Comment {num} by Eng]")),
        1
    );
    assert_eq!(
        count_with_prefix(&bodies, &format!("[Google Comment {num} by Eng]")),
        2
    );
    // And the imitation is itself a person's comment, mirrored to Google with its own marker.
    assert_eq!(
        count_with_prefix(&h.google_comments(&name), "[Company Comment"),
        1
    );
}

// ---- invariant 7: bounded work ------------------------------------------------------------

#[tokio::test]
async fn a_poll_over_1000_idle_open_mappings_writes_a_bounded_number_of_documents() {
    let h = Harness::new();
    for i in 0..1000 {
        let key = CompanyCaseKey::new(&format!("idle-{i}")).unwrap();
        let mut m = CaseMapping::from_company(&key, Priority::P2, h.clock.now());
        m.google_case_name = Some(format!("{PARENT}/cases/{}", 20_000_000 + i));
        m.google_updates_synced_at = Some(h.clock.now());
        m.company_updates_synced_at = Some(h.clock.now());
        h.store.insert_new(&m).await.unwrap();
    }
    let (name, _) = h.linked_from_google().await;
    h.google.comment_as_engineer(&name, "Eng", "one busy case");
    h.tick(30);
    let before = h.store.write_count();
    h.engine.poll_google().await.unwrap();
    h.engine.poll_company().await.unwrap();
    let writes = h.store.write_count() - before;
    assert!(
        writes <= 3,
        "{writes} writes: one pending mark for the busy case and one Global per poll"
    );
    // The outage scan still sees the idle mappings as synced (derived from the good polls).
    h.drain().await;
    h.engine.detect_outages().await.unwrap();
    // …and, with Google polls failing, sees every one of them lag (bounded cost keeps the tolerance table).
    h.google.faults.fail_next("cases.search", 10);
    h.tick(20);
    let _ = h.engine.poll_google().await;
    h.engine.poll_company().await.unwrap();
    match h.engine.detect_outages().await {
        Err(TaskError::OutageDetected { lagging, report }) => {
            assert_eq!(lagging, 1001);
            assert_eq!(
                report.requeued, h.engine.settings.outage_requeue_batch,
                "requeues in bounded batches"
            );
        }
        other => panic!("expected an outage, got {other:?}"),
    }
}

mod convergence;
