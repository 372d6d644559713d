//! Bad configuration against the real binaries (issue 12, items 3, 4, 5, 8 and the
//! `[replay]` half of 12). Each row starts a binary with a configuration file and an
//! environment, as an operator would, with `RUST_BACKTRACE=1` set, and expects either a
//! refusal — its exit status, exactly one line on stderr that names the key, a Cloud
//! Logging JSON line where JSON logging is on, no backtrace, no secret — or a start: the
//! function serves `/health`, the command exits 0. The binaries must be built
//! (`cargo build --workspace --bins`; `make test` does).

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use casesync_tests::emulators::FirestoreEmulator;
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::Command;

/// The all-digit RT token of the rows that set one: what the old environment reading
/// turned into the integer 123456789, which the type error then printed.
const DIGIT_TOKEN: &str = "0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Stops at once with this exit status; its one line names `key` and holds `also`.
    Refused {
        status: i32,
        key: &'static str,
        also: &'static [&'static str],
    },
    /// Starts: a function serves `/health`; a command exits 0.
    Starts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Binary {
    /// A function needing Firestore only.
    Cleanup,
    /// A function with the Request Tracker adapter, toward the fake RT of this test.
    PollCompanyRt,
    /// `casesync-local status` (reads the configuration and the SQLite file only).
    LocalStatus,
    /// `casesync-local run`: the local runner starting its engine.
    LocalRun,
    /// The `replay-dead-letters` job, as on Cloud Run (JSON logging).
    Replay,
}

struct Row {
    what: &'static str,
    binary: Binary,
    /// The configuration file (`CASESYNC_CONFIG`), if any.
    file: Option<&'static str>,
    /// Set on top of the binary's base environment.
    env: &'static [(&'static str, &'static str)],
    /// Removed from the base environment.
    unset: &'static [&'static str],
    expect: Expect,
}

