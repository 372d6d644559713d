//! The official Firestore and Pub/Sub emulators, started for a test and stopped when it
//! ends (docs/ARCHITECTURE.md#testing). They are started from their platform scripts,
//! not through `gcloud … start` (two emulators started that way died together for no
//! visible reason), each in its own process group on a free port, and stopped by killing
//! that group: the scripts start a JVM, which outlives a plain kill of the script.
//!
//! Each emulator takes ~2 s and ~200 MB to start, so a test starts one and shares it among
//! its checks (a fresh Firestore database or fresh topic names per check keep them apart).
//! The script paths can be overridden with `CASESYNC_FIRESTORE_EMULATOR` and
//! `CASESYNC_PUBSUB_EMULATOR` where the Google Cloud CLI lives elsewhere.

use anyhow::{Context, Result, anyhow, bail};
use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

pub const FIRESTORE_SCRIPT: &str =
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator";
pub const PUBSUB_SCRIPT: &str =
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator";

/// How long an emulator may take to answer HTTP after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the process group gets to stop after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// One emulator process (group), killed on drop.
struct EmulatorProcess {
    name: &'static str,
    child: Child,
    port: u16,
    /// stdout and stderr of the emulator, quoted when it fails to start.
    log: tempfile::NamedTempFile,
}

impl EmulatorProcess {
    async fn start(
        name: &'static str,
        env_override: &str,
        default_script: &str,
        package: &str,
        args: impl Fn(u16) -> Vec<String>,
    ) -> Result<Self> {
        let script = PathBuf::from(
            std::env::var(env_override).unwrap_or_else(|_| default_script.to_string()),
        );
        if !script.exists() {
            bail!(
                "the {name} emulator is not installed: {} is missing (Debian package {package}, \
                 or set {env_override} to its start script)",
                script.display()
            );
        }
        // A free port can be taken between our check and the emulator's bind: try another.
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port()?;
            let log = tempfile::NamedTempFile::new().context("create the emulator log")?;
            let child = Command::new(&script)
                .args(args(port))
                .stdin(Stdio::null())
                .stdout(log.reopen()?)
                .stderr(log.reopen()?)
                // Its own process group, so that stopping it reaches the JVM and its
                // children, and a Ctrl-C of the test run is not forwarded twice.
                .process_group(0)
                .spawn()
                .with_context(|| format!("start {}", script.display()))?;
            let mut process = EmulatorProcess {
                name,
                child,
                port,
                log,
            };
            match process.wait_until_ready().await {
                Ok(()) => return Ok(process),
                Err(e) => last_error = Some(e),
            }
            // `process` drops here, stopping whatever was started.
        }
        Err(last_error.unwrap_or_else(|| anyhow!("the {name} emulator did not start")))
    }

    async fn wait_until_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the {} emulator exited with {status} before answering on port {}:\n{}",
                    self.name,
                    self.port,
                    self.log_tail()
                );
            }
            if http_request(self.port, "GET", "/").await.is_ok() {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "the {} emulator did not answer http://127.0.0.1:{}/ within {:?}:\n{}",
                    self.name,
                    self.port,
                    START_TIMEOUT,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = self.log.reopen() {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn signal_group(&self, signal: &str) {
        // The group id is the child's pid (process_group(0)); a negative pid addresses the
        // whole group. The `kill` program, not a shell's builtin: dash's refuses `--`.
        let _ = Command::new("kill")
            .args(["-s", signal, "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        self.signal_group("TERM");
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Whatever is left of the group (the JVM may outlive its script), and the script
        // itself if it ignored SIGTERM.
        self.signal_group("KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A minimal HTTP/1.1 request to the emulator on `port`; returns the status code. The
/// emulators' control endpoints need nothing more, and this keeps the launcher free of an
/// HTTP client. Only the status line is read: the emulators keep the connection open
/// whatever the request asks.
pub async fn http_request(port: u16, method: &str, path: &str) -> Result<u16> {
    let mut stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    .context("connect timed out")??;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    let read_status_line = async {
        let mut chunk = [0u8; 256];
        while !response.windows(2).any(|w| w == b"\r\n") {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            response.extend_from_slice(&chunk[..n]);
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(30), read_status_line)
        .await
        .context("no answer within 30 s")??;
    let head = String::from_utf8_lossy(&response);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            anyhow!(
                "not an HTTP answer: {:?}",
                head.chars().take(80).collect::<String>()
            )
        })?;
    Ok(status)
}

/// The Cloud Firestore emulator in Native mode.
pub struct FirestoreEmulator {
    process: EmulatorProcess,
}

impl FirestoreEmulator {
    /// Starts it on a free port and waits until it answers (up to 60 s).
    pub async fn start() -> Result<Self> {
        let process = EmulatorProcess::start(
            "Firestore",
            "CASESYNC_FIRESTORE_EMULATOR",
            FIRESTORE_SCRIPT,
            "google-cloud-cli-firestore-emulator",
            |port| {
                vec![
                    "start".into(),
                    "--host=127.0.0.1".into(),
                    format!("--port={port}"),
                    "--database-mode=firestore-native".into(),
                ]
            },
        )
        .await?;
        Ok(FirestoreEmulator { process })
    }

    /// `127.0.0.1:{port}`, as `FIRESTORE_EMULATOR_HOST` and `FirestoreConfig::emulator_host`
    /// take it.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.process.port)
    }

    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// Deletes every document of one database, named or `(default)`.
    pub async fn reset(&self, project: &str, database: &str) -> Result<()> {
        let path = format!("/emulator/v1/projects/{project}/databases/{database}/documents");
        let status = http_request(self.process.port, "DELETE", &path).await?;
        if status != 200 {
            bail!("resetting the Firestore emulator ({path}) answered HTTP {status}");
        }
        Ok(())
    }
}

/// The Cloud Pub/Sub emulator (push, retry policy and dead-letter topics all work).
pub struct PubSubEmulator {
    process: EmulatorProcess,
}

impl PubSubEmulator {
    /// Starts it on a free port and waits until it answers (up to 60 s).
    pub async fn start() -> Result<Self> {
        let process = EmulatorProcess::start(
            "Pub/Sub",
            "CASESYNC_PUBSUB_EMULATOR",
            PUBSUB_SCRIPT,
            "google-cloud-cli-pubsub-emulator",
            |port| vec!["--host=127.0.0.1".into(), format!("--port={port}")],
        )
        .await?;
        Ok(PubSubEmulator { process })
    }

    /// `127.0.0.1:{port}`, as `PUBSUB_EMULATOR_HOST` and `PubSubConfig::emulator_host` take
    /// it (gRPC and REST share the port).
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.process.port)
    }

    pub fn port(&self) -> u16 {
        self.process.port
    }
}
