//! A real Request Tracker for the tests: `RtInstance` runs `scripts/rt.sh up` (a fresh RT
//! with its own SQLite DB on a free port, in about 3 s once the packages are installed)
//! and `down` when dropped; `RtPerson` is the support agent working in it next to casesync,
//! through REST2 with the agent's own token, as a person's client would.
//!
//! The packages are installed by CI (`.ci/run` runs `scripts/rt.sh install`); a test never
//! installs them, and fails with that instruction when they are missing instead of
//! skipping, so a machine without RT cannot pass the RT tests by accident.

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use reqwest::header::LOCATION;
use serde_json::{Value, json};
use shared::adapters::rt::{RtConfig, Secret};
use shared::domain::Priority;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

const PACKAGES: [&str; 3] = ["request-tracker5", "rt5-db-sqlite", "rt5-standalone"];

fn script() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/rt.sh"))
}

/// Fails (never skips) when the RT packages are missing.
pub fn require_packages() {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}\n"])
        .args(PACKAGES)
        .output();
    let installed = out
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .matches("ok installed")
                .count()
        })
        .unwrap_or(0);
    assert!(
        installed == PACKAGES.len(),
        "the Request Tracker packages ({}) are not installed on this machine: run \
         `scripts/rt.sh install` as root (CI's .ci/run does). The RT tests run against the real RT \
         and do not skip.",
        PACKAGES.join(", ")
    );
}

/// A running RT started by `scripts/rt.sh up`; stopped by `down` on drop.
pub struct RtInstance {
    env: HashMap<String, String>,
    home: PathBuf,
}

impl RtInstance {
    /// Starts a fresh instance (blocking: it runs the script).
    pub fn start() -> anyhow::Result<RtInstance> {
        require_packages();
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let home = std::env::temp_dir().join(format!(
            "casesync-rt-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let out = Command::new("bash")
            .arg(script())
            .arg("up")
            .env("RT_HOME", &home)
            .env("RT_NO_INSTALL", "1")
            // A watchdog stops the server once this test process is gone, also when the
            // instance lives in a static that is never dropped.
            .env("RT_OWNER_PID", std::process::id().to_string())
            .output()
            .context("running scripts/rt.sh up")?;
        if !out.status.success() {
            bail!(
                "scripts/rt.sh up failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let env = parse_exports(&String::from_utf8_lossy(&out.stdout));
        for key in [
            "RT_URL",
            "RT_TOKEN",
            "RT_AGENT_TOKEN",
            "RT_QUEUE",
            "RT_USER",
        ] {
            ensure!(env.contains_key(key), "scripts/rt.sh up printed no {key}");
        }
        Ok(RtInstance { env, home })
    }

    /// One instance for the whole test binary (the contract checks share it: each makes
    /// its own tickets). Stopped by the watchdog when the binary exits.
    pub fn shared() -> &'static RtInstance {
        static SHARED: OnceLock<RtInstance> = OnceLock::new();
        SHARED.get_or_init(|| RtInstance::start().unwrap_or_else(|e| panic!("starting RT: {e:#}")))
    }

    pub fn var(&self, key: &str) -> &str {
        self.env.get(key).map(String::as_str).unwrap_or("")
    }

    pub fn url(&self) -> &str {
        self.var("RT_URL")
    }

    /// The adapter's settings for this instance, at their defaults otherwise.
    pub fn config(&self) -> RtConfig {
        let mut c = RtConfig::new(
            self.url(),
            Secret::new(self.var("RT_TOKEN")),
            self.var("RT_USER"),
            self.var("RT_QUEUE"),
        );
        c.sync_flag_field = self.var("RT_SYNC_FIELD").into();
        c.google_case_field = self.var("RT_CASE_FIELD").into();
        c.requests_per_second = 1000.0;
        c
    }

    /// The support agent of this instance.
    pub fn person(&self) -> RtPerson {
        RtPerson {
            http: reqwest::Client::new(),
            api: format!("{}/REST/2.0", self.url()),
            token: self.var("RT_AGENT_TOKEN").to_string(),
            queue: self.var("RT_QUEUE").to_string(),
            sync_field: self.var("RT_SYNC_FIELD").to_string(),
            case_field: self.var("RT_CASE_FIELD").to_string(),
            name: self.var("RT_AGENT_NAME").to_string(),
            db: self.home.join("var/rt.db"),
        }
    }

    /// RT's outgoing mail so far (autoreplies, notifications), as the instance recorded it.
    pub fn outgoing_mail(&self) -> String {
        std::fs::read_to_string(self.home.join("mail.mbox")).unwrap_or_default()
    }
}

impl Drop for RtInstance {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("down")
            .env("RT_HOME", &self.home)
            .output();
    }
}

/// `export KEY='value'` lines (as `rt.sh up` prints them) into a map.
pub fn parse_exports(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

/// The default RT number for a level (the adapter's default ranges).
pub fn rt_priority(p: Priority) -> i64 {
    shared::adapters::rt::PriorityRanges::default().to_rt(p)
}

/// A support agent working in the RT, through REST2 with their own token.
pub struct RtPerson {
    http: reqwest::Client,
    api: String,
    token: String,
    queue: String,
    sync_field: String,
    case_field: String,
    pub name: String,
    db: PathBuf,
}

impl RtPerson {
    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.api))
            .header("Authorization", format!("token {}", self.token))
    }

