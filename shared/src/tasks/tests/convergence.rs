//! The failure paths of "every case converges": each test drives the engine into a state
//! where a case stopped syncing before the fix, and checks that it converges now.

use super::*;
use chrono::Duration;

fn ms(n: i64) -> Duration {
    Duration::milliseconds(n)
}

// ---- the skip rule never loses a change -------------------------------------------

/// RT's `LastUpdated` has whole seconds: a person resolving a ticket in the same second as
/// casesync's last read of it leaves the update time unchanged. Before the fix poll-company
/// skipped the ticket for good and the close never reached Google.
#[tokio::test]
async fn a_close_in_the_same_second_as_the_last_read_still_reaches_google() {
    let h = Harness::new();
    h.crm.use_whole_second_update_times();
    let c = h
        .crm
        .open_case_as_agent("Disk full", "d", Priority::P2, true, None);
    h.tick(1);
    h.cycle().await;
    h.tick(1);
    h.cycle().await;
    let name = h
        .mapping_for_company(&c.id)
        .await
        .google_case_name
        .expect("linked");

    // 09:03:00.200 a comment; 09:03:00.300 casesync reads the ticket and syncs it;
    // 09:03:00.700 the person resolves it: the update time stays 09:03:00.
    h.clock.set(start() + Duration::minutes(3) + ms(200));
    h.crm.comment_as_agent(&c.id, "Agent", "looking");
    h.clock.advance(ms(100));
    h.engine.poll_company().await.unwrap();
    assert!(h.drain().await.is_empty());
    let before = h.crm.case(&c.id).unwrap().case.updated_at;
    h.clock.advance(ms(400));
    h.crm.set_closed_as_agent(&c.id, true);
    assert_eq!(
        h.crm.case(&c.id).unwrap().case.updated_at,
        before,
        "the double must report the same whole-second update time"
    );

    h.tick(1);
    h.cycle().await;
    assert!(
        h.google.case(&name).unwrap().case.closed,
        "the close made in the same second as casesync's read reached Google"
    );
}

/// The rule itself, with literal times: a case is skipped only when its update time is
/// unchanged and the last sync began reading at least max(granularity, listing lag) after it.
#[tokio::test]
async fn an_unchanged_case_is_skipped_only_once_a_read_began_after_the_listing_lag() {
    let h = Harness::new();
    h.crm.use_whole_second_update_times();
    let c = h
        .crm
        .open_case_as_agent("Disk full", "d", Priority::P2, true, None);
    h.tick(1);
    h.cycle().await;
    h.tick(1);
    h.cycle().await;
    h.tick(1);
    h.cycle().await;

    // A change at 09:10:00.000 (update time 09:10:00), synced by a read at 09:10:02.
    h.clock.set(start() + Duration::minutes(10));
    h.crm.comment_as_agent(&c.id, "Agent", "one");
    h.clock.advance(Duration::seconds(2));
    let first = h.engine.poll_company().await.unwrap();
    assert_eq!(first.enqueued, 1);
    assert!(h.drain().await.is_empty());

    // 2 s after the change is inside the 5 s listing lag: synced again.
    h.clock.advance(Duration::seconds(2));
    let second = h.engine.poll_company().await.unwrap();
    assert_eq!((second.enqueued, second.unchanged), (1, 0));
    assert!(h.drain().await.is_empty());

    // That sync began at 09:10:04, still 4 s after: once more; the next began 09:10:06.
    h.clock.advance(Duration::seconds(2));
    let third = h.engine.poll_company().await.unwrap();
    assert_eq!((third.enqueued, third.unchanged), (1, 0));
    assert!(h.drain().await.is_empty());
    h.clock.advance(Duration::seconds(2));
    let fourth = h.engine.poll_company().await.unwrap();
    assert_eq!((fourth.enqueued, fourth.unchanged), (0, 1));
}

