//! `jira-emulator --port N`: the emulator as a standalone process, for the end-to-end
//! stack and for poking at it by hand. It prints `listening on http://127.0.0.1:PORT` once
//! bound so a parent process can wait for that line.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use jira_emulator::{JiraEmulator, JiraEmulatorConfig};

#[derive(Debug, Parser)]
#[command(about = "A stateful Jira Cloud emulator with a control API")]
struct Args {
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// JSON file with a JiraEmulatorConfig (camelCase keys; missing keys take defaults).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides the site time zone (IANA name).
    #[arg(long)]
    time_zone: Option<String>,
    /// Overrides the project key.
    #[arg(long)]
    project_key: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str::<JiraEmulatorConfig>(&text)
                .with_context(|| format!("parsing {}", path.display()))?
        }
        None => JiraEmulatorConfig::default(),
    };
    if let Some(tz) = args.time_zone {
        config.time_zone = tz;
    }
    if let Some(key) = args.project_key {
        config.project_key = key;
    }
    let emulator = JiraEmulator::new(config);
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("binding {}:{}", args.host, args.port))?;
    let address = listener.local_addr()?;
    let base_url = format!("http://{address}");
    emulator.set_base_url(base_url.clone());
    println!("listening on {base_url}");
    axum::serve(listener, emulator.router())
        .with_graceful_shutdown(async {
            // If the signal handler cannot be installed, run until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await?;
    Ok(())
}
