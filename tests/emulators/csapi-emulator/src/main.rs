//! `csapi-emulator`: serves the Cloud Support API v2 emulator as a process, for the
//! end-to-end stack and for trying casesync by hand.
//!
//! Usage: `csapi-emulator [--port N] [--host H] [--caller-email E] [--caller-name N]
//! [--organization organizations/O] [--project P]...`. Logs go to stderr; the line
//! `listening on http://HOST:PORT` goes to stdout once the socket is bound, so a
//! parent process can wait for it.

use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use csapi_emulator::{Emulator, EmulatorConfig};

const USAGE: &str = "usage: csapi-emulator [--port N] [--host H] [--caller-email E] [--caller-name NAME] [--organization organizations/O] [--project P]...";

struct Args {
    host: String,
    port: u16,
    config: EmulatorConfig,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Args>> {
    let mut host = "127.0.0.1".to_string();
    let mut port = 0u16;
    let mut config = EmulatorConfig::default();
    let mut projects = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let mut value = || -> anyhow::Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().with_context(|| format!("{flag} needs a value")),
            }
        };
        match flag.as_str() {
            "--port" => port = value()?.parse().context("--port must be a port number")?,
            "--host" => host = value()?,
            "--caller-email" => config.caller_email = value()?,
            "--caller-name" => config.caller_display_name = value()?,
            "--organization" => {
                let o = value()?;
                config.organization = if o.starts_with("organizations/") {
                    o
                } else {
                    format!("organizations/{o}")
                };
            }
            "--project" => projects.push(value()?.trim_start_matches("projects/").to_string()),
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if !projects.is_empty() {
        config.projects = projects;
    }
    Ok(Some(Args { host, port, config }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let Some(args) = parse_args(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .with_context(|| format!("invalid --host {:?}", args.host))?;
    tracing::info!(caller = %args.config.caller_email, organization = %args.config.organization, projects = ?args.config.projects, "starting csapi emulator");
    let running = Emulator::new(args.config).serve(addr).await?;
    println!("listening on {}", running.base_url);
    std::io::stdout().flush().context("flushing stdout")?;
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> anyhow::Result<Option<Args>> {
        parse_args(s.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_flags() {
        let a = args(&[
            "--port",
            "8085",
            "--caller-email=x@y.iam.gserviceaccount.com",
            "--organization",
            "42",
            "--project",
            "a",
            "--project",
            "projects/b",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.port, 8085);
        assert_eq!(a.config.caller_email, "x@y.iam.gserviceaccount.com");
        assert_eq!(a.config.organization, "organizations/42");
        assert_eq!(a.config.projects, vec!["a", "b"]);
        assert!(args(&["--bogus"]).is_err());
        assert!(args(&["--port"]).is_err());
        assert!(args(&["--help"]).unwrap().is_none());
    }
}
