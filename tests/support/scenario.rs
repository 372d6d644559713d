//! The full two-way scenario, written once for every CRM and every stack: `run_two_way`
//! drives the CRM through a [`CrmDriver`] (a person in the in-memory CRM, the Jira emulator
//! or a real Request Tracker) and Google through the CSAPI emulator, and the caller says how
//! to let the connector catch up (`settle`). It runs on the in-process engine on SQLite
//! ([`LocalEngine`]: tests/integration/scenario.rs for the in-memory CRM and Jira,
//! tests/integration/rt_scenario.rs for RT) and on the serverless stack on the official
//! Pub/Sub and Firestore emulators (tests/integration/e2e.rs, through `run_full_scenario`).
//! One scenario instead of a copy per CRM: a new CRM brings a driver and one invocation.

use crate::crm_driver::{CrmDriver, JiraDriver};
use anyhow::{Context, ensure};
use csapi_emulator::{Emulator, EmulatorConfig, NewCustomerCase, RunningEmulator};
use jira_emulator::{JiraEmulator, JiraEmulatorConfig, RunningJiraEmulator};
use serde_json::Value;
use shared::adapters::csapi::{CsapiClient, CsapiConfig};
use shared::adapters::jira::{JiraAuth, JiraConfig, JiraCrm, JiraSite, Secret};
use shared::adapters::sqlite_queue::EmbeddedQueue;
use shared::adapters::sqlite_store::SqliteStore;
use shared::clock::SystemClock;
use shared::domain::Priority;
use shared::ports::{Crm, SupportApi};
use shared::retry_policy::FAST_QUEUE;
use shared::tasks::{Engine, SyncSettings};
use shared::worker::{DeliveryOutcome, process_delivery};
use std::future::Future;
use std::sync::Arc;

pub const AGENT: &str = "agent-1";
pub const PROJECT_PARENT: &str = "projects/demo-project";

/// Both emulated systems.
pub struct World {
    pub google: RunningEmulator,
    pub jira: RunningJiraEmulator,
    pub google_config: EmulatorConfig,
    pub jira_config: JiraEmulatorConfig,
}

impl World {
    pub async fn start() -> anyhow::Result<World> {
        let google_config = EmulatorConfig::default();
        let jira_config = JiraEmulatorConfig::default();
        Ok(World {
            google: Emulator::spawn(google_config.clone()).await?,
            jira: JiraEmulator::spawn(jira_config.clone()).await?,
            google_config,
            jira_config,
        })
    }

    pub fn own_identity(&self) -> String {
        self.google_config.caller_email.clone()
    }

    /// The engine settings for this world: poll the organization, create in the project.
    pub fn settings(&self) -> SyncSettings {
        google_settings(&self.google_config)
    }

    pub fn jira_config(&self) -> JiraConfig {
        let connector = &self.jira_config.users[0];
        JiraConfig::new(JiraSite {
            base_url: &self.jira.base_url,
            auth: JiraAuth::Basic {
                email: connector.email.clone(),
                api_token: Secret::new(connector.api_token.clone()),
            },
            project_key: &self.jira_config.project_key,
            issue_type: "Task",
            sync_flag_field: &self.jira_config.sync_flag_field,
            google_case_field: &self.jira_config.google_case_field,
        })
    }

    pub async fn adapters(&self) -> anyhow::Result<(CsapiClient, JiraCrm)> {
        let support =
            CsapiClient::connect(CsapiConfig::emulator(self.google.base_url.clone())).await?;
        let crm = JiraCrm::connect(self.jira_config()).await?;
        Ok((support, crm))
    }
}

/// The engine settings for a CSAPI emulator: poll its organization, create in the project.
pub fn google_settings(google: &EmulatorConfig) -> SyncSettings {
    let mut s = SyncSettings::with_defaults(&google.organization, &google.caller_email);
    s.google_create_parent = PROJECT_PARENT.into();
    s.classification_id = csapi_emulator::model::default_classification_id().into();
    s
}