/// With one-minute polls a change costs at most one extra sync on Google's side too: an item
/// may become listable after the case's update time was read.
#[tokio::test]
async fn a_google_change_is_synced_again_when_its_read_began_inside_the_listing_lag() {
    let h = Harness::new();
    let (name, _id) = h.linked_from_google().await;
    h.tick(1);
    h.cycle().await;
    h.clock.set(start() + Duration::minutes(10));
    h.google.comment_as_engineer(&name, "Eng", "fresh");
    h.clock.advance(Duration::seconds(1));
    assert_eq!(h.engine.poll_google().await.unwrap().enqueued, 1);
    assert!(h.drain().await.is_empty());
    h.clock.advance(Duration::minutes(1));
    let again = h.engine.poll_google().await.unwrap();
    assert_eq!((again.enqueued, again.unchanged), (1, 0));
    assert!(h.drain().await.is_empty());
    h.clock.advance(Duration::minutes(1));
    let settled = h.engine.poll_google().await.unwrap();
    assert_eq!((settled.enqueued, settled.unchanged), (0, 1));
}

// ---- parking: a permanent failure parks the case until it changes -------------------------------

#[tokio::test]
async fn a_permanent_failure_is_parked_and_not_rerun_by_polls_until_the_case_changes() {
    let h = Harness::new();
    let name = h.google_case("Refused everywhere");
    h.crm.faults.plan(
        "create_case",
        1,
        Fault::Fail(PortError::permanent(
            "create_case",
            "HTTP 400: summary too long",
        )),
    );
    h.tick(1);
    h.engine.poll_google().await.unwrap();
    let errors = h.drain().await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].class(), crate::error::ErrorClass::Permanent);
    let m = h.mapping_for_google(&name).await;
    let parked = m.parked.expect("parked");
    assert!(
        parked.reason.contains("summary too long"),
        "{}",
        parked.reason
    );
    assert_eq!(
        parked.source_update_time,
        Some(h.google.case(&name).unwrap().case.update_time)
    );

    // Polls see the case again (it is in the window) but do not re-run it.
    for _ in 0..3 {
        h.tick(1);
        let report = h.engine.poll_google().await.unwrap();
        assert_eq!((report.enqueued, report.parked), (0, 1));
    }
    assert_eq!(h.crm.faults.calls("create_case"), 1);

    // The case changes: synced again, and this time it works.
    h.google.comment_as_engineer(&name, "Eng", "shorter now");
    h.tick(1);
    assert_eq!(h.engine.poll_google().await.unwrap().enqueued, 1);
    assert!(h.drain().await.is_empty());
    let m = h.mapping_for_google(&name).await;
    assert!(m.parked.is_none());
    assert!(m.company_case_id.is_some());
}

// ---- per-item refusal: one failing item never blocks the case ------------------------------------------

#[tokio::test]
async fn a_refused_attachment_and_comment_do_not_stop_the_rest_of_the_case() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    h.google.comment_as_engineer(&name, "Eng", "before");
    let refused_comment = h.google.comment_as_engineer(&name, "Eng", "<script>");
    h.google.attach_as_engineer(&name, "Eng", "tool.exe", b"MZ");
    h.google.attach_as_engineer(&name, "Eng", "log.txt", b"log");
    h.google.set_priority_as_google(&name, Priority::P1);
    h.google.close_as_google(&name);
    // The CRM refuses the second comment (400) and the first file (413) for good.
    h.crm.faults.plan(
        "add_comment",
        2,
        Fault::Fail(PortError::from_http(
            "add_comment",
            400,
            "markup not allowed",
            None,
        )),
    );
    h.crm.faults.plan(
        "upload_attachment",
        1,
        Fault::Fail(PortError::from_http(
            "upload_attachment",
            413,
            "type forbidden",
            None,
        )),
    );
    h.tick(1);
    assert!(h.cycle().await.is_empty());

    let crm = h.crm.case(&id).unwrap();
    let bodies = h.crm_comments(&id);
    assert!(bodies.iter().any(|b| b.ends_with("\nbefore")));
    let refused_id = refused_comment.name.rsplit('/').next().unwrap();
    assert!(
        bodies.iter().any(
            |b| b.starts_with(&format!("[Google Comment {refused_id} by Eng]"))
                && b.contains("could not be copied")
        ),
        "a marked notice stands for the refused comment: {bodies:?}"
    );
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("tool.exe") && b.contains("could not be copied")),
        "{bodies:?}"
    );
    assert_eq!(crm.attachments.len(), 1, "log.txt was copied");
    assert_eq!(crm.case.priority, Some(Priority::P1));
    assert!(crm.case.closed, "the close went through after the refusals");

    let m = h.mapping_for_google(&name).await;
    assert!(
        m.refused_items
            .keys()
            .any(|k| k == &format!("google:comment:{refused_id}"))
    );
    assert!(
        m.attachment_ledger
            .values()
            .any(|e| e.outcome == crate::domain::LedgerOutcome::Refused
                && e.reason.as_deref().is_some_and(|r| r.contains("413")))
    );
    // Later syncs do not try the refused items again.
    let uploads = h.crm.faults.calls("upload_attachment");
    h.google.comment_as_engineer(&name, "Eng", "after");
    h.tick(1);
    h.cycle().await;
    assert_eq!(h.crm.faults.calls("upload_attachment"), uploads);
}

