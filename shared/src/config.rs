//! casesync's configuration (§11.14): a TOML file named by `CASESYNC_CONFIG`, overridden
//! by environment variables `CASESYNC_{SECTION}__{KEY}` (nested keys joined by `__`), read
//! and checked once at start-up. Every error names the key that is wrong, so an operator
//! can fix it without reading code. Secrets come only from the environment (or Secret
//! Manager, which Cloud Run exposes as environment variables).

use crate::domain::Side;
use crate::tasks::{IncludeFilter, SyncSettings};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// What is wrong with the configuration, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration key `{key}`: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    fn new(key: &str, problem: impl Into<String>) -> Self {
        ConfigError {
            key: key.to_string(),
            problem: problem.into(),
        }
    }
}

pub const ENV_PREFIX: &str = "CASESYNC_";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Required wherever the Cloud Support API or the CRM is used (see `require_google`).
    pub google: Option<GoogleConfig>,
    /// Required wherever the CRM is used.
    pub crm: Option<CrmConfig>,
    #[serde(default)]
    pub sync: SyncConfig,
    #[serde(default)]
    pub runner: RunnerConfig,
    /// The Firestore store of the Cloud Run functions.
    pub firestore: Option<FirestoreSection>,
    /// The Pub/Sub topics of the Cloud Run functions.
    pub pubsub: Option<PubSubSection>,
    /// Read by the HTTP shim from the environment (`ShimConfig::from_env`).
    pub shim: Option<toml::Table>,
    /// Read by the replay job.
    pub replay: Option<toml::Table>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FirestoreSection {
    pub project: String,
    pub database: String,
    /// `host:port` of a Firestore emulator (tests only).
    pub emulator_host: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PubSubSection {
    pub project: String,
    /// `host:port` of a Pub/Sub emulator (tests only); anonymous credentials are then used.
    pub emulator_host: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GoogleConfig {
    /// The organization or project to poll: `organizations/{id}` or `projects/{id}`.
    pub parent: String,
    /// Where Google cases for CRM cases are created; defaults to `parent`.
    pub create_parent: Option<String>,
    /// The case classification of created cases; checked at start-up.
    pub classification_id: String,
    /// casesync's own Google e-mail(s): only items by these count as mirrors.
    pub own_identities: Vec<String>,
    #[serde(default)]
    pub subscriber_emails: Vec<String>,
    /// Create Google cases as test cases (they reach no engineer).
    #[serde(default)]
    pub test_case: bool,
    /// The API endpoint; set it to use an emulator.
    pub endpoint: Option<String>,
    /// Send no credentials (for an emulator only).
    #[serde(default)]
    pub anonymous: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CrmConfig {
    /// Which CRM adapter: `jira` or `rt` (Request Tracker).
    pub kind: String,
    /// The adapter's own keys, read by the adapter (see the README).
    pub jira: Option<toml::Value>,
    /// The Request Tracker adapter's keys (`[crm.rt]`).
    pub rt: Option<toml::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IncludeConfig {
    #[serde(default)]
    pub projects: Vec<String>,
    #[serde(default)]
    pub classification_prefixes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    #[serde(with = "humantime_serde")]
    pub google_polling_window: Duration,
    #[serde(with = "humantime_serde")]
    pub company_polling_window: Duration,
    #[serde(with = "humantime_serde")]
    pub pickup_max_age: Duration,
    #[serde(with = "humantime_serde")]
    pub cleanup_after: Duration,
    /// `google` or `company`: whose priority wins when both changed.
    pub conflict_winner: Side,
    #[serde(with = "humantime_serde")]
    pub lookup_lag: Duration,
    pub max_attachment_bytes: u64,
    pub crm_requests_per_second: f64,
    pub include: IncludeConfig,
    pub outage_requeue_batch: usize,
    /// How long one sync may hold a case: the sync function's timeout.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            google_polling_window: Duration::from_secs(30 * 60),
            company_polling_window: Duration::from_secs(5 * 60),
            pickup_max_age: Duration::from_secs(30 * 24 * 3600),
            cleanup_after: Duration::from_secs(30 * 24 * 3600),
            conflict_winner: Side::Google,
            lookup_lag: Duration::from_secs(10 * 60),
            max_attachment_bytes: 50 * 1024 * 1024,
            crm_requests_per_second: 5.0,
            include: IncludeConfig::default(),
            outage_requeue_batch: 100,
            lease: crate::retry_policy::PRODUCTION_QUEUE.request_timeout,
        }
    }
}

/// Settings of the all-in-one local runner only.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RunnerConfig {
    #[serde(with = "humantime_serde")]
    pub poll_google_every: Duration,
    #[serde(with = "humantime_serde")]
    pub poll_company_every: Duration,
    #[serde(with = "humantime_serde")]
    pub detect_outages_every: Duration,
    #[serde(with = "humantime_serde")]
    pub cleanup_every: Duration,
    pub workers: usize,
    /// The SQLite file holding mappings and the queue.
    pub database: String,
    /// `production` or `fast`: the retry profile of `retry_policy`.
    pub queue_profile: String,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            poll_google_every: Duration::from_secs(60),
            poll_company_every: Duration::from_secs(60),
            detect_outages_every: Duration::from_secs(300),
            cleanup_every: Duration::from_secs(24 * 3600),
            workers: 4,
            database: "casesync.sqlite".into(),
            queue_profile: "production".into(),
        }
    }
}

