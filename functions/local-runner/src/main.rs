//! `casesync-local`: the all-in-one local runner (docs/ARCHITECTURE.md#local-topology). The six task bodies in one
//! process, on the embedded SQLite store and queue, scheduled by timers, with a worker pool
//! draining the queue. With no configuration it runs against the bundled sandbox so a
//! newcomer sees cases sync within a minute.

mod runner;
#[cfg(feature = "sandbox")]
mod sandbox;

use anyhow::Context;
use clap::{Parser, Subcommand};
use shared::domain::SyncState;
use shared::ports::MappingStore;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "casesync-local",
    version,
    about = "casesync: keep Google Cloud support cases and your CRM in step (local all-in-one runner)"
)]
struct Cli {
    /// The configuration file (also `CASESYNC_CONFIG`). Without one, the sandbox runs.
    #[arg(long, env = "CASESYNC_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines for Cloud Logging (`severity`, `message`, fields) instead of a
    /// human-readable running log.
    #[arg(long, env = "CASESYNC_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the connector (the default).
    Run {
        /// Stop after this many seconds (for demos and tests).
        #[arg(long)]
        for_seconds: Option<u64>,
    },
    /// List the open mappings: both keys, state (active, paused, unlinked and why), priority,
    /// when each side last synced, and the outage flags.
    Status,
    /// List dead-lettered messages with their reasons.
    DeadLetters,
    /// Put dead-lettered messages back on their queue.
    Replay {
        /// Only the messages of this case key.
        #[arg(long)]
        case: Option<String>,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    shared::logging::init(cli.log_json);
    let json = cli.log_json;
    // A failure is one line (JSON with --log-json), never a backtrace.
    shared::logging::exit_status(json, run(cli).await)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Run { for_seconds: None });
    if let Command::Run { for_seconds } = command {
        let setup = runner::Setup::build(cli.config.as_deref()).await?;
        return runner::run(setup, for_seconds.map(std::time::Duration::from_secs)).await;
    }
    // The operator's commands read the SQLite file only: no API client, no sandbox.
    let (store, queue) = runner::open_local_state(cli.config.as_deref())?;
    match command {
        Command::Run { .. } => Ok(()),
        Command::Status => {
            let open = store.list_open().await.context("reading the mappings")?;
            println!("{} open mapping(s)", open.len());
            for m in open {
                let mut state = match &m.sync_state {
                    SyncState::Active => "active".to_string(),
                    SyncState::Paused => "paused".to_string(),
                    SyncState::Suspect {
                        reason,
                        since,
                        checks,
                    } => format!(
                        "suspect since {} ({checks} check(s)): {reason}",
                        since.to_rfc3339()
                    ),
                    SyncState::Unlinked { reason } => format!("unlinked: {reason}"),
                };
                if let Some(p) = &m.parked {
                    state.push_str(&format!(
                        "; parked ({} side, until it changes or is replayed): {}",
                        p.side.as_str(),
                        p.reason
                    ));
                }
                for (item, refused) in &m.refused_items {
                    state.push_str(&format!("; refused {item}: {}", refused.reason));
                }
                let at = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map(|t| t.to_rfc3339()).unwrap_or_else(|| "never".into())
                };
                println!(
                    "{}\tgoogle={}\tcompany={}\t{}\t{}\tgoogle synced {}\tcompany synced {}\toutage flags google={} company={}",
                    m.id,
                    m.google_case_name.as_deref().unwrap_or("-"),
                    m.company_case_id.as_deref().unwrap_or("-"),
                    m.priority,
                    state,
                    at(m.google_updates_synced_at),
                    at(m.company_updates_synced_at),
                    m.outage_comment_sent_to_google,
                    m.outage_comment_sent_to_company
                );
            }
            Ok(())
        }
        Command::DeadLetters => {
            let dead = queue.dead_letters().context("reading dead letters")?;
            if dead.is_empty() {
                println!("no dead letters");
            }
            for d in dead {
                println!(
                    "{}\t{}\t{}\tattempts={}\t{}: {}",
                    d.dead_at.to_rfc3339(),
                    d.topic,
                    d.case_key,
                    d.attempts,
                    d.error_class,
                    d.reason
                );
            }
            Ok(())
        }
        Command::Replay { case } => {
            let n = queue
                .replay(case.as_deref())
                .context("replaying dead letters")?;
            println!("replayed {n} message(s)");
            Ok(())
        }
    }
}
