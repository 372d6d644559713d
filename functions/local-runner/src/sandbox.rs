//! The bundled sandbox: the Cloud Support API emulator and the Jira emulator, run in this
//! process and reached over HTTP by the real adapters, seeded with demo cases, plus a script
//! that acts as a Google engineer and a Jira agent, so `make run` on a fresh clone shows
//! cases syncing in both directions within a minute.

use csapi_emulator::{Emulator, EmulatorConfig, NewCustomerCase, RunningEmulator};
use jira_emulator::{JiraEmulator, JiraEmulatorConfig, NewIssue, RunningJiraEmulator};
use shared::adapters::csapi::{CsapiClient, CsapiConfig};
use shared::adapters::jira::{JiraAuth, JiraConfig, JiraCrm, JiraSite, Secret};
use shared::config::RunnerConfig;
use shared::ports::{Crm, SupportApi};
use shared::tasks::SyncSettings;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::info;

/// The runner settings of the sandbox: lively intervals, a file under `.casesync/`, and the
/// fast retry profile; `CASESYNC_RUNNER__DATABASE` and `__WORKERS` still override them.
pub fn runner_config(env: impl IntoIterator<Item = (String, String)>) -> RunnerConfig {
    let mut runner = RunnerConfig {
        poll_google_every: Duration::from_secs(10),
        poll_company_every: Duration::from_secs(10),
        detect_outages_every: Duration::from_secs(60),
        database: ".casesync/sandbox.sqlite".into(),
        queue_profile: "fast".into(),
        ..RunnerConfig::default()
    };
    for (k, v) in env {
        match k.as_str() {
            "CASESYNC_RUNNER__DATABASE" => runner.database = v,
            "CASESYNC_RUNNER__WORKERS" => runner.workers = v.parse().unwrap_or(runner.workers),
            _ => {}
        }
    }
    if let Some(dir) = std::path::Path::new(&runner.database).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    runner
}

pub struct Sandbox {
    pub support: Arc<dyn SupportApi>,
    pub crm: Arc<dyn Crm>,
    pub settings: SyncSettings,
    google: RunningEmulator,
    jira: RunningJiraEmulator,
}

const AGENT: &str = "agent-1";

impl Sandbox {
    pub async fn start() -> anyhow::Result<Sandbox> {
        let google_config = EmulatorConfig::default();
        let own_identity = google_config.caller_email.clone();
        let project = google_config
            .projects
            .first()
            .cloned()
            .unwrap_or_else(|| "demo-project".into());
        let google = Emulator::spawn(google_config.clone()).await?;
        let jira_config = JiraEmulatorConfig::default();
        let connector = jira_config
            .users
            .first()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the Jira emulator has no users"))?;
        let jira = JiraEmulator::spawn(jira_config.clone()).await?;
        info!(google = %google.base_url, jira = %jira.base_url, "sandbox: Cloud Support API and Jira emulators listening");

        let support = CsapiClient::connect(CsapiConfig::emulator(google.base_url.clone())).await?;
        let crm = JiraCrm::connect(JiraConfig::new(JiraSite {
            base_url: &jira.base_url,
            auth: JiraAuth::Basic {
                email: connector.email.clone(),
                api_token: Secret::new(connector.api_token.clone()),
            },
            project_key: &jira_config.project_key,
            issue_type: "Task",
            sync_flag_field: &jira_config.sync_flag_field,
            google_case_field: &jira_config.google_case_field,
        }))
        .await?;

        let parent = format!("projects/{project}");
        let classification = csapi_emulator::model::default_classification_id().to_string();
        let mut settings = SyncSettings::with_defaults(&google_config.organization, &own_identity);
        settings.google_create_parent = parent.clone();
        settings.classification_id = classification;

        let sandbox = Sandbox {
            support: Arc::new(support),
            crm: Arc::new(crm),
            settings,
            google,
            jira,
        };
        sandbox.seed(&parent);
        Ok(sandbox)
    }