/// The in-process engine on the local runner's embedded store and queue (SQLite in a
/// temporary directory), settled by polls and a drain of the queue.
pub struct LocalEngine {
    pub engine: Engine,
    pub queue: Arc<EmbeddedQueue>,
    _dir: tempfile::TempDir,
}

impl LocalEngine {
    pub fn new(
        support: Arc<dyn SupportApi>,
        crm: Arc<dyn Crm>,
        settings: SyncSettings,
    ) -> anyhow::Result<LocalEngine> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("casesync.sqlite");
        let queue = Arc::new(EmbeddedQueue::open(&db, FAST_QUEUE, Arc::new(SystemClock))?);
        let engine = Engine {
            support,
            crm,
            store: Arc::new(SqliteStore::open(&db)?),
            queue: queue.clone(),
            clock: Arc::new(SystemClock),
            settings: Arc::new(settings),
        };
        Ok(LocalEngine {
            engine,
            queue,
            _dir: dir,
        })
    }

    /// One catch-up: poll both sides, then run every queued sync until the queue is
    /// empty; a sync that does not succeed fails the settle.
    pub async fn settle(&self) -> anyhow::Result<()> {
        self.engine.poll_google().await?;
        self.engine.poll_company().await?;
        while let Some(d) = self.queue.receive()? {
            match process_delivery(&self.engine, &self.queue, &d).await? {
                DeliveryOutcome::Synced(_) => {}
                other => anyhow::bail!("a sync did not succeed: {other:?}"),
            }
        }
        Ok(())
    }

    /// The dead letters so far (a clean run has none).
    pub fn dead_letters(&self) -> anyhow::Result<usize> {
        Ok(self.queue.dead_letters()?.len())
    }
}

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

fn google_case(g: &Emulator, number: &str) -> anyhow::Result<Value> {
    g.case(number)
        .with_context(|| format!("Google case {number} is gone"))
}