#[tokio::test]
async fn a_transient_comment_failure_still_lets_the_others_and_the_priority_through() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    h.google.comment_as_engineer(&name, "Eng", "one");
    h.google.comment_as_engineer(&name, "Eng", "two");
    h.google.set_priority_as_google(&name, Priority::P0);
    h.google.close_as_google(&name);
    h.crm.faults.fail_next("add_comment", 1);
    h.tick(1);
    h.engine.poll_google().await.unwrap();
    let key = name.rsplit('/').next().unwrap().to_string();
    let err = h.engine.sync_google_to_company(&key).await.unwrap_err();
    assert_eq!(err.class(), crate::error::ErrorClass::Retryable);
    let crm = h.crm.case(&id).unwrap();
    assert_eq!(
        count_with_prefix(&h.crm_comments(&id), "[Google Comment"),
        1
    );
    assert_eq!(crm.case.priority, Some(Priority::P0));
    assert!(
        !crm.case.closed,
        "close last: it waits for the missing comment"
    );
    h.engine.sync_google_to_company(&key).await.unwrap();
    assert_eq!(
        count_with_prefix(&h.crm_comments(&id), "[Google Comment"),
        2
    );
    assert!(h.crm.case(&id).unwrap().case.closed);
}

// ---- one counterpart: a half-refused create links, the field is retried --------------------

#[tokio::test]
async fn a_crm_that_creates_the_case_but_refuses_the_google_field_gets_no_second_case() {
    let h = Harness::new();
    h.crm.refuse_google_name_field(true);
    let name = h.google_case("Half refused");
    for _ in 0..4 {
        h.tick(11);
        h.cycle().await;
    }
    assert_eq!(h.crm.cases().len(), 1, "never a second counterpart");
    let id = h.crm.cases()[0].case.id.clone();
    let m = h.mapping_for_google(&name).await;
    assert_eq!(m.company_case_id.as_deref(), Some(id.as_str()));
    assert_eq!(h.crm.case(&id).unwrap().case.google_case_name, None);

    // The CRM accepts the field again: the next sync writes it.
    h.crm.refuse_google_name_field(false);
    h.google.comment_as_engineer(&name, "Eng", "ping");
    h.tick(1);
    assert!(h.cycle().await.is_empty());
    assert_eq!(
        h.crm.case(&id).unwrap().case.google_case_name.as_deref(),
        Some(name.as_str())
    );
    assert_eq!(h.crm.cases().len(), 1);
}

#[tokio::test]
async fn the_google_name_field_is_written_again_when_its_first_write_failed() {
    let h = Harness::new();
    let c = h
        .crm
        .open_case_as_agent("Needs Google", "d", Priority::P2, true, None);
    h.crm.faults.fail_next("update_case", 1);
    h.tick(1);
    h.engine.poll_company().await.unwrap();
    let errors = h.drain().await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    let name = h
        .mapping_for_company(&c.id)
        .await
        .google_case_name
        .expect("the Google case is recorded before the field write");
    assert_eq!(
        h.crm.case(&c.id).unwrap().case.google_case_name.as_deref(),
        Some(name.as_str()),
        "the retry wrote the field"
    );
    assert_eq!(h.google.cases().len(), 1);
}

// ---- priority and close: a priority change made during a sync is not reverted ---------------------------