impl Config {
    /// Reads `path` (if any), applies `CASESYNC_*` overrides from `env`, and checks it all.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    ConfigError::new(
                        "CASESYNC_CONFIG",
                        format!("cannot read {}: {e}", p.display()),
                    )
                })?;
                text.parse::<toml::Table>().map_err(|e| {
                    ConfigError::new(
                        &key_of_toml_error(&e),
                        format!("{} is not valid TOML: {}", p.display(), e.message()),
                    )
                })?
            }
            None => toml::Table::new(),
        };
        apply_env_overrides(&mut table, env)?;
        Self::from_table(table)
    }

    pub fn from_table(table: toml::Table) -> Result<Config, ConfigError> {
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                ConfigError::new(
                    if path == "." { "(top level)" } else { &path },
                    inner.message().to_string(),
                )
            })?;
        config.validate()?;
        Ok(config)
    }

    /// The `[google]` section, or an error naming it.
    pub fn require_google(&self) -> Result<&GoogleConfig, ConfigError> {
        self.google.as_ref().ok_or_else(|| {
            ConfigError::new(
                "google",
                "the [google] section (CASESYNC_GOOGLE__*) is required",
            )
        })
    }

    /// The `[crm]` section, or an error naming it.
    pub fn require_crm(&self) -> Result<&CrmConfig, ConfigError> {
        self.crm.as_ref().ok_or_else(|| {
            ConfigError::new("crm", "the [crm] section (CASESYNC_CRM__*) is required")
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(g) = &self.google {
            Self::validate_google(g)?;
        }
        if let Some(crm) = &self.crm {
            Self::validate_crm(crm)?;
        }
        self.validate_sync_and_runner()
    }

    fn validate_google(g: &GoogleConfig) -> Result<(), ConfigError> {
        check_parent("google.parent", &g.parent)?;
        if let Some(p) = &g.create_parent {
            check_parent("google.create_parent", p)?;
        }
        if g.classification_id.trim().is_empty() {
            return Err(ConfigError::new(
                "google.classification_id",
                "must not be empty",
            ));
        }
        if g.own_identities.is_empty() {
            return Err(ConfigError::new(
                "google.own_identities",
                "must list casesync's own Google e-mail",
            ));
        }
        for (i, email) in g
            .own_identities
            .iter()
            .chain(&g.subscriber_emails)
            .enumerate()
        {
            if !email.contains('@') || email.trim() != email {
                let key = if i < g.own_identities.len() {
                    "google.own_identities"
                } else {
                    "google.subscriber_emails"
                };
                return Err(ConfigError::new(
                    key,
                    format!("`{email}` is not an e-mail address"),
                ));
            }
        }
        if let Some(endpoint) = &g.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(ConfigError::new(
                "google.endpoint",
                format!("`{endpoint}` is not an http(s) URL"),
            ));
        }
        Ok(())
    }

    fn validate_crm(crm: &CrmConfig) -> Result<(), ConfigError> {
        // The adapter's own keys are checked when the adapter is built: a function that
        // only needs to know the CRM's kind gets no credentials for it.
        match crm.kind.as_str() {
            "jira" | "rt" => Ok(()),
            other => Err(ConfigError::new(
                "crm.kind",
                format!("unknown CRM `{other}` (supported: jira, rt)"),
            )),
        }
    }

    fn validate_sync_and_runner(&self) -> Result<(), ConfigError> {
        let s = &self.sync;
        for (key, d) in [
            ("sync.google_polling_window", s.google_polling_window),
            ("sync.company_polling_window", s.company_polling_window),
            ("sync.pickup_max_age", s.pickup_max_age),
            ("sync.cleanup_after", s.cleanup_after),
            ("sync.lease", s.lease),
        ] {
            if d.is_zero() {
                return Err(ConfigError::new(key, "must be longer than zero"));
            }
        }
        if s.max_attachment_bytes == 0 {
            return Err(ConfigError::new(
                "sync.max_attachment_bytes",
                "must be more than zero",
            ));
        }
        if !(s.crm_requests_per_second > 0.0 && s.crm_requests_per_second.is_finite()) {
            return Err(ConfigError::new(
                "sync.crm_requests_per_second",
                "must be a positive number",
            ));
        }
        if s.outage_requeue_batch == 0 {
            return Err(ConfigError::new(
                "sync.outage_requeue_batch",
                "must be at least 1",
            ));
        }
        let r = &self.runner;
        if r.workers == 0 || r.workers > 64 {
            return Err(ConfigError::new(
                "runner.workers",
                "must be between 1 and 64",
            ));
        }
        if crate::retry_policy::QueuePolicy::by_name(&r.queue_profile).is_none() {
            return Err(ConfigError::new(
                "runner.queue_profile",
                format!("`{}` is neither `production` nor `fast`", r.queue_profile),
            ));
        }
        for (key, d) in [
            ("runner.poll_google_every", r.poll_google_every),
            ("runner.poll_company_every", r.poll_company_every),
            ("runner.detect_outages_every", r.detect_outages_every),
            ("runner.cleanup_every", r.cleanup_every),
        ] {
            if d < Duration::from_secs(1) {
                return Err(ConfigError::new(key, "must be at least 1s"));
            }
        }
        Ok(())
    }

    /// What the task bodies need.
    /// What the task bodies need. Without a `[google]` section (a function that never talks
    /// to Google) the Google settings stay empty.
    pub fn sync_settings(&self) -> SyncSettings {
        let s = &self.sync;
        let chrono = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        let mut settings = SyncSettings::with_defaults("", "");
        settings.own_google_identities.clear();
        if let Some(g) = &self.google {
            settings.google_parent = g.parent.clone();
            settings.google_create_parent =
                g.create_parent.clone().unwrap_or_else(|| g.parent.clone());
            settings.classification_id = g.classification_id.clone();
            settings.own_google_identities = g.own_identities.clone();
            settings.subscriber_emails = g.subscriber_emails.clone();
            settings.test_case = g.test_case;
        }
        settings.google_polling_window = chrono(s.google_polling_window);
        settings.company_polling_window = chrono(s.company_polling_window);
        settings.pickup_max_age = chrono(s.pickup_max_age);
        settings.cleanup_after = chrono(s.cleanup_after);
        settings.conflict_winner = s.conflict_winner;
        settings.lookup_lag = chrono(s.lookup_lag);
        settings.max_attachment_bytes = s.max_attachment_bytes;
        settings.lease_duration = chrono(s.lease);
        settings.include = IncludeFilter {
            projects: s.include.projects.clone(),
            classification_prefixes: s.include.classification_prefixes.clone(),
        };
        settings.outage_requeue_batch = s.outage_requeue_batch;
        settings
    }
}