    async fn send(
        &self,
        b: reqwest::RequestBuilder,
        what: &str,
    ) -> anyhow::Result<(Option<String>, Value)> {
        let r = b.send().await.with_context(|| what.to_string())?;
        let status = r.status();
        let location = r
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        let body: Value = r.json().await.unwrap_or(Value::Null);
        ensure!(status.is_success(), "{what}: HTTP {status}: {body}");
        Ok((location, body))
    }

    /// Opens a ticket; `requestor` makes RT autoreply to that address.
    pub async fn open_ticket(
        &self,
        subject: &str,
        description: &str,
        priority: i64,
        flagged: bool,
        requestor: Option<&str>,
    ) -> anyhow::Result<String> {
        let mut body = json!({
            "Queue": self.queue,
            "Subject": subject,
            "Priority": priority,
            "Content": description,
            "ContentType": "text/plain",
            "CustomFields": { self.sync_field.clone(): if flagged { "true" } else { "false" } },
        });
        if let Some(r) = requestor {
            body["Requestor"] = json!(r);
        }
        let (_, created) = self
            .send(
                self.req(reqwest::Method::POST, "/ticket").json(&body),
                "open a ticket",
            )
            .await?;
        created["id"]
            .as_str()
            .map(str::to_string)
            .context("no ticket id")
    }

    /// Comments (`comment`) or replies (`correspond`); returns the transaction id.
    pub async fn message(&self, ticket: &str, kind: &str, body: &str) -> anyhow::Result<String> {
        let (location, _) = self
            .send(
                self.req(reqwest::Method::POST, &format!("/ticket/{ticket}/{kind}"))
                    .json(&json!({ "Content": body, "ContentType": "text/plain" })),
                "post a message",
            )
            .await?;
        location
            .as_deref()
            .and_then(|l| l.rsplit('/').next())
            .map(str::to_string)
            .context("no transaction Location")
    }