#[tokio::test]
async fn a_priority_change_made_while_a_sync_runs_is_not_reverted() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    // The agent lowers the priority; while casesync's sync of that change reads the CRM
    // comments, a Google engineer raises it.
    h.crm.set_priority_as_agent(&id, Priority::P3);
    {
        let (google, name) = (h.google.clone(), name.clone());
        h.crm.faults.before_call("list_comments", 1, move || {
            google.set_priority_as_google(&name, Priority::P1);
        });
    }
    h.tick(1);
    h.engine.sync_company_to_google(&id).await.unwrap();
    // Both changed since the agreed P2: the conflict winner (Google) decides, and Google's
    // P1, visible when casesync re-read before writing, was not overwritten with P3.
    assert_eq!(h.google.case(&name).unwrap().case.priority, Priority::P1);
    assert_eq!(h.crm.case(&id).unwrap().case.priority, Some(Priority::P1));
}

// ---- paused: resuming syncs both directions from the pause ------------------------------------

#[tokio::test]
async fn resuming_a_paused_case_syncs_what_google_did_during_the_pause() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    h.crm.set_flag_as_agent(&id, false);
    h.google
        .comment_as_engineer(&name, "Eng", "said while paused");
    h.google.set_priority_as_google(&name, Priority::P1);
    h.tick(1);
    h.cycle().await;
    assert_eq!(
        h.mapping_for_google(&name).await.sync_state,
        SyncState::Paused
    );
    assert!(
        !h.crm_comments(&id)
            .iter()
            .any(|b| b.ends_with("\nsaid while paused"))
    );
    // Long past poll-google's 30-minute window.
    for _ in 0..3 {
        h.tick(30);
        h.cycle().await;
    }
    h.crm.set_flag_as_agent(&id, true);
    h.tick(1);
    assert!(h.cycle().await.is_empty());
    assert!(
        h.crm_comments(&id)
            .iter()
            .any(|b| b.ends_with("\nsaid while paused")),
        "{:?}",
        h.crm_comments(&id)
    );
    assert_eq!(h.crm.case(&id).unwrap().case.priority, Some(Priority::P1));
}

// ---- the lease is renewed, and a sync that lost it stops writing --------------------

#[tokio::test]
async fn a_sync_that_lost_its_lease_stops_before_its_next_write() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    for n in 0..3 {
        h.google.comment_as_engineer(&name, "Eng", &format!("c{n}"));
    }
    h.tick(1);
    let mapping_id = h.mapping_for_google(&name).await.id;
    {
        // The first write takes ten minutes, past the 9-minute lease, and a redelivery
        // takes the lease over meanwhile.
        let (clock, store, mapping_id) = (h.clock.clone(), h.store.clone(), mapping_id.clone());
        h.crm.faults.before_call("add_comment", 1, move || {
            clock.advance(Duration::minutes(10));
            let now = clock.now();
            let store = store.clone();
            let taken = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap()
                    .block_on(store.acquire_lease(
                        &mapping_id,
                        "redelivery",
                        now + Duration::minutes(9),
                        now,
                    ))
            })
            .join()
            .unwrap();
            assert!(matches!(taken, Ok(LeaseOutcome::Acquired(_))));
        });
    }
    let key = name.rsplit('/').next().unwrap().to_string();
    let err = h.engine.sync_google_to_company(&key).await.unwrap_err();
    assert!(
        matches!(err, TaskError::Port(PortError::LeaseLost { .. })),
        "{err}"
    );
    assert_eq!(
        count_with_prefix(&h.crm_comments(&id), "[Google Comment"),
        1,
        "no write after the lease was lost"
    );
}

