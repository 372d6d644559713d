//! The full two-way scenario, written once and run on every stack that can host it: the
//! in-process engine on SQLite (tests/integration/scenario.rs) and the serverless stack on
//! the official Pub/Sub and Firestore emulators (tests/integration/e2e.rs). Both sides are
//! the sandbox emulators; the caller says how to let the connector catch up (`settle`).

use anyhow::{Context, ensure};
use csapi_emulator::{Emulator, EmulatorConfig, NewCustomerCase, RunningEmulator};
use jira_emulator::{JiraEmulator, JiraEmulatorConfig, NewIssue, RunningJiraEmulator};
use serde_json::Value;
use shared::adapters::csapi::{CsapiClient, CsapiConfig};
use shared::adapters::jira::{JiraAuth, JiraConfig, JiraCrm, JiraSite, Secret};
use shared::tasks::SyncSettings;
use std::future::Future;

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
        let mut s =
            SyncSettings::with_defaults(&self.google_config.organization, &self.own_identity());
        s.google_create_parent = PROJECT_PARENT.into();
        s.classification_id = csapi_emulator::model::default_classification_id().into();
        s
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

    fn google_case(&self, number: &str) -> anyhow::Result<Value> {
        self.google
            .emulator
            .case(number)
            .with_context(|| format!("Google case {number} is gone"))
    }

    fn issue(&self, key: &str) -> anyhow::Result<Value> {
        self.jira
            .emulator
            .issue(key)
            .with_context(|| format!("Jira issue {key} is gone"))
    }

    /// The Jira issues that carry this Google case's label.
    fn issues_for(&self, number: &str) -> Vec<Value> {
        let label = format!("gcp-case-{number}");
        self.jira
            .emulator
            .issues()
            .into_iter()
            .filter(|i| {
                i["labels"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|x| x == label.as_str()))
            })
            .collect()
    }

    /// The Google cases whose description names this Jira issue.
    fn cases_for(&self, issue_id: &str) -> Vec<Value> {
        let line = format!("casesync: jira case {issue_id}");
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

fn jira_bodies(issue: &Value) -> Vec<String> {
    issue["comments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["bodyText"].as_str().map(str::to_string))
        .collect()
}

fn count_prefix(bodies: &[String], prefix: &str) -> usize {
    bodies.iter().filter(|b| b.starts_with(prefix)).count()
}

fn filenames(items: &Value) -> Vec<String> {
    let mut v: Vec<String> = items
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["filename"].as_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

/// Runs the scenario: create, comments, attachments, priority and close in both
/// directions, each mirrored exactly once. `settle` lets the connector run until it has
/// caught up (it is called several times).
pub async fn run_full_scenario<F, Fut>(world: &World, mut settle: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let g = &world.google.emulator;
    let j = &world.jira.emulator;

    // 1. A case opened on each side, and one issue not meant for Google.
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
    let issue = j.create_issue_as(
        AGENT,
        NewIssue {
            summary: "VPN tunnel to europe-west1 flaps".into(),
            description: "Tunnel vpn-1 drops every 10 minutes.".into(),
            priority: "Medium".into(),
            sync_flag: true,
            ..NewIssue::default()
        },
    );
    let jkey = issue["key"].as_str().context("issue key")?.to_string();
    let jid = issue["id"].as_str().context("issue id")?.to_string();
    let quiet = j.create_issue_as(
        AGENT,
        NewIssue {
            summary: "Printer out of toner".into(),
            sync_flag: false,
            ..NewIssue::default()
        },
    );
    settle().await?;
    settle().await?;

    let issues = world.issues_for(&gnum);
    ensure!(
        issues.len() == 1,
        "Google case {gnum} has {} Jira counterparts",
        issues.len()
    );
    let gkey = issues[0]["key"].as_str().context("key")?.to_string();
    let gissue_id = issues[0]["id"].as_str().context("id")?.to_string();
    ensure!(
        issues[0]["description"]
            .as_str()
            .unwrap_or("")
            .starts_with("CONTENT MIRRORED FROM GOOGLE SUPPORT:\nThe data disk filled overnight."),
        "mirrored description: {}",
        issues[0]["description"]
    );
    ensure!(issues[0]["summary"] == "Persistent disk full on db-1");
    let now_syncing = format!("This case is now syncing with Company Case: {gissue_id}");
    ensure!(
        count_prefix(&google_bodies(&world.google_case(&gnum)?), &now_syncing) == 1,
        "one now-syncing comment on {gnum}"
    );
    let cases = world.cases_for(&jid);
    ensure!(
        cases.len() == 1,
        "Jira issue {jkey} has {} Google counterparts",
        cases.len()
    );
    let jnum = number_of(&cases[0]);
    ensure!(cases[0]["displayName"] == "VPN tunnel to europe-west1 flaps");
    ensure!(
        world.issue(&jkey)?["googleCaseName"]
            .as_str()
            .is_some_and(|n| n.ends_with(&format!("/cases/{jnum}"))),
        "the Jira issue names its Google case"
    );
    let quiet_id = quiet["id"].as_str().unwrap_or_default();
    ensure!(
        world.cases_for(quiet_id).is_empty(),
        "an unflagged issue reached Google"
    );

    // 2. Comments and attachments on both sides of both pairs.
    let gc = g.add_google_comment(
        &gnum,
        "Priya (Google)",
        "Please send the output of df -h.\nAnd lsblk.",
    );
    let gc2 = g.add_google_comment(&jnum, "Priya (Google)", "Looking into the tunnel.");
    let jc = j.add_comment_as(&gkey, AGENT, "Here it is:\n/dev/sdb 100%", false);
    let jc2 = j.add_comment_as(&jkey, AGENT, "It flapped again at 10:02.", false);
    g.add_google_attachment(
        &gnum,
        "Priya (Google)",
        "resize-steps.md",
        "text/markdown",
        b"1. gcloud compute disks resize\n",
    );
    j.add_attachment_as(
        &jkey,
        AGENT,
        "tunnel.pcap",
        "application/vnd.tcpdump.pcap",
        &[0xd4, 0xc3, 0xb2, 0xa1, 0, 1, 2, 3],
    );
    settle().await?;
    settle().await?;

    let gissue = world.issue(&gkey)?;
    let jcase = world.google_case(&jnum)?;
    let gcase_now = world.google_case(&gnum)?;
    let jissue = world.issue(&jkey)?;
    let gcid = last_segment(&gc["name"]);
    let gc2id = last_segment(&gc2["name"]);
    let jcid = jc["id"].as_str().unwrap_or_default().to_string();
    let jc2id = jc2["id"].as_str().unwrap_or_default().to_string();
    ensure!(
        count_prefix(
            &jira_bodies(&gissue),
            &format!(
                "[Google Comment {gcid} by Priya (Google)]\nPlease send the output of df -h.\nAnd lsblk."
            )
        ) == 1,
        "Google comment on {gnum} mirrored once: {:?}",
        jira_bodies(&gissue)
    );
    ensure!(
        count_prefix(
            &jira_bodies(&jissue),
            &format!("[Google Comment {gc2id} by Priya (Google)]")
        ) == 1,
        "Google comment on {jnum} mirrored once"
    );
    ensure!(
        count_prefix(
            &google_bodies(&gcase_now),
            &format!("[Company Comment {jcid} by Alex Agent]\nHere it is:\n/dev/sdb 100%")
        ) == 1,
        "Jira comment on {gkey} mirrored once: {:?}",
        google_bodies(&gcase_now)
    );
    ensure!(
        count_prefix(
            &google_bodies(&jcase),
            &format!("[Company Comment {jc2id} by Alex Agent]")
        ) == 1,
        "Jira comment on {jkey} mirrored once"
    );
    ensure!(
        count_prefix(&google_bodies(&gcase_now), "[Google Comment") == 0
            && count_prefix(&jira_bodies(&gissue), "[Company Comment") == 0,
        "no echo"
    );
    ensure!(
        filenames(&gissue["attachments"]) == vec!["resize-steps.md".to_string()],
        "attachment to Jira: {}",
        gissue["attachments"]
    );
    ensure!(
        filenames(&jcase["attachments"]) == vec!["tunnel.pcap".to_string()],
        "attachment to Google: {}",
        jcase["attachments"]
    );
    let copied_id = gissue["attachments"][0]["id"].as_str().unwrap_or_default();
    ensure!(
        j.attachment_bytes(copied_id).as_deref() == Some(&b"1. gcloud compute disks resize\n"[..]),
        "bytes to Jira"
    );
    let copied_name = jcase["attachments"][0]["name"].as_str().unwrap_or_default();
    ensure!(
        g.attachment_bytes(copied_name).as_deref()
            == Some(&[0xd4u8, 0xc3, 0xb2, 0xa1, 0, 1, 2, 3][..]),
        "bytes to Google"
    );

    // 3. Priority, each way.
    g.set_priority(&gnum, "P0")?;
    j.set_priority(&jkey, "Low")?;
    settle().await?;
    ensure!(
        world.issue(&gkey)?["priority"] == "Highest",
        "P0 reached Jira: {}",
        world.issue(&gkey)?["priority"]
    );
    ensure!(
        world.google_case(&jnum)?["priority"] == "P3",
        "Low reached Google: {}",
        world.google_case(&jnum)?["priority"]
    );

    // 4. Close, each way.
    g.close_case(&gnum)?;
    j.set_status(&jkey, "Done")?;
    settle().await?;
    settle().await?;
    ensure!(
        world.issue(&gkey)?["statusCategory"] == "done",
        "Google close reached Jira"
    );
    ensure!(
        world.google_case(&jnum)?["state"] == "CLOSED",
        "Jira close reached Google: {}",
        world.google_case(&jnum)?["state"]
    );

    // 5. More cycles change nothing: each item stays mirrored exactly once.
    settle().await?;
    let gissue = world.issue(&gkey)?;
    let gcase_now = world.google_case(&gnum)?;
    ensure!(
        count_prefix(&jira_bodies(&gissue), "[Google Comment") == 1,
        "{:?}",
        jira_bodies(&gissue)
    );
    ensure!(count_prefix(&google_bodies(&gcase_now), "[Company Comment") == 1);
    ensure!(count_prefix(&google_bodies(&gcase_now), &now_syncing) == 1);
    ensure!(gissue["attachments"].as_array().map(Vec::len) == Some(1));
    ensure!(
        world.issues_for(&gnum).len() == 1 && world.cases_for(&jid).len() == 1,
        "still one counterpart each"
    );
    Ok(())
}