/// The Google cases whose description names this CRM ticket.
fn cases_for(g: &Emulator, kind: &str, ticket: &str) -> Vec<Value> {
    let line = format!("casesync: {kind} case {ticket}");
    g.cases()
        .into_iter()
        .filter(|c| {
            c["description"]
                .as_str()
                .is_some_and(|d| d.trim_end().ends_with(&line))
        })
        .collect()
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

async fn crm_bodies<D: CrmDriver + ?Sized>(crm: &D, ticket: &str) -> anyhow::Result<Vec<String>> {
    Ok(crm
        .comments(ticket)
        .await?
        .into_iter()
        .map(|c| c.body)
        .collect())
}

/// The Jira run of [`run_two_way`] on a [`World`], for the stacks built around it.
pub async fn run_full_scenario<F, Fut>(world: &World, settle: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let jira = JiraDriver::new(world.jira.emulator.clone());
    run_two_way(&world.google.emulator, &jira, settle).await
}

/// Runs the scenario against any CRM: create, comments (an internal one and a public one),
/// attachments with their bytes, priority in the CRM's own words, and close, in both
/// directions, each item mirrored exactly once and never echoed, with authors read back;
/// an unflagged ticket stays out of Google; unflagging pauses a pair and flagging resumes
/// it; a ticket reopened after close is told once that Google's case stays closed. `settle` lets the connector run until it has caught up (it is called
/// several times; polls back to back may run one extra, harmless sync).
pub async fn run_two_way<D, F, Fut>(g: &Emulator, crm: &D, mut settle: F) -> anyhow::Result<()>
where
    D: CrmDriver + ?Sized,
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let kind = crm.kind().to_string();
    let person = crm.person_name().to_string();

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
    let medium = crm.priority_word(Priority::P2);
    let tid = crm
        .create_ticket(
            "VPN tunnel to europe-west1 flaps",
            "Tunnel vpn-1 drops every 10 minutes.",
            &medium,
            true,
        )
        .await?;
    let quiet = crm
        .create_ticket("Printer out of toner", "toner", &medium, false)
        .await?;
    settle().await?;
    settle().await?;

    let tickets = crm.tickets_for_google_case(&gnum).await?;
    ensure!(
        tickets.len() == 1,
        "Google case {gnum} has {} {kind} counterparts",
        tickets.len()
    );
    let gid = tickets[0].id.clone();
    let gticket = crm.ticket(&gid).await?;
    ensure!(
        gticket.summary == "Persistent disk full on db-1",
        "mirrored summary: {}",
        gticket.summary
    );
    ensure!(
        gticket
            .description
            .starts_with("CONTENT MIRRORED FROM GOOGLE SUPPORT:\nThe data disk filled overnight."),
        "mirrored description: {}",
        gticket.description
    );
    ensure!(gticket.flagged, "the ticket casesync created is flagged");
    ensure!(
        gticket.level == Some(Priority::P2) && gticket.priority == medium,
        "P2 is {kind} priority {medium}: {} ({:?})",
        gticket.priority,
        gticket.level
    );
    ensure!(
        gticket
            .google_case_name
            .as_deref()
            .is_some_and(|n| n.ends_with(&format!("/cases/{gnum}"))),
        "the {kind} ticket names its Google case {gnum}: {:?}",
        gticket.google_case_name
    );
    let now_syncing = format!("This case is now syncing with Company Case: {gid}");
    ensure!(
        count_prefix(&google_bodies(&google_case(g, &gnum)?), &now_syncing) == 1,
        "one now-syncing comment on {gnum}"
    );
    let cases = cases_for(g, &kind, &tid);
    ensure!(
        cases.len() == 1,
        "{kind} ticket {tid} has {} Google counterparts",
        cases.len()
    );
    let jnum = number_of(&cases[0]);
    ensure!(cases[0]["displayName"] == "VPN tunnel to europe-west1 flaps");
    let tticket = crm.ticket(&tid).await?;
    ensure!(
        tticket
            .google_case_name
            .as_deref()
            .is_some_and(|n| n.ends_with(&format!("/cases/{jnum}"))),
        "the {kind} ticket names its Google case: {tticket:?}"
    );
    ensure!(
        cases_for(g, &kind, &quiet).is_empty(),
        "an unflagged ticket reached Google"
    );

    // 2. Comments and attachments on both sides of both pairs: an internal comment on the
    // ticket casesync opened, a public one on the person's own.
    let gc = g.add_google_comment(
        &gnum,
        "Priya (Google)",
        "Please send the output of df -h.\nAnd lsblk.",
    );
    let gc2 = g.add_google_comment(&jnum, "Priya (Google)", "Looking into the tunnel.");
    let jc = crm
        .comment(&gid, "Here it is:\n/dev/sdb 100%", true)
        .await?;
    let jc2 = crm
        .comment(&tid, "It flapped again at 10:02.", false)
        .await?;
    g.add_google_attachment(
        &gnum,
        "Priya (Google)",
        "resize-steps.md",
        "text/markdown",
        b"1. gcloud compute disks resize\n",
    );
    crm.attach(
        &tid,
        "tunnel.pcap",
        "application/vnd.tcpdump.pcap",
        &[0xd4, 0xc3, 0xb2, 0xa1, 0, 1, 2, 3],
    )
    .await?;
    settle().await?;
    settle().await?;

    let gcid = last_segment(&gc["name"]);
    let gc2id = last_segment(&gc2["name"]);
    let on_gticket = crm_bodies(crm, &gid).await?;
    let on_tticket = crm_bodies(crm, &tid).await?;
    let gcase_now = google_case(g, &gnum)?;
    let jcase = google_case(g, &jnum)?;
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
            &on_tticket,
            &format!("[Google Comment {gc2id} by Priya (Google)]")
        ) == 1,
        "Google comment on {jnum} mirrored once: {on_tticket:?}"
    );
    ensure!(
        count_prefix(
            &google_bodies(&gcase_now),
            &format!("[Company Comment {jc} by {person}]\nHere it is:\n/dev/sdb 100%")
        ) == 1,
        "{kind} internal comment on {gid} mirrored once: {:?}",
        google_bodies(&gcase_now)
    );
    ensure!(
        count_prefix(
            &google_bodies(&jcase),
            &format!("[Company Comment {jc2} by {person}]\nIt flapped again at 10:02.")
        ) == 1,
        "{kind} public comment on {tid} mirrored once: {:?}",
        google_bodies(&jcase)
    );
    ensure!(
        count_prefix(&google_bodies(&gcase_now), "[Google Comment") == 0
            && count_prefix(&on_gticket, "[Company Comment") == 0,
        "no echo"
    );
    // The authors, read back: the person's comments are the person's, the mirrors casesync's.
    for (ticket, mine) in [(&gid, &jc), (&tid, &jc2)] {
        for note in crm.comments(ticket).await? {
            if &note.id == mine {
                ensure!(
                    note.author == person && !note.by_connector,
                    "the person's comment on {ticket} is theirs: {note:?}"
                );
            } else if note.body.starts_with("[Google Comment") {
                ensure!(
                    note.by_connector,
                    "the mirrored comment on {ticket} is casesync's: {note:?}"
                );
            }
        }
    }
    let files = crm.attachments(&gid).await?;
    ensure!(
        files.len() == 1 && files[0].filename == "resize-steps.md" && files[0].by_connector,
        "attachment to {kind}: {files:?}"
    );
    ensure!(
        files[0].bytes == b"1. gcloud compute disks resize\n",
        "bytes to {kind}"
    );
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
    let own = crm.attachments(&tid).await?;
    ensure!(
        own.len() == 1 && own[0].author == person && !own[0].by_connector,
        "the person's file on {tid} is theirs and alone: {own:?}"
    );

    // 3. Priority, each way, in the CRM's own words.
    let highest = crm.priority_word(Priority::P0);
    let low = crm.priority_word(Priority::P3);
    g.set_priority(&gnum, "P0")?;
    crm.set_priority(&tid, &low).await?;
    settle().await?;
    let gticket = crm.ticket(&gid).await?;
    ensure!(
        gticket.priority == highest,
        "P0 reached {kind} as {highest}: {}",
        gticket.priority
    );
    ensure!(
        google_case(g, &jnum)?["priority"] == "P3",
        "{kind} {low} reached Google as P3: {}",
        google_case(g, &jnum)?["priority"]
    );

    // 4. Unflagged, the person's ticket pauses: Google's comment waits; flagged again, it
    // arrives, once.
    crm.set_flag(&tid, false).await?;
    settle().await?;
    let gc3 = g.add_google_comment(&jnum, "Priya (Google)", "Any news on the tunnel?");
    let gc3_marker = format!(
        "[Google Comment {} by Priya (Google)]",
        last_segment(&gc3["name"])
    );
    settle().await?;
    let paused = crm_bodies(crm, &tid).await?;
    ensure!(
        count_prefix(&paused, &gc3_marker) == 0,
        "an unflagged {kind} ticket received Google's comment: {paused:?}"
    );
    crm.set_flag(&tid, true).await?;
    settle().await?;
    settle().await?;
    let resumed = crm_bodies(crm, &tid).await?;
    ensure!(
        count_prefix(&resumed, &gc3_marker) == 1,
        "flagged again, the {kind} ticket has Google's comment once: {resumed:?}"
    );

    // 5. Close, each way.
    g.close_case(&gnum)?;
    crm.close(&tid).await?;
    settle().await?;
    settle().await?;
    ensure!(
        crm.ticket(&gid).await?.closed,
        "Google close reached {kind}: {:?}",
        crm.ticket(&gid).await?
    );
    ensure!(
        google_case(g, &jnum)?["state"] == "CLOSED",
        "{kind} close reached Google: {}",
        google_case(g, &jnum)?["state"]
    );

    // 6. The person reopens their ticket: Google's case stays closed and the ticket is
    // told so, once.
    crm.reopen(&tid).await?;
    settle().await?;
    settle().await?;
    ensure!(
        !crm.ticket(&tid).await?.closed,
        "the reopened {kind} ticket is open"
    );
    ensure!(
        google_case(g, &jnum)?["state"] == "CLOSED",
        "a reopened {kind} ticket reopened Google's case"
    );
    let notice = shared::domain::markers::google_case_closed_notice(
        cases[0]["name"].as_str().unwrap_or_default(),
    );
    let told = crm_bodies(crm, &tid).await?;
    ensure!(
        told.iter().filter(|b| b.contains(&notice)).count() == 1,
        "the reopened {kind} ticket is told once that Google's case is closed: {told:?}"
    );

    // 7. More cycles change nothing: each item stays mirrored exactly once.
    settle().await?;
    let on_gticket = crm_bodies(crm, &gid).await?;
    let gcase_now = google_case(g, &gnum)?;
    ensure!(
        count_prefix(&on_gticket, "[Google Comment") == 1,
        "{on_gticket:?}"
    );
    ensure!(count_prefix(&google_bodies(&gcase_now), "[Company Comment") == 1);
    ensure!(count_prefix(&google_bodies(&gcase_now), &now_syncing) == 1);
    ensure!(crm.attachments(&gid).await?.len() == 1);
    ensure!(
        crm.tickets_for_google_case(&gnum).await?.len() == 1
            && cases_for(g, &kind, &tid).len() == 1,
        "still one counterpart each"
    );
    ensure!(
        crm.ticket(&gid).await?.closed,
        "the closed ticket stayed closed"
    );
    Ok(())
}