const fn refused(key: &'static str, also: &'static [&'static str]) -> Expect {
    Expect::Refused {
        status: 1,
        key,
        also,
    }
}

const RT_FILE: &str = r#"
[crm]
kind = "rt"
[crm.rt]
base_url = "http://127.0.0.1:RT_PORT"
user = "casesync"
queue = "GoogleSupport"
"#;

const RT_BAD_ZONE: &str = r#"
[crm]
kind = "rt"
[crm.rt]
base_url = "http://127.0.0.1:RT_PORT"
user = "casesync"
queue = "GoogleSupport"
time_zone = "Mars/Olympus"
"#;

fn rows() -> Vec<Row> {
    use Binary::*;
    let row = |what, binary, file, env, expect| Row {
        what,
        binary,
        file,
        env,
        unset: &[],
        expect,
    };
    vec![
        // Durations (item 3): out of range, zero, not a duration, in file and environment.
        row(
            "a huge duration in the file",
            Cleanup,
            Some("[sync]\ncleanup_after = \"300000y\"\n"),
            &[],
            refused("sync.cleanup_after", &["between 1s and 3650d"]),
        ),
        row(
            "a huge duration through the environment",
            Cleanup,
            None,
            &[("CASESYNC_SYNC__PICKUP_MAX_AGE", "300000y")],
            refused("sync.pickup_max_age", &["out of range"]),
        ),
        row(
            "a zero lease",
            Cleanup,
            Some("[sync]\nlease = \"0s\"\n"),
            &[],
            refused("sync.lease", &["between 1s and 1h"]),
        ),
        row(
            "a lag of a year",
            Cleanup,
            None,
            &[("CASESYNC_SYNC__LOOKUP_LAG", "365d")],
            refused("sync.lookup_lag", &["between 0s and 1d"]),
        ),
        row(
            "not a duration",
            Cleanup,
            Some("[sync]\ngoogle_polling_window = \"soon\"\n"),
            &[],
            refused("sync.google_polling_window", &[]),
        ),
        row(
            "a runner timer of a century",
            Cleanup,
            Some("[runner]\ncleanup_every = \"100y\"\n"),
            &[],
            refused("runner.cleanup_every", &["between 1s and 7d"]),
        ),
        row(
            "an attachment limit beyond 4 GiB",
            Cleanup,
            None,
            &[("CASESYNC_SYNC__MAX_ATTACHMENT_BYTES", "99999999999999")],
            refused("sync.max_attachment_bytes", &["4 GiB"]),
        ),
        row(
            "an RT request timeout of a day",
            PollCompanyRt,
            Some(RT_FILE),
            &[
                ("CASESYNC_CRM__RT__TOKEN", "t-o-k-e-n"),
                ("CASESYNC_CRM__RT__REQUEST_TIMEOUT_SECS", "86400"),
            ],
            refused("crm.rt.request_timeout_secs", &["between 1 and 300"]),
        ),
        // Unknown keys, in every section (item 12's [replay] half included).
        row(
            "an unknown key under [replay]",
            Cleanup,
            Some("[replay]\nsubscription = \"dead\"\n"),
            &[],
            refused("replay.subscription", &["subscriptions"]),
        ),
        row(
            "an unknown [replay] key through the environment",
            Cleanup,
            None,
            &[("CASESYNC_REPLAY__TARGET_TOPC", "t")],
            refused("replay.target_topc", &["target_topic"]),
        ),
        row(
            "an unknown key under [sync]",
            Cleanup,
            Some("[sync]\ncleanup_afterr = \"1d\"\n"),
            &[],
            refused("sync.cleanup_afterr", &["cleanup_after"]),
        ),
        row(
            "an unknown key under [google]",
            Cleanup,
            Some("[google]\nparnet = \"projects/p\"\n"),
            &[],
            refused("google.parnet", &[]),
        ),
        row(
            "an unknown key under [firestore]",
            Cleanup,
            Some("[firestore]\nhost = \"localhost\"\n"),
            &[],
            refused("firestore.host", &[]),
        ),
        row(
            "an unknown key under [runner]",
            Cleanup,
            None,
            &[("CASESYNC_RUNNER__WORKER", "2")],
            refused("runner.worker", &["workers"]),
        ),
        row(
            "an unknown section",
            Cleanup,
            Some("[synk]\nlease = \"1m\"\n"),
            &[],
            refused("synk", &[]),
        ),
        row(
            "an unknown key under [crm.rt]",
            PollCompanyRt,
            Some(RT_FILE),
            &[
                ("CASESYNC_CRM__RT__TOKEN", "t-o-k-e-n"),
                ("CASESYNC_CRM__RT__COLOUR", "red"),
            ],
            refused("crm.rt.colour", &["base_url"]),
        ),
        // Enumerations and URLs.
        row(
            "a conflict winner that is no side",
            Cleanup,
            None,
            &[("CASESYNC_SYNC__CONFLICT_WINNER", "both")],
            refused("sync.conflict_winner", &[]),
        ),
        row(
            "an unknown queue profile",
            Cleanup,
            Some("[runner]\nqueue_profile = \"slow\"\n"),
            &[],
            refused("runner.queue_profile", &[]),
        ),
        row(
            "an unknown CRM",
            Cleanup,
            Some("[crm]\nkind = \"zendesk\"\n"),
            &[],
            refused("crm.kind", &["jira, rt"]),
        ),
        row(
            "an RT comment type that is not one",
            PollCompanyRt,
            Some(RT_FILE),
            &[
                ("CASESYNC_CRM__RT__TOKEN", "t-o-k-e-n"),
                ("CASESYNC_CRM__RT__COMMENT_TYPE", "email"),
            ],
            refused("crm.rt.comment_type", &[]),
        ),
        row(
            "a Google endpoint that is not http(s)",
            Cleanup,
            Some(
                "[google]\nparent = \"projects/p\"\nclassification_id = \"c\"\n\
                 own_identities = [\"casesync@p.iam.gserviceaccount.com\"]\n\
                 endpoint = \"ftp://support\"\n",
            ),
            &[],
            refused("google.endpoint", &["ftp://support"]),
        ),
        row(
            "an RT base URL that is not one",
            PollCompanyRt,
            Some(RT_FILE),
            &[
                ("CASESYNC_CRM__RT__TOKEN", "t-o-k-e-n"),
                ("CASESYNC_CRM__RT__BASE_URL", "rt.example.com"),
            ],
            refused("crm.rt.base_url", &[]),
        ),
        // Missing keys.
        row(
            "a [google] section without its classification",
            Cleanup,
            Some(
                "[google]\nparent = \"projects/p\"\n\
                 own_identities = [\"casesync@p.iam.gserviceaccount.com\"]\n",
            ),
            &[],
            refused("google", &["classification_id"]),
        ),
        Row {
            what: "a variable the function reads is not set",
            binary: Cleanup,
            file: None,
            env: &[],
            unset: &["CASESYNC_FIRESTORE__DATABASE"],
            expect: refused("CASESYNC_FIRESTORE__DATABASE", &["not set"]),
        },
        row(
            "a file that is not TOML",
            Cleanup,
            Some("[sync\nlease = \"1m\"\n"),
            &[],
            refused("CASESYNC_CONFIG", &["line 1"]),
        ),
        // Secrets (items 4 and 5).
        row(
            "a Jira API token in the file",
            Cleanup,
            Some("[crm]\nkind = \"jira\"\n[crm.jira]\napi_token = \"hunter2-secret\"\n"),
            &[],
            refused(
                "crm.jira.api_token",
                &["CASESYNC_CRM__JIRA__API_TOKEN", "Secret Manager"],
            ),
        ),
        row(
            "an RT token in the file",
            PollCompanyRt,
            Some(
                "[crm]\nkind = \"rt\"\n[crm.rt]\nbase_url = \"http://127.0.0.1:RT_PORT\"\n\
                 token = \"hunter2-secret\"\nuser = \"casesync\"\nqueue = \"GoogleSupport\"\n",
            ),
            &[],
            refused(
                "crm.rt.token",
                &["CASESYNC_CRM__RT__TOKEN", "Secret Manager"],
            ),
        ),
        row(
            "an all-digit RT token through the environment",
            PollCompanyRt,
            Some(RT_FILE),
            &[("CASESYNC_CRM__RT__TOKEN", DIGIT_TOKEN)],
            Expect::Starts,
        ),
        row(
            "an all-digit RT token with another key wrong",
            PollCompanyRt,
            Some(RT_BAD_ZONE),
            &[("CASESYNC_CRM__RT__TOKEN", DIGIT_TOKEN)],
            refused("crm.rt.time_zone", &["Mars/Olympus"]),
        ),
        row(
            "an RT token that reads as a boolean",
            PollCompanyRt,
            Some(RT_BAD_ZONE),
            &[("CASESYNC_CRM__RT__TOKEN", "true")],
            refused("crm.rt.time_zone", &[]),
        ),
        row(
            "a good configuration",
            Cleanup,
            Some("[sync]\ncleanup_after = \"3650d\"\nlease = \"1h\"\nlookup_lag = \"0s\"\n"),
            &[],
            Expect::Starts,
        ),
        // The other binaries: the local runner (plain and JSON) and the replay job.
        row(
            "the local runner, plain text",
            LocalStatus,
            Some("[runner]\nworkers = 0\n"),
            &[],
            refused("runner.workers", &["between 1 and 64"]),
        ),
        row(
            "the local runner with JSON logging",
            LocalStatus,
            Some("[sync]\ncleanup_after = \"300000y\"\n"),
            &[("CASESYNC_LOG_JSON", "true")],
            refused("sync.cleanup_after", &["3650d"]),
        ),
        row(
            "the local runner, a good file",
            LocalStatus,
            Some("[runner]\nworkers = 2\n"),
            &[],
            Expect::Starts,
        ),
        row(
            "the replay job, a misspelt key",
            Replay,
            None,
            &[("CASESYNC_REPLAY__TARGET_TOPC", "t")],
            refused("replay.target_topc", &["target_topic"]),
        ),
        Row {
            what: "the replay job without its subscriptions",
            binary: Replay,
            file: None,
            env: &[],
            unset: &["CASESYNC_REPLAY__SUBSCRIPTIONS"],
            expect: Expect::Refused {
                status: 2,
                key: "--subscriptions",
                also: &["CASESYNC_"],
            },
        },
    ]
}

impl Binary {
    fn name(self) -> &'static str {
        match self {
            Binary::Cleanup => "cleanup-case-mappings",
            Binary::PollCompanyRt => "poll-company",
            Binary::LocalStatus | Binary::LocalRun => "casesync-local",
            Binary::Replay => "replay-dead-letters",
        }
    }

    /// Whether its errors are Cloud Logging JSON lines without being asked.
    fn logs_json(self) -> bool {
        matches!(
            self,
            Binary::Cleanup | Binary::PollCompanyRt | Binary::Replay
        )
    }

    fn is_service(self) -> bool {
        matches!(self, Binary::Cleanup | Binary::PollCompanyRt)
    }

    /// What the binary needs to start, so a row changes one thing only.
    fn base_env(
        self,
        port: u16,
        rt_port: u16,
        dir: &Path,
        firestore: &str,
    ) -> HashMap<&'static str, String> {
        let mut env: HashMap<&'static str, String> = HashMap::new();
        if self.is_service() {
            env.extend([
                ("PORT", port.to_string()),
                ("CASESYNC_SHIM__VERIFY_TOKENS", "false".into()),
                (
                    "CASESYNC_SHIM__AUDIENCE",
                    format!("http://127.0.0.1:{port}"),
                ),
                (
                    "CASESYNC_SHIM__INVOKER",
                    "invoker@demo.iam.gserviceaccount.com".into(),
                ),
                ("CASESYNC_FIRESTORE__PROJECT", "demo".into()),
                ("CASESYNC_FIRESTORE__DATABASE", "casesync".into()),
                ("CASESYNC_FIRESTORE__EMULATOR_HOST", firestore.to_string()),
            ]);
        }
        if self == Binary::PollCompanyRt {
            env.extend([
                ("CASESYNC_PUBSUB__PROJECT", "demo".into()),
                ("CASESYNC_PUBSUB__EMULATOR_HOST", "127.0.0.1:9".into()),
                ("CASESYNC_GOOGLE__PARENT", "projects/demo".into()),
                ("CASESYNC_GOOGLE__CREATE_PARENT", "projects/demo".into()),
                ("CASESYNC_GOOGLE__CLASSIFICATION_ID", "c".into()),
                (
                    "CASESYNC_GOOGLE__OWN_IDENTITIES",
                    "[\"casesync@demo.iam.gserviceaccount.com\"]".into(),
                ),
                ("CASESYNC_CRM__KIND", "rt".into()),
            ]);
            // The Request Tracker adapter's own variables (registry `CrmKind::required_env`),
            // as Terraform sets them; a row's file or environment changes one of them.
            for (key, value) in [
                (
                    "CASESYNC_CRM__RT__BASE_URL",
                    format!("http://127.0.0.1:{rt_port}"),
                ),
                ("CASESYNC_CRM__RT__USER", "casesync".into()),
                ("CASESYNC_CRM__RT__QUEUE", "GoogleSupport".into()),
                ("CASESYNC_CRM__RT__TOKEN", "t-o-k-e-n".into()),
            ] {
                env.insert(key, value);
            }
        }
        match self {
            Binary::LocalStatus | Binary::LocalRun => {
                env.insert(
                    "CASESYNC_RUNNER__DATABASE",
                    dir.join("local.sqlite").display().to_string(),
                );
            }
            Binary::Replay => {
                env.extend([
                    ("CLOUD_RUN_JOB", "replay-dead-letters".into()),
                    ("CASESYNC_PUBSUB__PROJECT", "demo".into()),
                    ("CASESYNC_PUBSUB__EMULATOR_HOST", "127.0.0.1:9".into()),
                    (
                        "CASESYNC_REPLAY__SUBSCRIPTIONS",
                        "dead-letter-replay".into(),
                    ),
                ]);
            }
            _ => {}
        }
        env
    }
}

