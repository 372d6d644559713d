//! Killing the process holding the embedded queue loses nothing: a child process (this test
//! binary, re-run in a writer role) publishes and takes a message in flight, is killed with
//! SIGKILL, and the SQLite file, reopened, still holds every message.

use shared::adapters::sqlite_queue::EmbeddedQueue;
use shared::clock::SystemClock;
use shared::domain::Direction;
use shared::ports::SyncQueue;
use shared::retry_policy::{FAST_QUEUE, QueuePolicy};
use std::sync::Arc;
use std::time::Duration;

const ROLE: &str = "CASESYNC_TEST_QUEUE_WRITER";
const TEST_NAME: &str = "queue_crash::killing_the_process_and_reopening_the_file_loses_nothing";

fn policy() -> QueuePolicy {
    QueuePolicy {
        ack_deadline: Duration::from_secs(1),
        ..FAST_QUEUE
    }
}

#[tokio::test]
async fn killing_the_process_and_reopening_the_file_loses_nothing() {
    if let Ok(path) = std::env::var(ROLE) {
        // The writer role: publish, take one in flight, say so, then wait to be killed.
        let q = EmbeddedQueue::open(std::path::Path::new(&path), policy(), Arc::new(SystemClock))
            .unwrap();
        for key in ["1", "2", "3"] {
            q.publish(Direction::GoogleToCompany, key).await.unwrap();
        }
        let d = q.receive().unwrap().unwrap();
        println!("IN-FLIGHT {}", d.case_key);
        std::fs::write(format!("{path}.ready"), &d.case_key).unwrap();
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("casesync.sqlite");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture"])
        .env(ROLE, &path)
        .spawn()
        .unwrap();
    let ready = dir.path().join("casesync.sqlite.ready");
    for _ in 0..300 {
        if ready.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready.exists(), "the writer never got ready");
    child.kill().unwrap(); // SIGKILL: no destructor, no flush.
    child.wait().unwrap();

    let q = EmbeddedQueue::open(&path, policy(), Arc::new(SystemClock)).unwrap();
    assert_eq!(q.depth().unwrap(), 3, "every published message survived");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut keys = Vec::new();
    while let Some(d) = q.receive().unwrap() {
        keys.push(d.case_key.clone());
        q.ack(d.id).unwrap();
    }
    keys.sort();
    assert_eq!(
        keys,
        vec!["1", "2", "3"],
        "the in-flight one came back after its ack deadline"
    );
}
