//! Wiring and scheduling: builds the engine on the embedded store and queue, runs the four
//! scheduled tasks on their timers and a pool of workers on the queue, and stops cleanly on
//! Ctrl-C or SIGTERM, letting in-flight syncs finish.

use anyhow::Context;
#[cfg(not(feature = "sandbox"))]
use anyhow::bail;
use shared::adapters::sqlite_queue::{EmbeddedDeadLetters, EmbeddedQueue};
use shared::adapters::sqlite_store::SqliteStore;
use shared::clock::{Clock, SystemClock};
use shared::compose::Plan;
use shared::config::{Config, RunnerConfig};
use shared::deploy;
use shared::retry_policy::QueuePolicy;
use shared::tasks::{Engine, TaskError};
use shared::worker::{DeliveryOutcome, process_delivery};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{error, info, warn};

/// A task's report as JSON (what the log shows of it). A macro, so that the report's type
/// needs no `serde` bound named here (the runner does not depend on serde itself).
macro_rules! report {
    ($r:expr) => {
        $r.map(|v| serde_json::to_value(v).unwrap_or_default())
    };
}

/// Everything a run needs, built from configuration or from the sandbox.
pub struct Setup {
    pub engine: Engine,
    pub queue: Arc<EmbeddedQueue>,
    pub runner: RunnerConfig,
    /// Keeps the sandbox (its emulated systems and demo activity) alive.
    #[cfg(feature = "sandbox")]
    pub sandbox: Option<crate::sandbox::Sandbox>,
}

impl Setup {
    pub async fn build(config_path: Option<&Path>) -> anyhow::Result<Setup> {
        match config_path {
            Some(path) => {
                let config =
                    Config::load(Some(path), std::env::vars()).map_err(anyhow::Error::new)?;
                Self::from_config(config).await
            }
            None => Self::sandbox().await,
        }
    }

    #[cfg(feature = "sandbox")]
    async fn sandbox() -> anyhow::Result<Setup> {
        let runner = crate::sandbox::runner_config(std::env::vars());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let queue = open_queue(&runner, clock.clone())?;
        let store = open_store(&runner)?;
        let sandbox = crate::sandbox::Sandbox::start().await?;
        let engine = Engine {
            support: sandbox.support.clone(),
            crm: sandbox.crm.clone(),
            store,
            queue: queue.clone(),
            clock,
            settings: Arc::new(sandbox.settings.clone()),
        };
        Ok(Setup {
            engine,
            queue,
            runner,
            sandbox: Some(sandbox),
        })
    }

    #[cfg(not(feature = "sandbox"))]
    async fn sandbox() -> anyhow::Result<Setup> {
        bail!("no configuration given (set CASESYNC_CONFIG or --config); this build has no sandbox")
    }

    async fn from_config(config: Config) -> anyhow::Result<Setup> {
        // The same composition root as the Cloud Run functions (shared::compose): the CRM
        // kind is chosen, and an unknown one refused, in one place for both.
        let plan = Plan::new(&config, "casesync-local", deploy::ALL)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let runner = config.runner.clone();
        let queue = open_queue(&runner, clock.clone())?;
        let engine = plan
            .engine(&config, open_store(&runner)?, Some(queue.clone()), clock)
            .await?;
        Ok(Setup {
            engine,
            queue,
            runner,
            #[cfg(feature = "sandbox")]
            sandbox: None,
        })
    }
}

/// The store and queue of a configuration (or of the sandbox when there is none), for the
/// commands that only read or move queued messages.
pub fn open_local_state(
    config_path: Option<&Path>,
) -> anyhow::Result<(Arc<SqliteStore>, Arc<EmbeddedQueue>)> {
    let runner = match config_path {
        Some(path) => {
            Config::load(Some(path), std::env::vars())
                .map_err(anyhow::Error::new)?
                .runner
        }
        #[cfg(feature = "sandbox")]
        None => crate::sandbox::runner_config(std::env::vars()),
        #[cfg(not(feature = "sandbox"))]
        None => bail!("no configuration given (set CASESYNC_CONFIG or --config)"),
    };
    Ok((
        open_store(&runner)?,
        open_queue(&runner, Arc::new(SystemClock))?,
    ))
}