#[tokio::test]
async fn a_long_sync_renews_its_lease_and_finishes() {
    let h = Harness::new();
    let (name, id) = h.linked_from_google().await;
    for n in 0..4 {
        h.google.comment_as_engineer(&name, "Eng", &format!("c{n}"));
    }
    h.tick(1);
    let mapping_id = h.mapping_for_google(&name).await.id;
    // Each write takes four minutes; by the fourth, 12 minutes in, the first 9-minute lease
    // would have run out. A redelivery then tries to take the lease: it must find it live.
    let redelivery = Arc::new(std::sync::Mutex::new(None));
    for n in 1..=4 {
        let (clock, store, mapping_id, redelivery) = (
            h.clock.clone(),
            h.store.clone(),
            mapping_id.clone(),
            redelivery.clone(),
        );
        h.crm.faults.before_call("add_comment", n, move || {
            if n == 4 {
                let now = clock.now();
                let taken = std::thread::spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap()
                        .block_on(store.acquire_lease(
                            &mapping_id,
                            "redelivery",
                            now + Duration::minutes(9),
                            now,
                        ))
                })
                .join()
                .unwrap();
                *redelivery.lock().unwrap() = Some(taken);
            }
            clock.advance(Duration::minutes(4));
        });
    }
    let key = name.rsplit('/').next().unwrap().to_string();
    h.engine.sync_google_to_company(&key).await.unwrap();
    assert!(
        matches!(
            redelivery.lock().unwrap().take(),
            Some(Err(PortError::LeaseHeld { .. }))
        ),
        "the renewed lease kept the redelivery out"
    );
    assert_eq!(
        count_with_prefix(&h.crm_comments(&id), "[Google Comment"),
        4
    );
    let m = h.mapping_for_google(&name).await;
    assert!(m.lease.is_none(), "released at the end");
}

// ---- own identity: casesync's own identity ----------------------------------------------

#[tokio::test]
async fn writes_google_reports_under_another_identity_stop_syncing_naming_the_key() {
    let h = Harness::with_settings(|s| {
        s.own_google_identities = vec!["typo@demo-project.iam.gserviceaccount.com".into()];
    });
    let c = h
        .crm
        .open_case_as_agent("Wrong identity", "d", Priority::P2, true, None);
    h.crm.comment_as_agent(&c.id, "Agent", "hello");
    for _ in 0..3 {
        h.tick(1);
        h.engine.poll_company().await.unwrap();
        let errors = h.drain().await;
        assert!(
            errors
                .iter()
                .all(|e| e.class() == crate::error::ErrorClass::Systemic
                    && e.to_string().contains("google.own_identities")),
            "{errors:?}"
        );
        assert!(!errors.is_empty());
    }
    assert_eq!(h.google.cases().len(), 1, "never a second Google case");
}

#[tokio::test]
async fn a_copied_description_line_on_a_persons_case_does_not_link_it() {
    let h = Harness::new();
    let c = h
        .crm
        .open_case_as_agent("Real", "d", Priority::P2, true, None);
    let copied = h.google.open_case_as_customer(
        PARENT,
        "Mine",
        &format!("I copied this\n\ncasesync: memory case {}", c.id),
        Priority::P2,
        None,
    );
    h.tick(1);
    let report = h.engine.poll_google().await.unwrap();
    assert_eq!(report.new_mappings, 1, "a person's case is a new case");
    assert!(
        !h.queue
            .peek()
            .contains(&(Direction::CompanyToGoogle, c.id.clone())),
        "the copied line did not make it the CRM case's counterpart"
    );
    h.mapping_for_google(&copied.name).await;
}

// ---- the requeue rule: bounded, fair re-enqueueing that also links stuck creations ----------

#[tokio::test]
async fn outage_requeues_back_off_and_a_retried_scan_publishes_nothing_again() {
    let h = Harness::new();
    let (name, _id) = h.linked_from_google().await;
    h.google
        .comment_as_engineer(&name, "Eng", "during the outage");
    // The CRM is down for two hours: every sync of the case fails.
    h.crm.faults.fail_next("get_case", 10_000);
    h.tick(1);
    h.engine.poll_google().await.unwrap();
    h.queue.take();
    let mut requeues = 0;
    for _ in 0..24 {
        h.tick(5);
        requeues += scan(&h).await.requeued;
        // Cloud Scheduler retries the same scan: nothing is published twice.
        assert_eq!(scan(&h).await.requeued, 0, "a retried scan published again");
        for (direction, key) in h.queue.take() {
            let _ = h.engine.sync(direction, &key).await;
        }
    }
    // Every 5 minutes for 2 hours would be 24 per side; doubling intervals give a handful.
    assert!((2..=10).contains(&requeues), "{requeues} re-enqueues");
}