fn check_parent(key: &str, value: &str) -> Result<(), ConfigError> {
    let ok = value.split_once('/').is_some_and(|(kind, id)| {
        matches!(kind, "projects" | "organizations") && !id.is_empty() && !id.contains('/')
    });
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("`{value}` is neither `projects/{{id}}` nor `organizations/{{id}}`"),
        ))
    }
}

fn key_of_toml_error(_e: &toml::de::Error) -> String {
    "CASESYNC_CONFIG".to_string()
}

/// Sets `CASESYNC_A__B__C=value` as key `a.b.c`. A value that reads as a TOML array,
/// boolean or number is taken as one; anything else is a string.
pub fn apply_env_overrides(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.contains("__") && k != "CASESYNC_CONFIG")
        .collect();
    vars.sort();
    for (name, raw) in vars {
        let path: Vec<String> = name[ENV_PREFIX.len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let key = path.join(".");
        if path.iter().any(|p| p.is_empty()) {
            return Err(ConfigError::new(
                &name,
                "is not of the form CASESYNC_SECTION__KEY",
            ));
        }
        let value = env_value(&raw);
        let mut node = &mut *table;
        for part in &path[..path.len() - 1] {
            let entry = node
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            node = entry
                .as_table_mut()
                .ok_or_else(|| ConfigError::new(&key, format!("`{part}` is not a section")))?;
        }
        if let Some(last) = path.last() {
            node.insert(last.clone(), value);
        }
    }
    Ok(())
}

