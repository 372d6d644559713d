//! The full two-way scenario between the Cloud Support API emulator and a real Request
//! Tracker 5 (its own instance from `scripts/rt.sh`), through the real adapters, on the
//! local runner's embedded store and queue: create, comments, attachments, priority and
//! close, in both directions, each item mirrored exactly once. The RT variant of
//! `casesync_tests::scenario::run_full_scenario`: the RT side is observed through the
//! agent's own REST2 client and the adapter's reads, not through an emulator's state.

use anyhow::{Context, ensure};
use casesync_tests::rt::{RtInstance, rt_priority};
use csapi_emulator::{Emulator, EmulatorConfig, NewCustomerCase, RunningEmulator};
use serde_json::{Value, json};
use shared::adapters::csapi::{CsapiClient, CsapiConfig};
use shared::adapters::rt::RtCrm;
use shared::adapters::sqlite_queue::EmbeddedQueue;
use shared::adapters::sqlite_store::SqliteStore;
use shared::clock::SystemClock;
use shared::domain::Priority;
use shared::ports::Crm;
use shared::retry_policy::FAST_QUEUE;
use shared::tasks::{Engine, SyncSettings};
use shared::worker::{DeliveryOutcome, process_delivery};
use std::sync::Arc;

const PROJECT_PARENT: &str = "projects/demo-project";

fn number_of(case: &Value) -> String {
    case["name"]
        .as_str()
        .and_then(|n| n.rsplit('/').next())
        .unwrap_or_default()
        .to_string()
}

fn last_segment(name: &Value) -> String {
    name.as_str()
        .and_then(|n| n.rsplit('/').next())
        .unwrap_or_default()
        .to_string()
}

