//! `replay-dead-letters`: pulls messages from the dead-letter subscriptions and republishes
//! each to the topic it came from, acking it only after the republish succeeded, so nothing
//! is lost if the tool dies halfway. Runs by hand or as a Cloud Run job.

mod replay;

use clap::Parser;
use shared::adapters::pubsub::{PubSubConfig, PubSubQueue, PubSubRest};
use std::io::Write;

#[derive(Parser, Debug)]
#[command(
    name = "replay-dead-letters",
    version,
    about = "Move dead-lettered casesync messages back to their source topic"
)]
struct Cli {
    /// The project of the topics and subscriptions.
    #[arg(long, env = "CASESYNC_PUBSUB__PROJECT")]
    project: String,
    /// Dead-letter pull subscriptions to drain (comma-separated ids or full names).
    #[arg(
        long,
        env = "CASESYNC_REPLAY__SUBSCRIPTIONS",
        value_delimiter = ',',
        required = true
    )]
    subscriptions: Vec<String>,
    /// Republish here instead of the topic the message names (for messages that name none).
    #[arg(long, env = "CASESYNC_REPLAY__TARGET_TOPIC")]
    target_topic: Option<String>,
    /// Only messages of this case key.
    #[arg(long = "case")]
    case_key: Option<String>,
    /// Republish at most this many messages.
    #[arg(long)]
    limit: Option<usize>,
    /// Show what would be replayed; republish and ack nothing.
    #[arg(long)]
    dry_run: bool,
    /// A Pub/Sub emulator's host:port (tests only).
    #[arg(long, env = "CASESYNC_PUBSUB__EMULATOR_HOST")]
    emulator_host: Option<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    shared::function::install_crypto_provider();
    let json =
        std::env::var_os("K_SERVICE").is_some() || std::env::var_os("CLOUD_RUN_JOB").is_some();
    shared::logging::init(json);
    // Errors are one line (JSON on Cloud Run), never a backtrace or a usage screen.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.to_string();
            let reason = text.split("\n\nUsage:").next().unwrap_or_default();
            let reason = reason.strip_prefix("error: ").unwrap_or(reason);
            shared::logging::print_fatal(
                json,
                &format!("{reason} (see --help for each flag and its CASESYNC_* variable)"),
            );
            return std::process::ExitCode::from(2);
        }
    };
    // The [replay] keys it reads from the environment, checked for typos.
    let checked = shared::config::process_env().and_then(shared::config::replay_section_from_env);
    if let Err(e) = checked {
        return shared::logging::exit_status(json, Err(e));
    }
    shared::logging::exit_status(json, run(cli).await)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = PubSubConfig::new(&cli.project);
    if let Some(host) = &cli.emulator_host {
        config = config.with_emulator_host(host);
    }
    let puller = PubSubRest::new(&config)?;
    let publisher = PubSubQueue::connect(&config).await?;
    let options = replay::Options {
        target_topic: cli.target_topic,
        case_key: cli.case_key,
        limit: cli.limit,
        dry_run: cli.dry_run,
    };
    let mut totals = replay::Totals::default();
    for subscription in &cli.subscriptions {
        let t = replay::drain(&puller, &publisher, subscription, &options, |t| {
            eprint!(
                "\r{subscription}: replayed {}, skipped {}, without a topic {}",
                t.replayed, t.skipped, t.unroutable
            );
            let _ = std::io::stderr().flush();
        })
        .await?;
        eprintln!();
        totals.add(&t);
    }
    let verb = if options.dry_run {
        "would replay"
    } else {
        "replayed"
    };
    println!(
        "{verb} {} message(s); {} skipped by the filter; {} name no source topic (use --target-topic)",
        totals.replayed, totals.skipped, totals.unroutable
    );
    if totals.unroutable > 0 {
        anyhow::bail!(
            "{} message(s) could not be routed and stay in the dead-letter subscription",
            totals.unroutable
        );
    }
    Ok(())
}