    fn seed(&self, parent: &str) {
        let g = &self.google.emulator;
        for (title, description, priority) in [
            (
                "VM instance does not boot after resize",
                "Since 09:12 UTC the instance web-1 loops in the boot loader.",
                "P1",
            ),
            (
                "Quota increase for GPUs in europe-west4",
                "We need 16 more L4 GPUs for a launch.",
                "P3",
            ),
        ] {
            g.create_case_as_customer(NewCustomerCase {
                parent: parent.into(),
                display_name: title.into(),
                description: description.into(),
                priority: priority.into(),
                creator_email: "dana@example.com".into(),
                creator_name: "Dana (Customer)".into(),
                ..NewCustomerCase::default()
            });
        }
        let j = &self.jira.emulator;
        j.create_issue_as(
            AGENT,
            NewIssue {
                summary: "Cloud SQL failover took 9 minutes".into(),
                description: "Production failover on db-main was much slower than documented."
                    .into(),
                priority: "High".into(),
                sync_flag: true,
                ..NewIssue::default()
            },
        );
        j.create_issue_as(
            AGENT,
            NewIssue {
                summary: "Printer on floor 3 is out of toner".into(),
                description: "Not for Google: this issue is not flagged.".into(),
                priority: "Lowest".into(),
                sync_flag: false,
                ..NewIssue::default()
            },
        );
        info!("sandbox seeded: 2 Google cases, 1 flagged and 1 unflagged Jira issue");
    }

    /// Acts as people on both sides, one step every few seconds, so there is something to
    /// sync while the runner runs.
    pub fn demo_activity(
        &self,
        mut stop: watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let google = self.google.emulator.clone();
        let jira = self.jira.emulator.clone();
        async move {
            let mut step = 0usize;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(12)) => {},
                    _ = stop.changed() => return,
                }
                let first_case = google.cases().into_iter().map(|c| number_of(&c)).min();
                let Some(case) = first_case else { continue };
                let issue_of = |case: &str| {
                    jira.issues()
                        .into_iter()
                        .find(|i| i.to_string().contains(&format!("gcp-case-{case}")))
                        .and_then(|i| i["key"].as_str().map(str::to_string))
                };
                let flagged_issue = jira
                    .issues()
                    .into_iter()
                    .filter_map(|i| i["key"].as_str().map(str::to_string))
                    .min();
                match step {
                    0 => {
                        google.add_google_comment(
                            &case,
                            "Priya (Google Cloud Support)",
                            "Thanks for the report. Could you attach the serial console output?",
                        );
                        info!(case = %case, "sandbox: a Google engineer commented");
                    }
                    1 => {
                        match issue_of(&case) {
                            Some(key) => {
                                jira.add_comment_as(
                                    &key,
                                    AGENT,
                                    "Attached the serial console log.\nIt stops at the fsck step.",
                                    false,
                                );
                                jira.add_attachment_as(&key, AGENT, "serial-console.log", "text/plain", b"[    0.000000] Linux version 6.1\n[    1.234567] EXT4-fs error\n");
                                info!(issue = %key, "sandbox: a Jira agent commented and attached a file");
                            }
                            None => continue,
                        }
                    }
                    2 => {
                        let _ = google.set_priority(&case, "P0");
                        info!(case = %case, "sandbox: Google raised the priority to P0");
                    }
                    3 => {
                        if let Some(key) = flagged_issue {
                            jira.add_comment_as(&key, AGENT, "Any update from Google?", false);
                            let _ = jira.set_priority(&key, "Highest");
                            info!(issue = %key, "sandbox: a Jira agent commented and raised the priority");
                        }
                    }
                    4 => {
                        google.add_google_attachment(
                            &case,
                            "Priya (Google Cloud Support)",
                            "fix-instructions.txt",
                            "text/plain",
                            b"Detach the boot disk, run fsck, reattach.\n",
                        );
                        google.add_google_comment(
                            &case,
                            "Priya (Google Cloud Support)",
                            "The attached steps should fix it. Closing once you confirm.",
                        );
                        info!(case = %case, "sandbox: a Google engineer attached a file and commented");
                    }
                    5 => {
                        let _ = google.close_case(&case);
                        info!(case = %case, "sandbox: Google closed the case");
                    }
                    6 => {
                        if let Some(key) = flagged_issue {
                            let _ = jira.set_status(&key, "Done");
                            info!(issue = %key, "sandbox: a Jira agent resolved an issue");
                        }
                    }
                    _ => return,
                }
                step += 1;
            }
        }
    }
}

fn number_of(case: &serde_json::Value) -> String {
    case["name"]
        .as_str()
        .and_then(|n| n.rsplit('/').next())
        .unwrap_or_default()
        .to_string()
}
