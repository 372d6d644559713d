//! The full two-way scenario between the CSAPI and Jira emulators, through the real
//! adapters, on the local runner's embedded store and queue.

use casesync_tests::scenario::{World, run_full_scenario};
use shared::adapters::sqlite_queue::EmbeddedQueue;
use shared::adapters::sqlite_store::SqliteStore;
use shared::clock::SystemClock;
use shared::retry_policy::FAST_QUEUE;
use shared::tasks::Engine;
use shared::worker::{DeliveryOutcome, process_delivery};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_scenario_runs_between_the_two_emulators_each_item_mirrored_once() {
    let world = World::start().await.unwrap();
    let (support, crm) = world.adapters().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("casesync.sqlite");
    let queue = Arc::new(EmbeddedQueue::open(&db, FAST_QUEUE, Arc::new(SystemClock)).unwrap());
    let engine = Engine {
        support: Arc::new(support),
        crm: Arc::new(crm),
        store: Arc::new(SqliteStore::open(&db).unwrap()),
        queue: queue.clone(),
        clock: Arc::new(SystemClock),
        settings: Arc::new(world.settings()),
    };
    let settle = || {
        let engine = engine.clone();
        let queue = queue.clone();
        async move {
            engine.poll_google().await?;
            engine.poll_company().await?;
            while let Some(d) = queue.receive()? {
                match process_delivery(&engine, &queue, &d).await? {
                    DeliveryOutcome::Synced(_) => {}
                    other => anyhow::bail!("a sync did not succeed: {other:?}"),
                }
            }
            Ok(())
        }
    };
    run_full_scenario(&world, settle).await.unwrap();
    assert!(queue.dead_letters().unwrap().is_empty());
}