#[tokio::test]
async fn lagging_mappings_are_served_oldest_enqueue_first_in_bounded_batches() {
    let h = Harness::with_settings(|s| s.outage_requeue_batch = 1);
    let a = h.google_case("A");
    let b = h.google_case("B");
    h.tick(1);
    h.cycle().await;
    h.tick(1);
    h.cycle().await;
    h.crm.faults.fail_next("get_case", 10_000);
    h.crm.faults.fail_next("search", 10_000);
    h.tick(15);
    let mut served = Vec::new();
    for _ in 0..2 {
        let _ = h.engine.detect_outages().await;
        served.extend(h.queue.take().into_iter().map(|(_, key)| key));
        h.tick(1);
    }
    let mut mappings = Vec::new();
    for key in &served {
        let by_google = GoogleCaseKey::from_case_name(key).ok();
        let m = match by_google {
            Some(k) => h.store.find_by_google(&k).await.unwrap(),
            None => None,
        };
        let m = match m {
            Some(m) => m,
            None => h.mapping_for_company(key).await,
        };
        mappings.push(m.id);
    }
    assert_eq!(served.len(), 2, "one per scan: {served:?}");
    assert_ne!(
        mappings[0], mappings[1],
        "the second scan served the mapping the first left out"
    );
    let _ = (a, b);
}

/// The report of one outage scan, whether it found an outage or not.
async fn scan(h: &Harness) -> OutageReport {
    match h.engine.detect_outages().await {
        Ok(report) => report,
        Err(TaskError::OutageDetected { report, .. }) => report,
        Err(e) => panic!("the scan failed: {e}"),
    }
}

#[tokio::test]
async fn a_creation_that_ran_out_of_retries_is_reenqueued_until_it_links() {
    let h = Harness::new();
    let name = h.google_case("Created during a long CRM outage");
    h.crm.faults.fail_next("create_case", 10_000);
    h.crm.faults.fail_next("search", 10_000);
    h.tick(1);
    h.engine.poll_google().await.unwrap();
    // The message's delivery attempts run out: it is dead-lettered, nothing retries it.
    for (direction, key) in h.queue.take() {
        assert!(h.engine.sync(direction, &key).await.is_err());
    }
    // Hours later, outside every poll window, the CRM is back.
    h.tick(6 * 60);
    h.crm.faults.clear();
    let _ = h.engine.detect_outages().await;
    assert!(h.drain().await.is_empty());
    let m = h.mapping_for_google(&name).await;
    assert!(m.company_case_id.is_some(), "linked without a replay");
    assert_eq!(h.crm.cases().len(), 1);
}

// ---- no spoofing: a typed Google case name links only a case in scope --------------------

#[tokio::test]
async fn a_google_case_typed_into_the_crm_links_only_when_sync_include_admits_it() {
    let h = Harness::with_settings(|s| {
        s.include.projects = vec!["demo-project".into()];
    });
    let foreign = h.google.open_case_as_customer(
        "projects/someone-elses",
        "Not ours",
        "d",
        Priority::P2,
        None,
    );
    let c = h
        .crm
        .open_case_as_agent("Link it", "d", Priority::P2, true, None);
    h.crm
        .set_google_case_name(&c.id, &foreign.name)
        .await
        .unwrap();
    h.tick(1);
    h.engine.poll_company().await.unwrap();
    let errors = h.drain().await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].class(), crate::error::ErrorClass::Permanent);
    assert!(
        errors[0].to_string().contains("sync.include"),
        "{}",
        errors[0]
    );
    assert_eq!(
        count_with_prefix(&h.crm_comments(&c.id), "casesync did not link"),
        1
    );
    assert!(
        h.google.case(&foreign.name).unwrap().comments.is_empty(),
        "nothing was written to the foreign case"
    );
    // Parked: polls do not run it again, and the notice is not repeated.
    for _ in 0..3 {
        h.tick(1);
        h.cycle().await;
    }
    assert_eq!(
        count_with_prefix(&h.crm_comments(&c.id), "casesync did not link"),
        1
    );

    // A case in scope typed the same way links.
    let ours = h.google_case("Ours");
    let d = h
        .crm
        .open_case_as_agent("Link ours", "d", Priority::P2, true, None);
    h.crm.set_google_case_name(&d.id, &ours).await.unwrap();
    h.tick(1);
    h.engine.poll_company().await.unwrap();
    h.drain().await;
    let m = h.mapping_for_company(&d.id).await;
    assert!(m.google_link_checked);
    assert_eq!(m.google_case_name.as_deref(), Some(ours.as_str()));
}