/// A Request Tracker that knows casesync's user and queue and answers only the token
/// [`DIGIT_TOKEN`]; it records every `Authorization` header it was sent.
async fn fake_rt() -> anyhow::Result<(u16, Arc<Mutex<Vec<String>>>)> {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
        let record = record.clone();
        async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            record.lock().unwrap().push(auth.clone());
            if auth != format!("token {DIGIT_TOKEN}") {
                return (StatusCode::UNAUTHORIZED, "bad token").into_response();
            }
            let body = match uri.path() {
                "/REST/2.0/user/casesync" => serde_json::json!({
                    "id": "casesync", "Name": "casesync", "RealName": "casesync", "Disabled": "0"
                }),
                "/REST/2.0/queue/GoogleSupport" => serde_json::json!({
                    "id": 1,
                    "Name": "GoogleSupport",
                    "TicketCustomFields": [
                        {"id": "1", "name": "SyncWithGoogle", "type": "customfield"},
                        {"id": "2", "name": "GoogleCaseName", "type": "customfield"}
                    ]
                }),
                _ => return (StatusCode::NOT_FOUND, "no such resource").into_response(),
            };
            axum::Json(body).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((port, seen))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Runs one row; `Err` says how it went wrong.
async fn run_row(
    row: &Row,
    rt_port: u16,
    firestore: &str,
    dir: &Path,
    index: usize,
) -> Result<(), String> {
    let port = free_port();
    let mut env = row.binary.base_env(port, rt_port, dir, firestore);
    for key in row.unset {
        env.remove(key);
    }
    for (key, value) in row.env {
        env.insert(key, value.to_string());
    }
    if let Some(text) = row.file {
        let path = dir.join(format!("row{index}.toml"));
        std::fs::write(&path, text.replace("RT_PORT", &rt_port.to_string()))
            .map_err(|e| e.to_string())?;
        env.insert("CASESYNC_CONFIG", path.display().to_string());
    }
    let binary = casesync_tests::workspace_binary(row.binary.name()).map_err(|e| e.to_string())?;
    let mut command = Command::new(binary);
    match row.binary {
        Binary::LocalStatus => {
            command.arg("status");
        }
        Binary::LocalRun => {
            command.args(["run", "--for-seconds", "5"]);
        }
        _ => {}
    }
    let mut child = command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1")
        .env("RUST_LOG", "info")
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", row.binary.name()))?;

    if row.expect == Expect::Starts && row.binary.is_service() {
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = reqwest::Client::new();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let out = child.wait_with_output().await.map_err(|e| e.to_string())?;
                return Err(format!(
                    "exited with {status} instead of serving: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            if let Ok(r) = http
                .get(format!("http://127.0.0.1:{port}/health"))
                .send()
                .await
                && r.status().is_success()
            {
                break;
            }
            if Instant::now() > deadline {
                return Err("did not serve /health within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.start_kill();
        let out = child.wait_with_output().await.map_err(|e| e.to_string())?;
        let all = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if all.contains(DIGIT_TOKEN) || all.contains("123456789") {
            return Err(format!("a log printed the secret: {all}"));
        }
        return Ok(());
    }

    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .map_err(|_| "did not stop within 30 s".to_string())?
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let code = out.status.code();
    let (status, key, also) = match row.expect {
        Expect::Starts => {
            return if code == Some(0) {
                Ok(())
            } else {
                Err(format!("exit status {code:?}: {stderr}"))
            };
        }
        Expect::Refused { status, key, also } => (status, key, also),
    };
    if code != Some(status) {
        return Err(format!("exit status {code:?}, expected {status}: {stderr}"));
    }
    let line = stderr.strip_suffix('\n').unwrap_or(&stderr);
    if line.is_empty() || line.contains('\n') {
        return Err(format!("stderr is not one line: {stderr:?}"));
    }
    let lower = line.to_lowercase();
    if lower.contains("backtrace") || line.contains("Stack") {
        return Err(format!("a backtrace was printed: {line}"));
    }
    for secret in ["hunter2", DIGIT_TOKEN, "123456789", "t-o-k-e-n"] {
        if stderr.contains(secret) || stdout.contains(secret) {
            return Err(format!(
                "the secret `{secret}` was printed: {stderr}{stdout}"
            ));
        }
    }
    let json_wanted =
        row.binary.logs_json() || row.env.iter().any(|(k, _)| *k == "CASESYNC_LOG_JSON");
    let message = if json_wanted {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("not a JSON line ({e}): {line}"))?;
        if value["severity"] != "ERROR" {
            return Err(format!("severity is not ERROR: {line}"));
        }
        value["message"].as_str().unwrap_or_default().to_string()
    } else {
        if !line.starts_with("error: ") {
            return Err(format!("not an `error: …` line: {line}"));
        }
        line.to_string()
    };
    let named = format!("`{key}`");
    let names_key = message.contains(&named)
        || message.contains(&format!("{key}:"))
        || message.contains(&format!("{key} "));
    if !names_key {
        return Err(format!("the line does not name `{key}`: {message}"));
    }
    for part in also {
        if !message.contains(part) {
            return Err(format!("the line lacks `{part}`: {message}"));
        }
    }
    Ok(())
}

#[tokio::test]
async fn bad_configuration_gets_one_clear_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (rt_port, seen) = fake_rt().await.unwrap();
    // The functions connect to Firestore before they serve; the refusals never get there.
    let firestore = FirestoreEmulator::start().await.unwrap();
    let rows = rows();
    assert!(rows.len() >= 15);
    let mut failures = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        if let Err(why) = run_row(row, rt_port, &firestore.host_port(), dir.path(), i).await {
            failures.push(format!("{} ({}): {why}", row.what, row.binary.name()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    // The all-digit token reached RT as the string it was, leading zero included.
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|a| a == &format!("token {DIGIT_TOKEN}")),
        "RT saw {seen:?}"
    );
}

/// `crm.kind = "nosuch"` stops the Cloud Run functions and the local runner alike, at
/// start-up, with the key named and the kinds listed: one registry decides for both
/// (`shared::adapters::registry`), whether the kind comes from the file or the environment.
#[tokio::test]
async fn an_unknown_crm_kind_stops_the_functions_and_the_local_runner_alike() {
    let dir = tempfile::tempdir().unwrap();
    const NOSUCH: &str = "[crm]\nkind = \"nosuch\"\n";
    let expect = refused("crm.kind", &["`nosuch`", "jira, rt"]);
    let row = |what, binary, file, env| Row {
        what,
        binary,
        file,
        env,
        unset: &[],
        expect,
    };
    let rows = [
        row(
            "a CRM function, the kind from its environment",
            Binary::PollCompanyRt,
            None,
            &[("CASESYNC_CRM__KIND", "nosuch")],
        ),
        row(
            "a function without the CRM, the kind from the file",
            Binary::Cleanup,
            Some(NOSUCH),
            &[],
        ),
        row("the local runner", Binary::LocalRun, Some(NOSUCH), &[]),
        row(
            "the local runner, the kind from the environment",
            Binary::LocalRun,
            Some("[runner]\nworkers = 1\n"),
            &[("CASESYNC_CRM__KIND", "nosuch")],
        ),
    ];
    let mut failures = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        // Refused before anything connects: neither RT nor Firestore is reached.
        if let Err(why) = run_row(row, 9, "127.0.0.1:9", dir.path(), i).await {
            failures.push(format!("{} ({}): {why}", row.what, row.binary.name()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