fn google_bodies(case: &Value) -> Vec<String> {
    case["comments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["body"].as_str().map(str::to_string))
        .collect()
}

fn count_prefix(bodies: &[String], prefix: &str) -> usize {
    bodies.iter().filter(|b| b.starts_with(prefix)).count()
}

fn cf(ticket: &Value, name: &str) -> Option<String> {
    ticket["CustomFields"]
        .as_array()?
        .iter()
        .find(|f| f["name"] == name)?["values"]
        .as_array()?
        .first()?
        .as_str()
        .map(str::to_string)
}

struct RtWorld {
    google: RunningEmulator,
    google_config: EmulatorConfig,
    rt: RtInstance,
}

impl RtWorld {
    fn google_case(&self, number: &str) -> anyhow::Result<Value> {
        self.google
            .emulator
            .case(number)
            .with_context(|| format!("Google case {number} is gone"))
    }

    /// The Google cases whose description names this RT ticket.
    fn cases_for(&self, ticket: &str) -> Vec<Value> {
        let line = format!("casesync: rt case {ticket}");
        self.google
            .emulator
            .cases()
            .into_iter()
            .filter(|c| {
                c["description"]
                    .as_str()
                    .is_some_and(|d| d.trim_end().ends_with(&line))
            })
            .collect()
    }
}

async fn run_rt_scenario<F, Fut>(world: &RtWorld, crm: &RtCrm, mut settle: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let g = &world.google.emulator;
    let person = world.rt.person();
    let bodies = |id: String| async move {
        anyhow::Ok(
            crm.list_comments(&id, None)
                .await?
                .into_iter()
                .map(|c| c.body)
                .collect::<Vec<_>>(),
        )
    };

    // 1. A case opened on each side, and a ticket not meant for Google.
    let gcase = g.create_case_as_customer(NewCustomerCase {
        parent: PROJECT_PARENT.into(),
        display_name: "Persistent disk full on db-1".into(),
        description: "The data disk filled overnight.\nWe need help resizing it.".into(),
        priority: "P2".into(),
        creator_email: "dana@example.com".into(),
        creator_name: "Dana Customer".into(),
        ..NewCustomerCase::default()
    });
    let gnum = number_of(&gcase);
    ensure!(!gnum.is_empty(), "the emulator created no case: {gcase}");
    let jid = person
        .open_ticket(
            "VPN tunnel to europe-west1 flaps",
            "Tunnel vpn-1 drops every 10 minutes.",
            rt_priority(Priority::P2),
            true,
            None,
        )
        .await?;
    let quiet = person
        .open_ticket("Printer out of toner", "toner", 50, false, None)
        .await?;
    settle().await?;
    settle().await?;

    let tickets = person.tickets_naming(&gnum).await?;
    ensure!(
        tickets.len() == 1,
        "Google case {gnum} has {} RT counterparts",
        tickets.len()
    );
    let gid = tickets[0]["id"].as_str().context("ticket id")?.to_string();
    ensure!(tickets[0]["Subject"] == "Persistent disk full on db-1");
    let gticket = crm.get_case(&gid).await?;
    ensure!(
        gticket
            .description
            .starts_with("CONTENT MIRRORED FROM GOOGLE SUPPORT:\nThe data disk filled overnight."),
        "mirrored description: {}",
        gticket.description
    );
    ensure!(gticket.sync_flag, "the ticket casesync created is flagged");
    ensure!(
        gticket.priority == Some(Priority::P2) && tickets[0]["Priority"] == "50",
        "P2 is RT priority 50: {}",
        tickets[0]["Priority"]
    );
    let now_syncing = format!("This case is now syncing with Company Case: {gid}");
    ensure!(
        count_prefix(&google_bodies(&world.google_case(&gnum)?), &now_syncing) == 1,
        "one now-syncing comment on {gnum}"
    );
    let cases = world.cases_for(&jid);
    ensure!(
        cases.len() == 1,
        "RT ticket {jid} has {} Google counterparts",
        cases.len()
    );
    let jnum = number_of(&cases[0]);
    ensure!(cases[0]["displayName"] == "VPN tunnel to europe-west1 flaps");
    let jticket = person.ticket(&jid).await?;
    ensure!(
        cf(&jticket, world.rt.var("RT_CASE_FIELD"))
            .is_some_and(|n| n.ends_with(&format!("/cases/{jnum}"))),
        "the RT ticket names its Google case: {jticket}"
    );
    ensure!(
        world.cases_for(&quiet).is_empty(),
        "an unflagged ticket reached Google"
    );

    // 2. Comments and attachments on both sides of both pairs.
    let gc = g.add_google_comment(
        &gnum,
        "Priya (Google)",
        "Please send the output of df -h.\nAnd lsblk.",
    );
    let gc2 = g.add_google_comment(&jnum, "Priya (Google)", "Looking into the tunnel.");
    let jc = person
        .message(&gid, "comment", "Here it is:\n/dev/sdb 100%")
        .await?;
    let jc2 = person
        .message(&jid, "correspond", "It flapped again at 10:02.")
        .await?;
    g.add_google_attachment(
        &gnum,
        "Priya (Google)",
        "resize-steps.md",
        "text/markdown",
        b"1. gcloud compute disks resize\n",
    );
    person
        .attach(
            &jid,
            "comment",
            "tunnel.pcap",
            "application/vnd.tcpdump.pcap",
            &[0xd4, 0xc3, 0xb2, 0xa1, 0, 1, 2, 3],
        )
        .await?;
    settle().await?;
    settle().await?;

    let gcid = last_segment(&gc["name"]);
    let gc2id = last_segment(&gc2["name"]);
    let on_gticket = bodies(gid.clone()).await?;
    let on_jticket = bodies(jid.clone()).await?;
    let gcase_now = world.google_case(&gnum)?;
    let jcase = world.google_case(&jnum)?;
    ensure!(
        count_prefix(
            &on_gticket,
            &format!(
                "[Google Comment {gcid} by Priya (Google)]\nPlease send the output of df -h.\nAnd lsblk."
            )
        ) == 1,
        "Google comment on {gnum} mirrored once: {on_gticket:?}"
    );
    ensure!(
        count_prefix(
            &on_jticket,
            &format!("[Google Comment {gc2id} by Priya (Google)]")
        ) == 1,
        "Google comment on {jnum} mirrored once: {on_jticket:?}"
    );
    ensure!(
        count_prefix(
            &google_bodies(&gcase_now),
            &format!("[Company Comment {jc} by Alex Agent]\nHere it is:\n/dev/sdb 100%")
        ) == 1,
        "RT comment on {gid} mirrored once: {:?}",
        google_bodies(&gcase_now)
    );
    ensure!(
        count_prefix(
            &google_bodies(&jcase),
            &format!("[Company Comment {jc2} by Alex Agent]\nIt flapped again at 10:02.")
        ) == 1,
        "RT correspondence on {jid} mirrored once: {:?}",
        google_bodies(&jcase)
    );
    ensure!(
        count_prefix(&google_bodies(&gcase_now), "[Google Comment") == 0
            && count_prefix(&on_gticket, "[Company Comment") == 0,
        "no echo"
    );
    let files = crm.list_attachments(&gid).await?;
    ensure!(
        files.len() == 1 && files[0].filename == "resize-steps.md" && files[0].by_connector,
        "attachment to RT: {files:?}"
    );
    let mut got = Vec::new();
    let mut stream = crm.download_attachment(&gid, &files[0]).await?;
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        got.extend_from_slice(&chunk?);
    }
    ensure!(got == b"1. gcloud compute disks resize\n", "bytes to RT");
    let copied: Vec<&Value> = jcase["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    ensure!(
        copied.len() == 1 && copied[0]["filename"] == "tunnel.pcap",
        "attachment to Google: {}",
        jcase["attachments"]
    );
    let copied_name = copied[0]["name"].as_str().unwrap_or_default();
    ensure!(
        g.attachment_bytes(copied_name).as_deref()
            == Some(&[0xd4u8, 0xc3, 0xb2, 0xa1, 0, 1, 2, 3][..]),
        "bytes to Google"
    );

    // 3. Priority, each way.
    g.set_priority(&gnum, "P0")?;
    person.update(&jid, json!({ "Priority": 20 })).await?;
    settle().await?;
    let gticket = person.ticket(&gid).await?;
    ensure!(
        gticket["Priority"] == "100",
        "P0 reached RT: {}",
        gticket["Priority"]
    );
    ensure!(
        world.google_case(&jnum)?["priority"] == "P3",
        "RT 20 reached Google as P3: {}",
        world.google_case(&jnum)?["priority"]
    );

    // 4. Close, each way.
    g.close_case(&gnum)?;
    person.update(&jid, json!({ "Status": "resolved" })).await?;
    settle().await?;
    settle().await?;
    let gticket = person.ticket(&gid).await?;
    ensure!(
        gticket["Status"] == "resolved",
        "Google close reached RT: {}",
        gticket["Status"]
    );
    ensure!(
        world.google_case(&jnum)?["state"] == "CLOSED",
        "RT close reached Google: {}",
        world.google_case(&jnum)?["state"]
    );

    // 5. More cycles change nothing: each item stays mirrored exactly once.
    settle().await?;
    let on_gticket = bodies(gid.clone()).await?;
    let gcase_now = world.google_case(&gnum)?;
    ensure!(
        count_prefix(&on_gticket, "[Google Comment") == 1,
        "{on_gticket:?}"
    );
    ensure!(count_prefix(&google_bodies(&gcase_now), "[Company Comment") == 1);
    ensure!(count_prefix(&google_bodies(&gcase_now), &now_syncing) == 1);
    ensure!(crm.list_attachments(&gid).await?.len() == 1);
    ensure!(
        person.tickets_naming(&gnum).await?.len() == 1 && world.cases_for(&jid).len() == 1,
        "still one counterpart each"
    );
    ensure!(
        person.ticket(&gid).await?["Status"] == "resolved",
        "the closed ticket stayed closed"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rt_full_scenario_runs_between_the_csapi_emulator_and_a_real_rt() {
    // Its own RT: the contract checks' tickets on the shared one would be picked up too.
    let rt = tokio::task::spawn_blocking(RtInstance::start)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("starting RT: {e:#}"));
    let google_config = EmulatorConfig::default();
    let world = RtWorld {
        google: Emulator::spawn(google_config.clone()).await.unwrap(),
        google_config,
        rt,
    };
    let support = CsapiClient::connect(CsapiConfig::emulator(world.google.base_url.clone()))
        .await
        .unwrap();
    let crm = RtCrm::connect(world.rt.config()).await.unwrap();
    let observer = RtCrm::connect(world.rt.config()).await.unwrap();
    let mut settings = SyncSettings::with_defaults(
        &world.google_config.organization,
        &world.google_config.caller_email,
    );
    settings.google_create_parent = PROJECT_PARENT.into();
    settings.classification_id = csapi_emulator::model::default_classification_id().into();

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("casesync.sqlite");
    let queue = Arc::new(EmbeddedQueue::open(&db, FAST_QUEUE, Arc::new(SystemClock)).unwrap());
    let engine = Engine {
        support: Arc::new(support),
        crm: Arc::new(crm),
        store: Arc::new(SqliteStore::open(&db).unwrap()),
        queue: queue.clone(),
        clock: Arc::new(SystemClock),
        settings: Arc::new(settings),
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
    run_rt_scenario(&world, &observer, settle).await.unwrap();
    assert!(queue.dead_letters().unwrap().is_empty());
}