// ---- dead letters: cleanup acknowledges the dead letters of cases that have synced since ---------

/// Dead letters in memory, acknowledged by handle.
#[derive(Default)]
struct MemoryDeadLetters {
    letters: std::sync::Mutex<Vec<crate::ports::DeadLetterMessage>>,
    handed_out: std::sync::Mutex<bool>,
}

#[async_trait::async_trait]
impl crate::ports::DeadLetterQueue for MemoryDeadLetters {
    async fn read_dead_letters(
        &self,
        _max: usize,
    ) -> crate::error::PortResult<Vec<crate::ports::DeadLetterMessage>> {
        let mut once = self.handed_out.lock().unwrap();
        if *once {
            return Ok(Vec::new());
        }
        *once = true;
        Ok(self.letters.lock().unwrap().clone())
    }

    async fn ack_dead_letters(&self, handles: &[String]) -> crate::error::PortResult<()> {
        self.letters
            .lock()
            .unwrap()
            .retain(|l| !handles.contains(&l.handle));
        Ok(())
    }
}

#[tokio::test]
async fn cleanup_acknowledges_only_dead_letters_of_cases_that_synced_since() {
    let h = Harness::new();
    let (healed, _) = h.linked_from_google().await;
    let (stuck, _) = h.linked_from_google().await;
    let key = |n: &str| n.rsplit('/').next().unwrap().to_string();
    let dead_at = h.clock.now();
    let letter = |handle: &str, name: &str| crate::ports::DeadLetterMessage {
        handle: handle.into(),
        direction: Some(Direction::GoogleToCompany),
        case_key: key(name),
        dead_lettered_at: dead_at,
    };
    let dlq = MemoryDeadLetters::default();
    dlq.letters.lock().unwrap().extend([
        letter("healed", &healed),
        letter("stuck", &stuck),
        letter("unknown", "projects/p/cases/999"),
    ]);
    // The first case syncs successfully after its message was dead-lettered.
    h.tick(1);
    h.google.comment_as_engineer(&healed, "Eng", "later");
    h.engine
        .sync_google_to_company(&key(&healed))
        .await
        .unwrap();

    let report = h.engine.cleanup_with_dead_letters(&dlq).await.unwrap();
    assert_eq!(
        (report.dead_letters_acked, report.dead_letters_kept),
        (1, 2)
    );
    let left: Vec<String> = dlq
        .letters
        .lock()
        .unwrap()
        .iter()
        .map(|l| l.handle.clone())
        .collect();
    assert_eq!(left, vec!["stuck".to_string(), "unknown".to_string()]);
}

#[tokio::test]
async fn an_upload_stream_longer_than_its_declared_size_is_stopped() {
    use futures::StreamExt;
    let body: crate::ports::ByteStream = futures::stream::iter(vec![
        Ok(bytes::Bytes::from_static(b"12345")),
        Ok(bytes::Bytes::from_static(b"678")),
    ])
    .boxed();
    let mut capped = super::super::sync::capped_stream(body, 6);
    assert!(capped.next().await.unwrap().is_ok());
    let err = capped.next().await.unwrap().unwrap_err();
    assert_eq!(err.class(), crate::error::ErrorClass::Permanent);
    assert!(err.to_string().contains("declared"), "{err}");
}

// ---- one listing per sync ---------------------------------------------------------------

#[tokio::test]
async fn the_first_google_sync_lists_the_google_comments_once() {
    let h = Harness::new();
    let name = h.google_case("Listed once");
    h.google.comment_as_engineer(&name, "Eng", "hello");
    h.tick(1);
    h.engine.poll_google().await.unwrap();
    let before = h.google.faults.calls("cases.comments.list");
    assert!(h.drain().await.is_empty());
    assert_eq!(
        h.google.faults.calls("cases.comments.list") - before,
        1,
        "the now-syncing check and the mirror share one listing"
    );
    let id = h.mapping_for_google(&name).await.company_case_id.unwrap();
    assert_eq!(
        count_with_prefix(&h.crm_comments(&id), "[Google Comment"),
        1
    );
}
