//! Speed goals of the task bodies (`make bench`). Correctness of the bounds lives in the
//! tests (store writes per idle poll); these measure what they cost:
//! - a poll over 1,000 idle open mappings on SQLite stays in the low milliseconds, since it
//!   writes one document and reads one key per updated case only;
//! - an outage scan over 1,000 open mappings;
//! - splitting a 1 MB comment into marked parts.

use criterion::{Criterion, criterion_group, criterion_main};
use shared::adapters::sqlite_store::SqliteStore;
use shared::clock::ManualClock;
use shared::domain::{CaseMapping, CompanyCaseKey, Priority, Side, markers};
use shared::ports::MappingStore;
use shared::tasks::{Engine, SyncSettings};
use shared::testing::{MemoryCrm, MemorySupportApi, RecordingQueue};
use std::sync::Arc;

const OWN: &str = "casesync@bench.iam.gserviceaccount.com";

fn engine_with_idle_mappings(n: usize) -> (Engine, tempfile::TempDir, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(chrono::Utc::now());
    let store = Arc::new(SqliteStore::open(&dir.path().join("bench.sqlite")).expect("store"));
    rt.block_on(async {
        for i in 0..n {
            let key = CompanyCaseKey::new(&format!("idle-{i}")).expect("key");
            let mut m = CaseMapping::from_company(&key, Priority::P2, clock.now_for_bench());
            m.google_case_name = Some(format!("projects/p/cases/{}", 30_000_000 + i));
            m.google_updates_synced_at = Some(clock.now_for_bench());
            store.insert_new(&m).await.expect("insert");
        }
        store
            .advance_poll(Side::Google, clock.now_for_bench())
            .await
            .expect("poll");
        store
            .advance_poll(Side::Company, clock.now_for_bench())
            .await
            .expect("poll");
    });
    let engine = Engine {
        support: Arc::new(MemorySupportApi::new(Arc::new(clock.clone()), OWN)),
        crm: Arc::new(MemoryCrm::new(Arc::new(clock.clone()))),
        store,
        queue: Arc::new(RecordingQueue::default()),
        clock: Arc::new(clock),
        settings: Arc::new(SyncSettings::with_defaults("projects/p", OWN)),
    };
    (engine, dir, rt)
}

trait NowForBench {
    fn now_for_bench(&self) -> chrono::DateTime<chrono::Utc>;
}

impl NowForBench for ManualClock {
    fn now_for_bench(&self) -> chrono::DateTime<chrono::Utc> {
        shared::clock::Clock::now(self)
    }
}

fn polls_and_scans(c: &mut Criterion) {
    let (engine, _dir, rt) = engine_with_idle_mappings(1_000);
    c.bench_function("poll-google over 1,000 idle open mappings", |b| {
        b.iter(|| rt.block_on(engine.poll_google()).expect("poll"))
    });
    c.bench_function("detect-outages over 1,000 open mappings", |b| {
        b.iter(|| rt.block_on(engine.detect_outages()).expect("scan"))
    });
}

fn comment_splitting(c: &mut Criterion) {
    let body = "x".repeat(1_000_000);
    c.bench_function("split a 1 MB comment into marked parts", |b| {
        b.iter(|| markers::mirror_comment_parts(Side::Google, "1", "Ann", &body).len())
    });
}

criterion_group!(benches, polls_and_scans, comment_splitting);
criterion_main!(benches);
