//! The failure paths of "every case converges": each test drives the engine into a state
//! where a case stopped syncing before the fix, and checks that it converges now.

use super::*;
use chrono::Duration;

fn ms(n: i64) -> Duration {
    Duration::milliseconds(n)
}

// ---- §1: the skip rule never loses a change -------------------------------------------

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
