//! The Firestore store and the Pub/Sub adapters against the official emulators (docs/ARCHITECTURE.md#testing):
//! the store contract suite on a named Native-mode database, writers racing from separate
//! tasks, the documented document layout, and the Pub/Sub paths production relies on —
//! sync messages with their attributes, the shim's own dead letters, and push deliveries
//! that keep failing ending in the dead-letter topic with Pub/Sub's attributes.
//!
//! Each test starts its own emulator (they are installed here and in CI) and stops it when
//! it ends. Assertions count deliveries and attributes; none depends on exact timing.

use anyhow::{Context, Result, bail};
use casesync_tests::emulators::{FirestoreEmulator, PubSubEmulator};
use shared::adapters::firestore_store::{FirestoreConfig, FirestoreStore};
use shared::adapters::pubsub::{
    CASE_KEY_ATTRIBUTE, ERROR_ATTRIBUTE, ERROR_CLASS_ATTRIBUTE, PubSubConfig, PubSubQueue,
    PubSubRest, PulledMessage, PushSubscription, SOURCE_TOPIC_ATTRIBUTE, dead_letter_attributes,
};
use shared::domain::{CaseMapping, CompanyCaseKey, Direction, GoogleCaseKey, Priority, Side};
use shared::ports::{InsertOutcome, LeaseOutcome, MappingStore, SyncQueue};
use shared::retry_policy::{COMPANY_UPDATES_TOPIC, FAST_QUEUE};
use shared::{ErrorClass, PortError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PROJECT: &str = "casesync-test";

async fn store(emulator: &FirestoreEmulator, database: &str) -> Result<FirestoreStore> {
    let config = FirestoreConfig::new(PROJECT, database).with_emulator_host(&emulator.host_port());
    Ok(FirestoreStore::connect(&config).await?)
}

fn t(minutes: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-01T12:00:00Z")
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default()
        + chrono::Duration::minutes(minutes)
}

// ---------------------------------------------------------------------------------------
// Firestore

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_firestore_store_passes_the_store_contract() -> Result<()> {
    let emulator = FirestoreEmulator::start().await?;
    store(&emulator, "contract-probe").await?.verify().await?;
    // Each check on a database of its own, so a failure names one check and no check sees
    // another's data...
    for (i, (name, check)) in shared::store_contract::all_checks().into_iter().enumerate() {
        let store = store(&emulator, &format!("contract-{i}")).await?;
        let started = Instant::now();
        check(&store).await;
        eprintln!(
            "store contract on Firestore: {name} passed in {:?}",
            started.elapsed()
        );
    }
    // ...and all of them on one database: they tolerate each other's data.
    let shared_db = store(&emulator, "contract-shared").await?;
    shared::store_contract::run_all(&shared_db).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_tasks_get_one_lease_and_one_mapping() -> Result<()> {
    let emulator = FirestoreEmulator::start().await?;
    let store: Arc<FirestoreStore> = Arc::new(store(&emulator, "races").await?);
    const TASKS: usize = 4;

    for round in 0..3 {
        let number = format!("55500{round}");
        let key = GoogleCaseKey::from_case_name(&number)?;
        let company = format!("RACE/{round}");
        // Polls of both sides see the same case at once and each inserts its mapping.
        let mut inserts = Vec::new();
        for task in 0..TASKS {
            let store = store.clone();
            let mut m = if task % 2 == 0 {
                CaseMapping::from_google(
                    &format!("projects/p/cases/{number}"),
                    &key,
                    Priority::P2,
                    t(0),
                )
            } else {
                CaseMapping::from_company(&CompanyCaseKey::new(&company)?, Priority::P2, t(0))
            };
            m.google_case_name = Some(format!("projects/p/cases/{number}"));
            m.company_case_id = Some(company.clone());
            inserts.push(tokio::spawn(async move { store.insert_new(&m).await }));
        }
        let mut created = 0;
        for handle in inserts {
            match handle.await?? {
                InsertOutcome::Created => created += 1,
                InsertOutcome::AlreadyMapped(_) => {}
            }
        }
        assert_eq!(
            created, 1,
            "round {round}: {created} racing inserts were Created"
        );
        let mapping = store
            .find_by_google(&key)
            .await?
            .context("the winner's mapping")?;
        let by_company = store
            .find_by_company(&CompanyCaseKey::new(&company)?)
            .await?
            .context("the winner's CRM key")?;
        assert_eq!(
            mapping.id, by_company.id,
            "round {round}: the keys name two mappings"
        );

        // Deliveries of that case race for its lease.
        let mut leases = Vec::new();
        for task in 0..TASKS {
            let (store, id) = (store.clone(), mapping.id.clone());
            leases.push(tokio::spawn(async move {
                let holder = format!("delivery-{task}");
                (
                    holder.clone(),
                    store.acquire_lease(&id, &holder, t(10), t(0)).await,
                )
            }));
        }
        let mut winners = Vec::new();
        for handle in leases {
            match handle.await? {
                (holder, Ok(LeaseOutcome::Acquired(_))) => winners.push(holder),
                (_, Err(PortError::LeaseHeld { .. })) => {}
                (holder, other) => bail!("round {round}: {holder}: {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: lease winners {winners:?}");
        let stored = store.get(&mapping.id).await?.context("mapping")?;
        assert_eq!(
            stored.lease.as_ref().map(|l| l.holder.clone()),
            Some(winners[0].clone()),
            "round {round}: the stored lease is not the winner's"
        );

        // Polls marking the case pending while its sync saves: both writes survive.
        let mut leased = stored.clone();
        leased.priority = Priority::P0;
        let winner = winners[0].clone();
        let (saved, marked) = tokio::join!(
            {
                let store = store.clone();
                async move { store.save_synced(&leased, &winner).await }
            },
            {
                let (store, id) = (store.clone(), mapping.id.clone());
                tokio::spawn(async move { store.mark_pending(&id, Side::Company, t(1)).await })
            }
        );
        saved?;
        marked??;
        let after = store.get(&mapping.id).await?.context("mapping")?;
        assert_eq!(
            after.priority,
            Priority::P0,
            "round {round}: the save was lost"
        );
        assert_eq!(
            after.company_pending_since,
            Some(t(1)),
            "round {round}: the pending mark was lost"
        );
    }
    Ok(())
}

/// Reads a document through the emulator's REST API, as Firestore stores it.
async fn raw_document(
    http: &reqwest::Client,
    emulator: &FirestoreEmulator,
    database: &str,
    path: &str,
) -> Result<Option<serde_json::Value>> {
    let url = format!(
        "http://{}/v1/projects/{PROJECT}/databases/{database}/documents/{path}",
        emulator.host_port()
    );
    let response = http
        .get(&url)
        .header("Authorization", "Bearer owner")
        .send()
        .await?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let response = response.error_for_status()?;
    Ok(Some(
        response.json::<serde_json::Value>().await?["fields"].clone(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_have_the_documented_layout_and_reset_clears_one_named_database() -> Result<()> {
    let emulator = FirestoreEmulator::start().await?;
    let layout = store(&emulator, "layout").await?;
    let other = store(&emulator, "untouched").await?;
    let http = reqwest::Client::new();

    let key = GoogleCaseKey::from_case_name("projects/p/cases/4711")?;
    let mut m = CaseMapping::from_google("projects/p/cases/4711", &key, Priority::P1, t(0));
    m.company_case_id = Some("SUP/9".into());
    assert_eq!(layout.insert_new(&m).await?, InsertOutcome::Created);
    assert_eq!(other.insert_new(&m).await?, InsertOutcome::Created);
    layout.advance_poll(Side::Google, t(5)).await?;
    layout.set_outage_flag(&m.id, Side::Company, true).await?;

    let doc = raw_document(&http, &emulator, "layout", "caseMappings/google-4711")
        .await?
        .context("caseMappings/google-4711")?;
    assert_eq!(
        doc["googleCaseName"]["stringValue"],
        "projects/p/cases/4711"
    );
    assert_eq!(doc["companyCaseID"]["stringValue"], "SUP/9");
    assert_eq!(doc["schemaVersion"]["integerValue"], "1");
    assert_eq!(doc["priority"]["integerValue"], "1");
    assert!(
        doc["resolvedAt"].get("nullValue").is_some(),
        "resolvedAt: {}",
        doc["resolvedAt"]
    );
    assert!(
        doc["lease"].get("nullValue").is_some(),
        "lease: {}",
        doc["lease"]
    );
    assert!(
        doc["createdAt"].get("timestampValue").is_some(),
        "createdAt: {}",
        doc["createdAt"]
    );
    assert!(
        doc["companyUpdatesSyncedAt"]
            .get("timestampValue")
            .is_some(),
        "companyUpdatesSyncedAt: {}",
        doc["companyUpdatesSyncedAt"]
    );
    assert_eq!(doc["outageCommentSentToCompany"]["booleanValue"], true);
    assert_eq!(
        doc["syncState"]["mapValue"]["fields"]["state"]["stringValue"],
        "active"
    );

    let google_key = raw_document(&http, &emulator, "layout", "caseMappingKeys/google-4711")
        .await?
        .context("caseMappingKeys/google-4711")?;
    assert_eq!(google_key["mappingId"]["stringValue"], "google-4711");
    assert_eq!(google_key["schemaVersion"]["integerValue"], "1");
    let company_doc_id = CaseMapping::id_for_company(&CompanyCaseKey::new("SUP/9")?);
    let company_key = raw_document(
        &http,
        &emulator,
        "layout",
        &format!("caseMappingKeys/{company_doc_id}"),
    )
    .await?
    .context("the CRM key document")?;
    assert_eq!(company_key["mappingId"]["stringValue"], "google-4711");
    assert_eq!(company_key["key"]["stringValue"], "SUP/9");

    let global = raw_document(&http, &emulator, "layout", "casesyncGlobal/global")
        .await?
        .context("casesyncGlobal/global")?;
    assert_eq!(global["schemaVersion"]["integerValue"], "1");
    assert!(
        global["google_last_polled_at"]
            .get("timestampValue")
            .is_some(),
        "{global}"
    );
    assert!(
        global["company_last_polled_at"].get("nullValue").is_some(),
        "{global}"
    );

    // The reset endpoint clears the named database it names, and only that one.
    emulator.reset(PROJECT, "layout").await?;
    assert_eq!(layout.get(&m.id).await?, None, "reset left the mapping");
    assert_eq!(
        layout.find_by_google(&key).await?,
        None,
        "reset left the key"
    );
    assert_eq!(
        layout.global().await?,
        Default::default(),
        "reset left Global"
    );
    assert!(
        other.get(&m.id).await?.is_some(),
        "reset cleared another database"
    );
    // A cleared database takes the same case again.
    assert_eq!(layout.insert_new(&m).await?, InsertOutcome::Created);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Pub/Sub

/// Pulls until `want` messages arrived or `within` passed; acks what it pulled.
async fn pull_until(
    rest: &PubSubRest,
    subscription: &str,
    want: usize,
    within: Duration,
) -> Result<Vec<PulledMessage>> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        let batch = rest.pull(subscription, 10).await?;
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let ack_ids: Vec<String> = batch.iter().map(|m| m.ack_id.clone()).collect();
        rest.acknowledge(subscription, &ack_ids).await?;
        got.extend(batch);
    }
    Ok(got)
}

/// Pub/Sub's rule for topic and subscription ids: 3–255 characters, starting with a
/// letter, and not with `goog`.
fn legal_pubsub_id(id: &str) -> bool {
    (3..=255).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && !id.to_ascii_lowercase().starts_with("goog")
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~+%".contains(c))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_messages_and_the_shims_dead_letters_arrive_with_their_attributes() -> Result<()> {
    let emulator = PubSubEmulator::start().await?;
    let config = PubSubConfig::new(PROJECT).with_emulator_host(&emulator.host_port());
    let rest = PubSubRest::new(&config)?;
    let queue = PubSubQueue::connect(&config).await?;

    // Each direction's messages go to its own topic, with the case key as attribute.
    let directions = [
        (Direction::GoogleToCompany, "10000001"),
        (Direction::CompanyToGoogle, "SUP/7 \"x\""),
    ];
    let mut subscribed = Vec::new();
    for (direction, key) in directions {
        let topic = direction.topic();
        // Pub/Sub refuses other names (a topic named `google-…` once slipped through).
        assert!(
            legal_pubsub_id(topic),
            "`{topic}` is not a legal Pub/Sub topic id"
        );
        assert!(rest.create_topic(topic).await?, "{topic} was not new");
        let sub = format!("{topic}-pull");
        let retention = Duration::from_secs(600);
        assert!(
            rest.create_pull_subscription(&sub, topic, Duration::from_secs(30), retention)
                .await?
        );
        // Creating again is not an error: the stack's setup may run twice.
        assert!(!rest.create_topic(topic).await?, "{topic} created twice");
        subscribed.push((direction, key, sub));
    }
    for (direction, key, _) in &subscribed {
        queue.publish(*direction, key).await?;
    }
    for (direction, key, sub) in &subscribed {
        let got = pull_until(&rest, sub, 1, Duration::from_secs(20)).await?;
        assert_eq!(got.len(), 1, "{direction:?}: {got:?}");
        assert_eq!(got[0].data, shared::domain::SyncMessage::new(key).to_json());
        assert_eq!(shared::domain::SyncMessage::decode(&got[0].data)?.key, *key);
        assert_eq!(
            got[0]
                .attributes
                .get(CASE_KEY_ATTRIBUTE)
                .map(String::as_str),
            Some(*key),
            "{direction:?}"
        );
    }

    // The shim dead-letters an undecodable message itself: bytes as received, reason added.
    let dead_letters = "sync-dead-letters";
    rest.create_topic(dead_letters).await?;
    let dead_sub = format!("{dead_letters}-pull");
    rest.create_pull_subscription(
        &dead_sub,
        dead_letters,
        Duration::from_secs(30),
        Duration::from_secs(600),
    )
    .await?;
    let source_topic = config.topic_name(COMPANY_UPDATES_TOPIC);
    let original = HashMap::from([(CASE_KEY_ATTRIBUTE.to_string(), "42".to_string())]);
    let attributes = dead_letter_attributes(
        &original,
        ErrorClass::Permanent,
        "sync message version 2 is not supported (expected 1)",
        &source_topic,
    );
    let id = queue
        .publish_raw(dead_letters, &b"{\"v\":2,\"key\":\"42\"}"[..], attributes)
        .await?;
    assert!(!id.is_empty());
    let dead = pull_until(&rest, &dead_sub, 1, Duration::from_secs(20)).await?;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let a = &dead[0].attributes;
    assert_eq!(&dead[0].data[..], b"{\"v\":2,\"key\":\"42\"}");
    assert_eq!(a.get(CASE_KEY_ATTRIBUTE).map(String::as_str), Some("42"));
    assert_eq!(
        a.get(ERROR_CLASS_ATTRIBUTE).map(String::as_str),
        Some("permanent")
    );
    assert!(
        a.get(ERROR_ATTRIBUTE)
            .is_some_and(|e| e.contains("version 2")),
        "{a:?}"
    );
    assert_eq!(a.get(SOURCE_TOPIC_ATTRIBUTE), Some(&source_topic), "{a:?}");

    // Acked messages are gone; nothing else was published anywhere.
    for sub in subscribed
        .iter()
        .map(|(_, _, sub)| sub.as_str())
        .chain([dead_sub.as_str()])
    {
        let rest_of = pull_until(&rest, sub, 1, Duration::from_secs(2)).await?;
        assert!(rest_of.is_empty(), "{sub}: unexpected {rest_of:?}");
    }

    // A waiting pull returns empty once its wait is over, and takes what is there.
    let started = Instant::now();
    let nothing = rest
        .pull_waiting(&dead_sub, 10, Duration::from_secs(1))
        .await?;
    assert!(nothing.is_empty(), "{nothing:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // The emulator does not always wake a pull already waiting when a message arrives
    // (seen under load in CI), so the message is published first.
    queue
        .publish_raw(dead_letters, "late", HashMap::new())
        .await?;
    let waited = rest
        .pull_waiting(&dead_sub, 10, Duration::from_secs(20))
        .await;
    let waited = waited?;
    assert_eq!(waited.len(), 1, "{waited:?}");
    assert_eq!(&waited[0].data[..], b"late");
    rest.acknowledge(&dead_sub, &[waited[0].ack_id.clone()])
        .await?;

    // A topic that does not exist is an error the caller sees, not a silent drop.
    let missing = queue
        .publish_raw("no-such-topic", "x", HashMap::new())
        .await;
    let missing = missing
        .err()
        .context("publishing to a missing topic succeeded")?;
    // A missing topic is the deployment's fault, not the message's: never dead-letter.
    assert_eq!(missing.class(), ErrorClass::Systemic, "{missing}");
    Ok(())
}

/// A push endpoint that always fails, recording what it was sent.
async fn failing_endpoint() -> Result<(String, Arc<Mutex<Vec<serde_json::Value>>>)> {
    use axum::{Router, extract::State, http::StatusCode, routing::post};
    let seen: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    async fn fail(
        State(seen): State<Arc<Mutex<Vec<serde_json::Value>>>>,
        body: axum::body::Bytes,
    ) -> StatusCode {
        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        seen.lock().unwrap_or_else(|e| e.into_inner()).push(json);
        StatusCode::INTERNAL_SERVER_ERROR
    }
    let app = Router::new()
        .route("/push", post(fail))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/push", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, seen))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_keeps_failing_ends_in_the_dead_letter_topic() -> Result<()> {
    let emulator = PubSubEmulator::start().await?;
    let config = PubSubConfig::new(PROJECT).with_emulator_host(&emulator.host_port());
    let rest = PubSubRest::new(&config)?;
    let queue = PubSubQueue::connect(&config).await?;
    let (endpoint, seen) = failing_endpoint().await?;

    rest.create_topic(COMPANY_UPDATES_TOPIC).await?;
    rest.create_topic("casesync-company-case-updates-dead-letter")
        .await?;
    rest.create_pull_subscription(
        "casesync-company-case-updates-dead-letter-replay",
        "casesync-company-case-updates-dead-letter",
        Duration::from_secs(30),
        Duration::from_secs(600),
    )
    .await?;
    // The tests' fast profile: same shape as production, backoff 1–2 s, 5 attempts.
    let push = PushSubscription::from_policy(
        "sync-company-to-google",
        COMPANY_UPDATES_TOPIC,
        &endpoint,
        Some("casesync-company-case-updates-dead-letter"),
        &FAST_QUEUE,
    );
    rest.create_push_subscription(&push).await?;

    queue
        .publish(Direction::CompanyToGoogle, "SUP-10000002")
        .await?;

    let dead = pull_until(
        &rest,
        "casesync-company-case-updates-dead-letter-replay",
        1,
        Duration::from_secs(45),
    )
    .await?;
    assert_eq!(
        dead.len(),
        1,
        "no dead letter after 45 s; pushes: {}",
        seen.lock().map(|s| s.len()).unwrap_or(0)
    );
    let attempts = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(
        attempts.len(),
        FAST_QUEUE.max_delivery_attempts as usize,
        "push attempts before dead-lettering"
    );
    for body in &attempts {
        assert_eq!(
            body["message"]["attributes"][CASE_KEY_ATTRIBUTE], "SUP-10000002",
            "{body}"
        );
        assert_eq!(
            body["subscription"],
            format!("projects/{PROJECT}/subscriptions/sync-company-to-google"),
            "{body}"
        );
    }

    let letter = &dead[0];
    assert_eq!(&letter.data[..], br#"{"v":1,"key":"SUP-10000002"}"#);
    let a = &letter.attributes;
    assert_eq!(
        a.get(CASE_KEY_ATTRIBUTE).map(String::as_str),
        Some("SUP-10000002"),
        "{a:?}"
    );
    assert_eq!(
        a.get("CloudPubSubDeadLetterSourceDeliveryCount")
            .map(String::as_str),
        Some("5"),
        "{a:?}"
    );
    assert!(
        a.get("CloudPubSubDeadLetterSourceSubscription")
            .is_some_and(|s| s.ends_with("sync-company-to-google")),
        "{a:?}"
    );
    assert!(
        a.contains_key("CloudPubSubDeadLetterSourceTopicPublishTime"),
        "{a:?}"
    );
    assert!(
        a.contains_key("CloudPubSubDeadLetterSourceSubscriptionProject"),
        "{a:?}"
    );

    // Dead-lettered means done: no more pushes, nothing else in the dead-letter topic.
    let more = pull_until(
        &rest,
        "casesync-company-case-updates-dead-letter-replay",
        1,
        Duration::from_secs(4),
    )
    .await?;
    assert!(more.is_empty(), "a second dead letter: {more:?}");
    assert_eq!(
        seen.lock().map(|s| s.len()).unwrap_or(0),
        attempts.len(),
        "pushes went on after dead-lettering"
    );
    Ok(())
}

/// cleanup-case-mappings on the real Pub/Sub path: of two dead letters, the one whose case
/// has synced successfully since is acknowledged; the other stays for the replay job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_acknowledges_only_the_dead_letters_of_cases_synced_since() -> Result<()> {
    use shared::adapters::pubsub::PubSubDeadLetterReader;
    use shared::adapters::sqlite_store::SqliteStore;
    use shared::testing::{MemoryCrm, MemorySupportApi, RecordingQueue};

    let emulator = PubSubEmulator::start().await?;
    let config = PubSubConfig::new(PROJECT).with_emulator_host(&emulator.host_port());
    let rest = PubSubRest::new(&config)?;
    let queue = PubSubQueue::connect(&config).await?;
    const TOPIC: &str = "casesync-company-case-updates-dead-letter";
    const SUBSCRIPTION: &str = "casesync-company-case-updates-dead-letter-replay";
    rest.create_topic(TOPIC).await?;
    rest.create_pull_subscription(
        SUBSCRIPTION,
        TOPIC,
        Duration::from_secs(10),
        Duration::from_secs(600),
    )
    .await?;
    for key in ["HEALED-1", "STUCK-1"] {
        let original = HashMap::from([(CASE_KEY_ATTRIBUTE.to_string(), key.to_string())]);
        let attributes = dead_letter_attributes(
            &original,
            ErrorClass::Retryable,
            "CRM down",
            COMPANY_UPDATES_TOPIC,
        );
        let data = format!(r#"{{"v":1,"key":"{key}"}}"#);
        queue
            .publish_raw(TOPIC, data.into_bytes(), attributes)
            .await?;
    }

    // HEALED-1 had a successful sync after it was dead-lettered; STUCK-1 never synced.
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.sqlite"))?);
    let now = chrono::Utc::now();
    for key in ["HEALED-1", "STUCK-1"] {
        let m = CaseMapping::from_company(&CompanyCaseKey::new(key)?, Priority::P2, now);
        store.insert_new(&m).await?;
    }
    let healed = store
        .find_by_company(&CompanyCaseKey::new("HEALED-1")?)
        .await?
        .context("mapping")?;
    let LeaseOutcome::Acquired(leased) = store
        .acquire_lease(&healed.id, "t", now + chrono::Duration::minutes(1), now)
        .await?
    else {
        bail!("mapping missing")
    };
    let mut leased = *leased;
    leased.company_updates_synced_at = Some(now + chrono::Duration::hours(1));
    store.save_synced(&leased, "t").await?;
    store.release_lease(&leased.id, "t").await?;

    let clock: Arc<dyn shared::clock::Clock> = Arc::new(shared::clock::SystemClock);
    let own = "casesync@casesync-test.iam.gserviceaccount.com";
    let engine = shared::tasks::Engine {
        support: Arc::new(MemorySupportApi::new(clock.clone(), own)),
        crm: Arc::new(MemoryCrm::new(clock.clone())),
        store,
        queue: Arc::new(RecordingQueue::default()),
        clock,
        settings: Arc::new(shared::tasks::SyncSettings::with_defaults(
            "projects/casesync-test",
            own,
        )),
    };
    let reader = PubSubDeadLetterReader::new(rest.clone(), vec![SUBSCRIPTION.to_string()]);
    let report = engine.cleanup_with_dead_letters(&reader).await?;
    assert_eq!(
        (report.dead_letters_acked, report.dead_letters_kept),
        (1, 1),
        "{report:?}"
    );

    // After the ack deadline only STUCK-1 comes back.
    let left = pull_until(&rest, SUBSCRIPTION, 1, Duration::from_secs(45)).await?;
    let keys: Vec<String> = left
        .iter()
        .filter_map(|m| m.attributes.get(CASE_KEY_ATTRIBUTE).cloned())
        .collect();
    assert_eq!(keys, vec!["STUCK-1".to_string()]);
    rest.acknowledge(
        SUBSCRIPTION,
        &left.iter().map(|m| m.ack_id.clone()).collect::<Vec<_>>(),
    )
    .await?;
    Ok(())
}