fn env_value(raw: &str) -> toml::Value {
    let trimmed = raw.trim();
    let looks_typed = trimmed.starts_with('[')
        || trimmed == "true"
        || trimmed == "false"
        || (!trimmed.is_empty()
            && trimmed.chars().all(|c| c.is_ascii_digit())
            && trimmed.len() < 16);
    if looks_typed
        && let Ok(t) = format!("v = {trimmed}").parse::<toml::Table>()
        && let Some(v) = t.get("v")
    {
        return v.clone();
    }
    toml::Value::String(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[google]
parent = "organizations/123"
create_parent = "projects/demo"
classification_id = "abc"
own_identities = ["casesync@demo.iam.gserviceaccount.com"]

[crm]
kind = "jira"
[crm.jira]
base_url = "https://example.atlassian.net"

[sync]
google_polling_window = "30m"
"#;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        Config::load(
            Some(&p),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn a_good_file_loads_with_defaults_for_the_rest() {
        let c = load(GOOD, &[]).unwrap();
        assert_eq!(c.sync.company_polling_window, Duration::from_secs(300));
        assert_eq!(c.runner.workers, 4);
        let s = c.sync_settings();
        assert_eq!(s.google_create_parent, "projects/demo");
        assert_eq!(s.google_polling_window, chrono::Duration::minutes(30));
    }

    #[test]
    fn environment_variables_override_the_file() {
        let c = load(
            GOOD,
            &[
                ("CASESYNC_GOOGLE__PARENT", "projects/other"),
                ("CASESYNC_SYNC__MAX_ATTACHMENT_BYTES", "1024"),
                ("CASESYNC_GOOGLE__OWN_IDENTITIES", r#"["a@b.c", "d@e.f"]"#),
                ("CASESYNC_RUNNER__WORKERS", "2"),
                ("CASESYNC_CRM__JIRA__API_TOKEN", "secret"),
                ("UNRELATED", "x"),
            ],
        )
        .unwrap();
        let g = c.google.as_ref().unwrap();
        assert_eq!(g.parent, "projects/other");
        assert_eq!(c.sync.max_attachment_bytes, 1024);
        assert_eq!(c.google.as_ref().unwrap().own_identities.len(), 2);
        assert_eq!(c.runner.workers, 2);
        assert_eq!(
            c.crm.unwrap().jira.unwrap()["api_token"].as_str(),
            Some("secret")
        );
    }

    type ErrorCase<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

    #[test]
    fn every_error_names_its_key() {
        let cases: &[ErrorCase] = &[
            (
                GOOD,
                &[("CASESYNC_GOOGLE__PARENT", "folders/1")],
                "google.parent",
            ),
            (
                GOOD,
                &[("CASESYNC_GOOGLE__CLASSIFICATION_ID", " ")],
                "google.classification_id",
            ),
            (
                GOOD,
                &[("CASESYNC_GOOGLE__OWN_IDENTITIES", "[]")],
                "google.own_identities",
            ),
            (
                GOOD,
                &[("CASESYNC_GOOGLE__OWN_IDENTITIES", r#"["nobody"]"#)],
                "google.own_identities",
            ),
            (
                GOOD,
                &[("CASESYNC_GOOGLE__ENDPOINT", "ftp://x")],
                "google.endpoint",
            ),
            (GOOD, &[("CASESYNC_CRM__KIND", "zendesk")], "crm.kind"),
            (
                GOOD,
                &[("CASESYNC_SYNC__GOOGLE_POLLING_WINDOW", "soon")],
                "sync.google_polling_window",
            ),
            (
                GOOD,
                &[("CASESYNC_SYNC__CONFLICT_WINNER", "both")],
                "sync.conflict_winner",
            ),
            (
                GOOD,
                &[("CASESYNC_SYNC__MAX_ATTACHMENT_BYTES", "0")],
                "sync.max_attachment_bytes",
            ),
            (GOOD, &[("CASESYNC_SYNC__NO_SUCH_KEY", "1")], "sync"),
            (GOOD, &[("CASESYNC_RUNNER__WORKERS", "0")], "runner.workers"),
            (
                GOOD,
                &[("CASESYNC_RUNNER__QUEUE_PROFILE", "slow")],
                "runner.queue_profile",
            ),
        ];
        for (text, env, key) in cases {
            let err = load(text, env).unwrap_err();
            assert!(
                err.key.starts_with(key),
                "{env:?}: expected key {key}, got {err}"
            );
            assert!(err.to_string().contains(key));
        }
        let partial = load("[crm]\nkind = \"jira\"\n[crm.jira]\n", &[]).unwrap();
        assert_eq!(partial.require_google().unwrap_err().key, "google");
        assert!(partial.require_crm().is_ok());
        let broken = load("[google\n", &[]).unwrap_err();
        assert_eq!(broken.key, "CASESYNC_CONFIG");
    }
}