fn open_queue(runner: &RunnerConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<EmbeddedQueue>> {
    let policy = QueuePolicy::by_name(&runner.queue_profile)
        .with_context(|| format!("runner.queue_profile `{}` is unknown", runner.queue_profile))?;
    Ok(Arc::new(
        EmbeddedQueue::open(Path::new(&runner.database), policy, clock)
            .with_context(|| format!("opening the queue in {}", runner.database))?,
    ))
}

fn open_store(runner: &RunnerConfig) -> anyhow::Result<Arc<SqliteStore>> {
    Ok(Arc::new(
        SqliteStore::open(Path::new(&runner.database))
            .with_context(|| format!("opening the mapping store in {}", runner.database))?,
    ))
}

/// Runs until Ctrl-C, SIGTERM or `for_at_most` elapses.
pub async fn run(setup: Setup, for_at_most: Option<Duration>) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let r = &setup.runner;
    // Each timer is handed its task body, as each function's main hands its own to the shim.
    let schedules: [(&'static str, Duration, Task); 4] = [
        (
            "poll-google",
            r.poll_google_every,
            Box::new(|engine, _| Box::pin(async move { report!(engine.poll_google().await) })),
        ),
        (
            "poll-company",
            r.poll_company_every,
            Box::new(|engine, _| Box::pin(async move { report!(engine.poll_company().await) })),
        ),
        (
            "detect-outages",
            r.detect_outages_every,
            Box::new(|engine, _| Box::pin(async move { report!(engine.detect_outages().await) })),
        ),
        (
            "cleanup-case-mappings",
            r.cleanup_every,
            // The embedded queue's dead letters are always at hand, so cleanup always
            // acknowledges those of cases that synced since.
            Box::new(|engine, queue| {
                Box::pin(async move {
                    report!(
                        engine
                            .cleanup_with_dead_letters(&EmbeddedDeadLetters::new(&queue))
                            .await
                    )
                })
            }),
        ),
    ];
    for (name, every, task) in schedules {
        tasks.spawn(scheduled(
            name,
            every,
            task,
            setup.engine.clone(),
            setup.queue.clone(),
            stop_rx.clone(),
        ));
    }
    for worker in 0..r.workers {
        tasks.spawn(work(
            worker,
            setup.engine.clone(),
            setup.queue.clone(),
            stop_rx.clone(),
        ));
    }
    #[cfg(feature = "sandbox")]
    if let Some(sandbox) = &setup.sandbox {
        tasks.spawn(sandbox.demo_activity(stop_rx.clone()));
    }
    info!(workers = r.workers, database = %r.database, "casesync is running; Ctrl-C stops it");
    shutdown_signal(for_at_most).await;
    info!("stopping: letting in-flight work finish");
    let _ = stop_tx.send(true);
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            error!(error = %e, "a runner task panicked");
        }
    }
    info!("stopped");
    Ok(())
}

async fn shutdown_signal(for_at_most: Option<Duration>) {
    let deadline = async {
        match for_at_most {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate => {},
        _ = deadline => {},
    }
}

/// A scheduled task body: its report as JSON, for the log.
type Task = Box<
    dyn Fn(
            Engine,
            Arc<EmbeddedQueue>,
        ) -> Pin<Box<dyn Future<Output = Result<serde_json::Value, TaskError>> + Send>>
        + Send
        + Sync,
>;

/// Runs one scheduled task now and then every `every`, as Cloud Scheduler would.
async fn scheduled(
    task: &'static str,
    every: Duration,
    body: Task,
    engine: Engine,
    queue: Arc<EmbeddedQueue>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {},
            _ = stop.changed() => return,
        }
        let outcome = body(engine.clone(), queue.clone()).await;
        match outcome {
            Ok(report) => {
                let busy = report.as_object().is_some_and(|o| {
                    ["new_mappings", "enqueued", "dead_letters_acked"]
                        .iter()
                        .any(|k| o.get(*k).and_then(|v| v.as_u64()).unwrap_or(0) > 0)
                        || o.get("deleted")
                            .and_then(|v| v.as_array())
                            .is_some_and(|a| !a.is_empty())
                        || o.get("resume_comments_posted")
                            .and_then(|v| v.as_u64())
                            .unwrap_or(0)
                            > 0
                });
                if busy {
                    info!(task, report = %report, "done");
                } else {
                    tracing::debug!(task, report = %report, "done");
                }
            }
            Err(TaskError::OutageDetected { lagging, report }) => {
                error!(task, lagging, report = %serde_json::to_value(&report).unwrap_or_default(), "sync outage detected");
            }
            Err(e) => {
                warn!(task, class = e.class().as_str(), error = %e, "failed; runs again at its next tick")
            }
        }
    }
}

/// Drains the queue: one delivery at a time per worker.
async fn work(
    worker: usize,
    engine: Engine,
    queue: Arc<EmbeddedQueue>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        match queue.receive() {
            Ok(Some(delivery)) => match process_delivery(&engine, &queue, &delivery).await {
                Ok(DeliveryOutcome::Synced(_))
                | Ok(DeliveryOutcome::Retrying { .. })
                | Ok(DeliveryOutcome::DeadLettered { .. }) => {}
                Err(e) => {
                    warn!(worker, error = %e, "the queue failed; the message will be delivered again")
                }
            },
            Ok(None) => {
                tokio::select! {
                    _ = queue.wait_for_work(Duration::from_millis(500)) => {},
                    _ = stop.changed() => return,
                }
            }
            Err(e) => {
                warn!(worker, error = %e, "cannot read the queue; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