impl World {
    /// The environment a function binary needs to run against this world's emulators, the
    /// official Firestore and Pub/Sub emulators (at `firestore_host`, `pubsub_host`) and the
    /// Jira emulator as its CRM; callers add their shim and per-function settings.
    pub fn function_env(
        &self,
        project: &str,
        database: &str,
        firestore_host: String,
        pubsub_host: String,
    ) -> Vec<(&'static str, String)> {
        let jira = self.jira_config();
        let connector = &self.jira_config.users[0];
        vec![
            ("CASESYNC_FIRESTORE__PROJECT", project.into()),
            ("CASESYNC_FIRESTORE__DATABASE", database.into()),
            ("CASESYNC_FIRESTORE__EMULATOR_HOST", firestore_host),
            ("CASESYNC_PUBSUB__PROJECT", project.into()),
            ("CASESYNC_PUBSUB__EMULATOR_HOST", pubsub_host),
            (
                "CASESYNC_GOOGLE__PARENT",
                self.google_config.organization.clone(),
            ),
            (
                "CASESYNC_GOOGLE__CREATE_PARENT",
                "projects/demo-project".into(),
            ),
            (
                "CASESYNC_GOOGLE__CLASSIFICATION_ID",
                csapi_emulator::model::default_classification_id().into(),
            ),
            (
                "CASESYNC_GOOGLE__OWN_IDENTITIES",
                format!("[\"{}\"]", self.own_identity()),
            ),
            ("CASESYNC_GOOGLE__ENDPOINT", self.google.base_url.clone()),
            ("CASESYNC_GOOGLE__ANONYMOUS", "true".into()),
            ("CASESYNC_CRM__KIND", "jira".into()),
            ("CASESYNC_CRM__JIRA__BASE_URL", jira.base_url.clone()),
            ("CASESYNC_CRM__JIRA__EMAIL", connector.email.clone()),
            ("CASESYNC_CRM__JIRA__API_TOKEN", connector.api_token.clone()),
            ("CASESYNC_CRM__JIRA__PROJECT_KEY", jira.project_key.clone()),
            ("CASESYNC_CRM__JIRA__ISSUE_TYPE", jira.issue_type.clone()),
            (
                "CASESYNC_CRM__JIRA__SYNC_FLAG_FIELD",
                jira.sync_flag_field.clone(),
            ),
            (
                "CASESYNC_CRM__JIRA__GOOGLE_CASE_FIELD",
                jira.google_case_field.clone(),
            ),
        ]
    }
}
