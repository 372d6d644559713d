//! The bundled sandbox: an emulated Google side and an emulated CRM, seeded with demo cases,
//! and a script that acts as a Google engineer and a support agent, so `make run` on a fresh
//! clone shows cases syncing in both directions within a minute.

use shared::clock::Clock;
use shared::config::RunnerConfig;
use shared::domain::Priority;
use shared::ports::{Crm, SupportApi};
use shared::tasks::SyncSettings;
use shared::testing::{MemoryCrm, MemorySupportApi};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::info;

pub const SANDBOX_IDENTITY: &str = "casesync@demo-project.iam.gserviceaccount.com";
const PARENT: &str = "projects/demo-project";

/// The runner settings of the sandbox: lively intervals, a file under `.casesync/`, and the
/// fast retry profile; `CASESYNC_RUNNER__*` variables still override them.
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
    google: Arc<MemorySupportApi>,
    company: Arc<MemoryCrm>,
    google_cases: Vec<String>,
    crm_cases: Vec<String>,
}

impl Sandbox {
    pub async fn start(clock: Arc<dyn Clock>) -> anyhow::Result<Sandbox> {
        let google = Arc::new(MemorySupportApi::new(clock.clone(), SANDBOX_IDENTITY));
        let company = Arc::new(MemoryCrm::new(clock));
        let g1 = google.open_case_as_customer(
            PARENT,
            "VM instance does not boot after resize",
            "Since 09:12 UTC the instance web-1 loops in the boot loader.",
            Priority::P1,
            None,
        );
        let g2 = google.open_case_as_customer(
            PARENT,
            "Quota increase for GPUs in europe-west4",
            "We need 16 more L4 GPUs for a launch.",
            Priority::P3,
            None,
        );
        let c1 = company.open_case_as_agent(
            "Cloud SQL failover took 9 minutes",
            "Production failover on db-main was much slower than documented.",
            Priority::P2,
            true,
            None,
        );
        company.open_case_as_agent(
            "Printer on floor 3 is out of toner",
            "Not for Google: this case is not flagged.",
            Priority::P4,
            false,
            None,
        );
        info!(
            google_cases = 2,
            crm_cases = 2,
            "sandbox seeded: 2 Google cases, 1 flagged and 1 unflagged CRM case"
        );
        let mut settings = SyncSettings::with_defaults(PARENT, SANDBOX_IDENTITY);
        settings.classification_id = "demo-classification".into();
        Ok(Sandbox {
            support: google.clone(),
            crm: company.clone(),
            settings,
            google,
            company,
            google_cases: vec![g1.name, g2.name],
            crm_cases: vec![c1.id],
        })
    }

    /// Acts as people on both sides, one step every few seconds, so there is something to
    /// sync while the runner runs.
    pub fn demo_activity(
        &self,
        mut stop: watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let google = self.google.clone();
        let company = self.company.clone();
        let g = self.google_cases.clone();
        let c = self.crm_cases.clone();
        async move {
            let mut step = 0usize;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(15)) => {},
                    _ = stop.changed() => return,
                }
                let crm_of = |name: &str| {
                    company
                        .cases()
                        .into_iter()
                        .find(|x| x.case.google_case_name.as_deref() == Some(name))
                        .map(|x| x.case.id)
                };
                match step {
                    0 => {
                        google.comment_as_engineer(
                            &g[0],
                            "Priya (Google Cloud Support)",
                            "Thanks for the report. Could you attach the serial console output?",
                        );
                        info!(case = %g[0], "sandbox: a Google engineer commented");
                    }
                    1 => {
                        if let Some(id) = crm_of(&g[0]) {
                            company.comment_as_agent(
                                &id,
                                "Sam (Platform team)",
                                "Attached the serial console log.",
                            );
                            company.attach_as_agent(
                                &id,
                                "Sam (Platform team)",
                                "serial-console.log",
                                b"[    0.000000] Linux version 6.1\n[    1.234567] EXT4-fs error\n",
                            );
                            info!(crm_case = %id, "sandbox: an agent commented and attached a file");
                        }
                    }
                    2 => {
                        google.set_priority_as_google(&g[0], Priority::P0);
                        info!(case = %g[0], "sandbox: Google raised the priority to P0");
                    }
                    3 => {
                        company.comment_as_agent(
                            &c[0],
                            "Sam (Platform team)",
                            "Any update from Google?",
                        );
                        company.set_priority_as_agent(&c[0], Priority::P1);
                        info!(crm_case = %c[0], "sandbox: an agent commented and raised the priority to P1");
                    }
                    4 => {
                        google.attach_as_engineer(
                            &g[0],
                            "Priya (Google Cloud Support)",
                            "fix-instructions.txt",
                            b"Detach the boot disk, run fsck, reattach.\n",
                        );
                        google.comment_as_engineer(
                            &g[0],
                            "Priya (Google Cloud Support)",
                            "The attached steps should fix it. Closing once you confirm.",
                        );
                        info!(case = %g[0], "sandbox: a Google engineer attached a file and commented");
                    }
                    5 => {
                        google.close_as_google(&g[0]);
                        info!(case = %g[0], "sandbox: Google closed the case");
                    }
                    6 => {
                        if let Some(id) = crm_of(&g[1]) {
                            company.set_closed_as_agent(&id, true);
                            info!(crm_case = %id, "sandbox: an agent closed a case in the CRM");
                        }
                    }
                    _ => return,
                }
                step += 1;
            }
        }
    }
}