    /// Attaches a file in a comment; returns the attachment's id.
    pub async fn attach(
        &self,
        ticket: &str,
        kind: &str,
        filename: &str,
        mime: &str,
        data: &[u8],
    ) -> anyhow::Result<String> {
        let part = reqwest::multipart::Part::bytes(data.to_vec())
            .file_name(filename.to_string())
            .mime_str(mime)?;
        let form = reqwest::multipart::Form::new()
            .text(
                "JSON",
                json!({ "Content": "see the file", "ContentType": "text/plain" }).to_string(),
            )
            .part("Attachments", part);
        let (location, _) = self
            .send(
                self.req(reqwest::Method::POST, &format!("/ticket/{ticket}/{kind}"))
                    .multipart(form),
                "attach a file",
            )
            .await?;
        let txn = location
            .as_deref()
            .and_then(|l| l.rsplit('/').next())
            .context("no transaction Location")?
            .to_string();
        let (_, parts) = self
            .send(
                self.req(
                    reqwest::Method::GET,
                    &format!("/transaction/{txn}/attachments"),
                )
                .query(&[("fields", "Filename")]),
                "list the transaction's parts",
            )
            .await?;
        parts["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["Filename"] == filename)
            .and_then(|p| p["id"].as_str())
            .map(str::to_string)
            .context("the file is not in the transaction")
    }

    /// Changes ticket fields as the person; returns RT's messages.
    pub async fn update(&self, ticket: &str, body: Value) -> anyhow::Result<Value> {
        Ok(self
            .send(
                self.req(reqwest::Method::PUT, &format!("/ticket/{ticket}"))
                    .json(&body),
                "update a ticket",
            )
            .await?
            .1)
    }

    pub async fn ticket(&self, ticket: &str) -> anyhow::Result<Value> {
        Ok(self
            .send(
                self.req(reqwest::Method::GET, &format!("/ticket/{ticket}")),
                "read a ticket",
            )
            .await?
            .1)
    }

    /// Every transaction of the ticket with its type and creator.
    pub async fn history(&self, ticket: &str) -> anyhow::Result<Vec<Value>> {
        let (_, page) = self
            .send(
                self.req(reqwest::Method::GET, &format!("/ticket/{ticket}/history"))
                    .query(&[
                        ("fields", "Type,Creator,Field,NewValue"),
                        ("fields[Creator]", "Name"),
                        ("per_page", "100"),
                    ]),
                "read the history",
            )
            .await?;
        Ok(page["items"].as_array().cloned().unwrap_or_default())
    }

    /// Every MIME part RT lists for the ticket.
    pub async fn raw_parts(&self, ticket: &str) -> anyhow::Result<Vec<Value>> {
        let (_, page) = self
            .send(
                self.req(
                    reqwest::Method::GET,
                    &format!("/ticket/{ticket}/attachments"),
                )
                .query(&[
                    ("fields", "Filename,ContentType,TransactionId"),
                    ("per_page", "100"),
                ]),
                "list the ticket's parts",
            )
            .await?;
        Ok(page["items"].as_array().cloned().unwrap_or_default())
    }

    /// Tickets of the queue naming a Google case number in the Google-name field.
    pub async fn tickets_naming(&self, case_number: &str) -> anyhow::Result<Vec<Value>> {
        let (_, page) = self
            .send(
                self.req(reqwest::Method::GET, "/tickets").query(&[
                    (
                        "query",
                        format!("CF.{{{}}} LIKE 'cases/{case_number}'", self.case_field),
                    ),
                    ("fields", "Subject,Status,Priority,CustomFields".to_string()),
                    ("per_page", "100".to_string()),
                ]),
                "search tickets",
            )
            .await?;
        Ok(page["items"].as_array().cloned().unwrap_or_default())
    }

    /// Sets a ticket's created and last-updated time, straight in RT's SQLite DB: REST2
    /// cannot backdate, and the coarse-timestamp checks need it.
    pub fn backdate(&self, ticket: &str, at: DateTime<Utc>) -> anyhow::Result<()> {
        let stamp = at.format("%Y-%m-%d %H:%M:%S").to_string();
        let out = Command::new("perl")
            .args([
                "-MDBI",
                "-e",
                r#"my ($db, $at, $id) = @ARGV;
                   my $d = DBI->connect("dbi:SQLite:dbname=$db", "", "", {RaiseError => 1});
                   $d->sqlite_busy_timeout(10000);
                   $d->do("UPDATE Tickets SET Created = ?, LastUpdated = ? WHERE id = ?", undef, $at, $at, $id);
                   $d->do("UPDATE Transactions SET Created = ? WHERE ObjectType = 'RT::Ticket' AND ObjectId = ?", undef, $at, $id);"#,
            ])
            .arg(&self.db)
            .arg(&stamp)
            .arg(ticket)
            .output()
            .context("running perl DBI")?;
        ensure!(
            out.status.success(),
            "backdating: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn exports_are_read_with_and_without_quotes() {
        let env = super::parse_exports(
            "export RT_URL='http://x:1'\nexport RT_AGENT_NAME='Alex Agent'\nexport A=b\nnoise\n",
        );
        assert_eq!(env["RT_URL"], "http://x:1");
        assert_eq!(env["RT_AGENT_NAME"], "Alex Agent");
        assert_eq!(env["A"], "b");
        assert_eq!(env.len(), 3);
    }
}
