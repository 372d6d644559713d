//! casesync's configuration (README.md#configuration): a TOML file named by `CASESYNC_CONFIG`, overridden
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

/// The keys that hold credentials. They are read from the environment only (Secret Manager
/// on Cloud Run): one in the configuration file stops start-up, and an environment value
/// is always a string, whatever it looks like, and never printed.
/// Each CRM adapter declares its own (`adapters::registry::CrmKind::secret_keys`).
pub static SECRET_KEYS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    crate::adapters::registry::CRM_KINDS
        .iter()
        .flat_map(|k| k.secret_keys.iter().copied())
        .collect()
});

/// The environment variable that sets `key` (`crm.rt.token` → `CASESYNC_CRM__RT__TOKEN`).
pub fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.split('.')
            .map(str::to_ascii_uppercase)
            .collect::<Vec<_>>()
            .join("__")
    )
}

/// Deserializes a secret: a string, and nothing else. A value of another type is refused
/// without being shown (serde's own "invalid type: integer `123`" would print it).
pub fn deserialize_secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct SecretVisitor;

    impl SecretVisitor {
        fn refuse<E: serde::de::Error>(what: &str) -> Result<String, E> {
            Err(E::custom(format!(
                "a secret must be a string, not {what} (the value is not shown)"
            )))
        }
    }

    impl serde::de::Visitor<'_> for SecretVisitor {
        type Value = String;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<String, E> {
            Self::refuse("a boolean")
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<String, E> {
            Self::refuse("a number")
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<String, E> {
            Self::refuse("a number")
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<String, E> {
            Self::refuse("a number")
        }
        fn visit_char<E: serde::de::Error>(self, v: char) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<String, E> {
            Self::refuse("bytes")
        }
    }

    d.deserialize_string(SecretVisitor)
}

/// The values a duration key accepts, both ends included. The engine does date arithmetic
/// with every duration, so an unbounded one (`300000y`) would overflow at the first poll
/// instead of at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRange {
    pub min: Duration,
    pub max: Duration,
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

impl DurationRange {
    const fn secs(min: u64, max: u64) -> Self {
        DurationRange {
            min: Duration::from_secs(min),
            max: Duration::from_secs(max),
        }
    }

    /// How far before the last poll a poll searches again.
    pub const POLLING_WINDOW: DurationRange = DurationRange::secs(1, 7 * DAY);
    /// Ages of cases and mappings (pickup, cleanup, unlink, abandon): up to ten years.
    pub const AGE: DurationRange = DurationRange::secs(1, 3650 * DAY);
    /// How long a read may lag behind a write; zero trusts reads at once.
    pub const LAG: DurationRange = DurationRange::secs(0, DAY);
    /// A sync's lease: the function's timeout, which Cloud Run caps at an hour.
    pub const LEASE: DurationRange = DurationRange::secs(1, HOUR);
    /// The local runner's timers.
    pub const SCHEDULE: DurationRange = DurationRange::secs(1, 7 * DAY);

    pub fn contains(&self, d: Duration) -> bool {
        self.min <= d && d <= self.max
    }

    /// Refuses `value` of `key` unless it lies in the range; the error names the key, the
    /// value and the range.
    pub fn check(&self, key: &str, value: Duration) -> Result<(), ConfigError> {
        if self.contains(value) {
            Ok(())
        } else {
            Err(ConfigError::new(
                key,
                format!(
                    "`{}` is out of range: must be between {} and {}",
                    humantime_serde::re::humantime::format_duration(value),
                    short_duration(self.min),
                    short_duration(self.max)
                ),
            ))
        }
    }
}

/// `3650d`, `1h`, `90s`: a bound in its largest whole unit.
fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() != 0 {
        humantime_serde::re::humantime::format_duration(d).to_string()
    } else if s == 0 {
        "0s".into()
    } else if s.is_multiple_of(DAY) {
        format!("{}d", s / DAY)
    } else if s.is_multiple_of(HOUR) {
        format!("{}h", s / HOUR)
    } else if s.is_multiple_of(MINUTE) {
        format!("{}m", s / MINUTE)
    } else {
        format!("{s}s")
    }
}

/// The largest `sync.max_attachment_bytes`: 4 GiB, far above what the Cloud Support API
/// takes, and small enough that size arithmetic (base64, limits) cannot overflow.
pub const MAX_ATTACHMENT_BYTES_LIMIT: u64 = 4 * 1024 * 1024 * 1024;

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
    pub replay: Option<ReplaySection>,
    /// Read by cleanup-case-mappings.
    #[serde(default)]
    pub cleanup: CleanupSection,
}

/// The `[cleanup]` keys: the dead-letter pull subscriptions whose messages of cases that
/// have synced since are acknowledged by each cleanup run (none: dead letters are left alone).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CleanupSection {
    #[serde(default, deserialize_with = "list_or_comma_separated")]
    pub dead_letter_subscriptions: Vec<String>,
}

/// The `[replay]` keys of the `replay-dead-letters` job (which reads them from the
/// environment, `CASESYNC_REPLAY__*`; see [`replay_section_from_env`]).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReplaySection {
    /// The dead-letter pull subscriptions to drain: comma-separated, or a TOML array.
    #[serde(default, deserialize_with = "list_or_comma_separated")]
    pub subscriptions: Vec<String>,
    /// Where to republish messages that name no source topic.
    pub target_topic: Option<String>,
}

fn list_or_comma_separated<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    let items = match Raw::deserialize(d)? {
        Raw::One(s) => s.split(',').map(str::to_string).collect(),
        Raw::Many(v) => v,
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
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
    /// Which CRM adapter: a kind of `adapters::registry::CRM_KINDS` (`jira`, `rt`).
    pub kind: String,
    /// The adapter's own keys, read into its typed configuration by the registry
    /// (`CrmSettings::read`) when a function talks to the CRM. One field per kind, so that a
    /// misspelt section is named (`crm.rtt`).
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
    /// How long after its update time a change may still be missing from a read: a poll
    /// skips an unchanged case only if its last sync read at least this long after it.
    #[serde(with = "humantime_serde")]
    pub listing_lag: Duration,
    /// How many 404s of a counterpart, spanning `unlink_after`, unlink a suspect mapping.
    pub unlink_after_checks: u32,
    #[serde(with = "humantime_serde")]
    pub unlink_after: Duration,
    /// Unlinked and never-linked mappings without a successful sync for this long are
    /// resolved, so cleanup removes them.
    #[serde(with = "humantime_serde")]
    pub abandon_after: Duration,
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
            listing_lag: Duration::from_secs(5),
            unlink_after_checks: 3,
            unlink_after: Duration::from_secs(6 * 3600),
            abandon_after: Duration::from_secs(30 * 24 * 3600),
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
                let table = text.parse::<toml::Table>().map_err(|e| {
                    let line = e
                        .span()
                        .map(|s| format!(" (line {})", line_of(&text, s.start)))
                        .unwrap_or_default();
                    ConfigError::new(
                        &key_of_toml_error(&e),
                        format!(
                            "{}{line} is not valid TOML: {}",
                            p.display(),
                            e.message().trim()
                        ),
                    )
                })?;
                refuse_secrets_in_file(&table)?;
                table
            }
            None => toml::Table::new(),
        };
        apply_env_overrides(&mut table, env)?;
        Self::from_table(table)
    }

    pub fn from_table(table: toml::Table) -> Result<Config, ConfigError> {
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| serde_error("", e))?;
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
        // only needs to know the CRM's kind gets no credentials for it. The kind itself is
        // checked by the registry, so the functions and the local runner refuse alike.
        crate::adapters::registry::kind(&crm.kind).map(|_| ())
    }

    fn validate_sync_and_runner(&self) -> Result<(), ConfigError> {
        for (key, value, range) in self.durations() {
            range.check(key, value)?;
        }
        let s = &self.sync;
        if !(1..=MAX_ATTACHMENT_BYTES_LIMIT).contains(&s.max_attachment_bytes) {
            return Err(ConfigError::new(
                "sync.max_attachment_bytes",
                format!("must be between 1 and {MAX_ATTACHMENT_BYTES_LIMIT} (4 GiB)"),
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
        Ok(())
    }

    /// Every duration key with its value and the range it must lie in (checked at
    /// start-up). A new duration key belongs here; a test fails until it is.
    pub fn durations(&self) -> Vec<(&'static str, Duration, DurationRange)> {
        let (s, r) = (&self.sync, &self.runner);
        vec![
            (
                "sync.google_polling_window",
                s.google_polling_window,
                DurationRange::POLLING_WINDOW,
            ),
            (
                "sync.company_polling_window",
                s.company_polling_window,
                DurationRange::POLLING_WINDOW,
            ),
            ("sync.pickup_max_age", s.pickup_max_age, DurationRange::AGE),
            ("sync.cleanup_after", s.cleanup_after, DurationRange::AGE),
            ("sync.unlink_after", s.unlink_after, DurationRange::AGE),
            ("sync.abandon_after", s.abandon_after, DurationRange::AGE),
            ("sync.lookup_lag", s.lookup_lag, DurationRange::LAG),
            ("sync.listing_lag", s.listing_lag, DurationRange::LAG),
            ("sync.lease", s.lease, DurationRange::LEASE),
            (
                "runner.poll_google_every",
                r.poll_google_every,
                DurationRange::SCHEDULE,
            ),
            (
                "runner.poll_company_every",
                r.poll_company_every,
                DurationRange::SCHEDULE,
            ),
            (
                "runner.detect_outages_every",
                r.detect_outages_every,
                DurationRange::SCHEDULE,
            ),
            (
                "runner.cleanup_every",
                r.cleanup_every,
                DurationRange::SCHEDULE,
            ),
        ]
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
        settings.listing_lag = chrono(s.listing_lag);
        settings.unlink_after_checks = s.unlink_after_checks.max(1);
        settings.unlink_after = chrono(s.unlink_after);
        settings.abandon_after = chrono(s.abandon_after);
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

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The value at dotted `key` in `table`, if any.
fn lookup<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let mut parts = key.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

/// A secret in the configuration file stops start-up: the file is not a secret store, and
/// it is read by whoever can read the deployment. The error names the key, never the value.
fn refuse_secrets_in_file(table: &toml::Table) -> Result<(), ConfigError> {
    match SECRET_KEYS.iter().find(|key| lookup(table, key).is_some()) {
        Some(key) => Err(ConfigError::new(
            key,
            format!(
                "is a secret and must not be in the configuration file: remove it there and \
                 set it through the environment ({}) or Secret Manager",
                env_name(key)
            ),
        )),
        None => Ok(()),
    }
}

/// Sets `CASESYNC_A__B__C=value` as key `a.b.c`. A value that reads as a TOML array,
/// boolean or number is taken as one; anything else, and every secret ([`SECRET_KEYS`]),
/// is a string.
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
        // A secret is a string whatever it looks like: an all-digit token read as an
        // integer would fail to deserialize, and the type error would print it.
        let value = if SECRET_KEYS.contains(&key.as_str()) {
            toml::Value::String(raw)
        } else {
            env_value(&raw)
        };
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

/// The process environment as strings, for [`Config::load`]. `std::env::vars` panics on a
/// variable that is not UTF-8; here such a `CASESYNC_*` variable is an error naming it, and
/// any other is skipped (casesync reads none of them).
pub fn process_env() -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        match (name.into_string(), value.into_string()) {
            (Ok(name), Ok(value)) => vars.push((name, value)),
            (Ok(name), Err(_)) if name.starts_with(ENV_PREFIX) => {
                return Err(ConfigError::new(&name, "is not valid UTF-8"));
            }
            _ => {}
        }
    }
    Ok(vars)
}

/// The `[replay]` keys from `CASESYNC_REPLAY__*`, checked like the rest of the
/// configuration: a misspelt key stops the replay job with its name.
pub fn replay_section_from_env(
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<ReplaySection, ConfigError> {
    let mut table = toml::Table::new();
    apply_env_overrides(
        &mut table,
        env.into_iter()
            .filter(|(k, _)| k.starts_with("CASESYNC_REPLAY__")),
    )?;
    let section = table
        .remove("replay")
        .unwrap_or_else(|| toml::Value::Table(toml::Table::new()));
    serde_path_to_error::deserialize(section).map_err(|e| serde_error("replay", e))
}

/// A deserialization error as a [`ConfigError`] naming the key below `prefix` (an unknown
/// key is named itself: `sync.cleanup_afterr`).
fn serde_error(prefix: &str, e: serde_path_to_error::Error<toml::de::Error>) -> ConfigError {
    let path = e.path().to_string();
    let message = e.into_inner().message().trim().to_string();
    let key = match (prefix, path.as_str()) {
        ("", ".") => "(top level)".to_string(),
        (p, ".") => p.to_string(),
        ("", path) => path.to_string(),
        (p, path) => format!("{p}.{path}"),
    };
    ConfigError::new(&key, message)
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
        assert!(broken.problem.contains("line 1"), "{broken}");
    }

    /// `GOOD` plus `[section]` holding `line` (and no other `[sync]`).
    fn with_section(section: &str, line: &str) -> String {
        format!("{GOOD}\n[{section}]\n{line}\n")
            .replace("[sync]\ngoogle_polling_window = \"30m\"\n", "")
    }

    /// The keys of a section, as serde lists them for an unknown one.
    fn keys_of(section: &str) -> Vec<String> {
        let err = load(&with_section(section, "zzz_no_such_key = 1"), &[]).unwrap_err();
        assert_eq!(err.key, format!("{section}.zzz_no_such_key"), "{err}");
        let list = err.problem.split("expected").nth(1).unwrap_or_default();
        list.split('`')
            .skip(1)
            .step_by(2)
            .map(|k| format!("{section}.{k}"))
            .collect()
    }

    #[test]
    fn every_duration_key_is_range_checked() {
        let listed: Vec<&str> = Config::from_table(toml::Table::new())
            .unwrap()
            .durations()
            .iter()
            .map(|(k, _, _)| *k)
            .collect();
        let mut found = 0;
        for section in ["sync", "runner"] {
            let keys = keys_of(section);
            assert!(keys.len() > 5, "{keys:?}");
            for key in keys {
                let (sec, name) = key.split_once('.').unwrap();
                // A key that parses "300000y" and finds it out of range is a duration; it
                // must be in `durations()` (a string key takes it, others refuse its type).
                let text = with_section(sec, &format!("{name} = \"300000y\""));
                let takes_a_duration = matches!(
                    load(&text, &[]),
                    Err(e) if e.key == key && e.problem.contains("out of range")
                );
                assert_eq!(
                    takes_a_duration,
                    listed.contains(&key.as_str()),
                    "{key}: a duration key missing from Config::durations (or listed but not one)"
                );
                found += usize::from(takes_a_duration);
            }
        }
        assert_eq!(found, listed.len());
    }

    #[test]
    fn durations_outside_their_class_range_are_refused_naming_key_and_range() {
        let defaults = Config::from_table(toml::Table::new()).unwrap();
        let classes = [
            ("sync.google_polling_window", "1s", "7d"),
            ("sync.pickup_max_age", "1s", "3650d"),
            ("sync.lookup_lag", "0s", "1d"),
            ("sync.lease", "1s", "1h"),
            ("runner.cleanup_every", "1s", "7d"),
        ];
        for (key, min, max) in classes {
            let range = defaults
                .durations()
                .into_iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, _, r)| r)
                .unwrap();
            assert_eq!(short_duration(range.min), min, "{key}");
            assert_eq!(short_duration(range.max), max, "{key}");
        }
        for (key, _, range) in defaults.durations() {
            let env = env_name(key);
            let set = |d: Duration| {
                let text = humantime_serde::re::humantime::format_duration(d).to_string();
                load(GOOD, &[(env.as_str(), text.as_str())])
            };
            assert!(set(range.min).is_ok(), "{key} at its minimum");
            assert!(set(range.max).is_ok(), "{key} at its maximum");
            let above = set(range.max + Duration::from_secs(1)).unwrap_err();
            assert_eq!(above.key, key);
            let range_text = format!(
                "between {} and {}",
                short_duration(range.min),
                short_duration(range.max)
            );
            assert!(above.problem.contains(&range_text), "{above}");
            if !range.min.is_zero() {
                let below = set(range.min - Duration::from_millis(1)).unwrap_err();
                assert_eq!(below.key, key, "{below}");
            }
        }
    }

    #[test]
    fn a_huge_duration_in_the_file_stops_start_up_instead_of_the_first_cleanup() {
        for key in ["cleanup_after", "pickup_max_age", "abandon_after"] {
            let text = GOOD.replace(
                "google_polling_window = \"30m\"",
                &format!("{key} = \"300000y\""),
            );
            let err = load(&text, &[]).unwrap_err();
            assert_eq!(err.key, format!("sync.{key}"));
            assert_eq!(
                err.to_string(),
                format!(
                    "configuration key `sync.{key}`: `300000years` is out of range: \
                     must be between 1s and 3650d"
                )
            );
        }
        let err = load(GOOD, &[("CASESYNC_SYNC__LEASE", "0s")]).unwrap_err();
        assert_eq!(err.key, "sync.lease");
        let err = load(
            GOOD,
            &[("CASESYNC_SYNC__MAX_ATTACHMENT_BYTES", "99999999999999")],
        )
        .unwrap_err();
        assert_eq!(err.key, "sync.max_attachment_bytes");
    }

    #[test]
    fn every_accepted_duration_keeps_date_arithmetic_in_range() {
        let now = chrono::Utc::now();
        let mut env: Vec<(String, String)> = Vec::new();
        let defaults = Config::from_table(toml::Table::new()).unwrap();
        for (key, _, range) in defaults.durations() {
            let max = humantime_serde::re::humantime::format_duration(range.max).to_string();
            env.push((env_name(key), max));
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let s = load(GOOD, &env).unwrap().sync_settings();
        for d in [
            s.google_polling_window,
            s.company_polling_window,
            s.pickup_max_age,
            s.cleanup_after,
            s.lookup_lag,
            s.lease_duration,
            s.listing_lag,
            s.unlink_after,
            s.abandon_after,
        ] {
            assert!(now.checked_sub_signed(d).is_some() && now.checked_add_signed(d).is_some());
            assert!(now.checked_sub_signed(d + d).is_some(), "two windows back");
        }
    }

    #[test]
    fn a_secret_in_the_file_is_refused_naming_the_key_and_the_environment_variable() {
        for key in SECRET_KEYS.iter() {
            let (section, name) = key.rsplit_once('.').unwrap();
            let text = format!("{GOOD}\n[{section}]\n{name} = \"hunter2-secret\"\n").replace(
                "[crm.jira]\nbase_url = \"https://example.atlassian.net\"\n",
                "",
            );
            let err = load(&text, &[]).unwrap_err();
            assert_eq!(err.key, *key, "{err}");
            assert!(err.problem.contains(&env_name(key)), "{err}");
            assert!(err.problem.contains("Secret Manager"), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
            // The same key through the environment is how it is meant to be set.
            let ok = load(GOOD, &[(env_name(key).as_str(), "hunter2-secret")]).unwrap();
            assert!(ok.crm.is_some());
        }
        let dotted = load(&format!("{GOOD}\n[crm.rt]\ntoken = 5\n"), &[]).unwrap_err();
        assert_eq!(dotted.key, "crm.rt.token");
        let inline = load(
            &GOOD.replace(
                "[crm.jira]\nbase_url = \"https://example.atlassian.net\"",
                "jira = { oauth_token = \"x\" }",
            ),
            &[],
        )
        .unwrap_err();
        assert_eq!(inline.key, "crm.jira.oauth_token", "{inline}");
        assert_eq!(env_name("crm.rt.token"), "CASESYNC_CRM__RT__TOKEN");
    }

    #[test]
    fn secrets_from_the_environment_stay_strings_whatever_they_look_like() {
        for raw in ["0123456789", "123", "true", "[1, 2]", "1.5", " 42 "] {
            let c = load(
                GOOD,
                &[
                    ("CASESYNC_CRM__JIRA__API_TOKEN", raw),
                    ("CASESYNC_CRM__RT__TOKEN", raw),
                ],
            )
            .unwrap();
            let crm = c.crm.unwrap();
            assert_eq!(crm.jira.unwrap()["api_token"].as_str(), Some(raw));
            assert_eq!(crm.rt.unwrap()["token"].as_str(), Some(raw));
        }
        // Other keys keep their typed reading.
        let c = load(GOOD, &[("CASESYNC_RUNNER__WORKERS", "7")]).unwrap();
        assert_eq!(c.runner.workers, 7);
    }

    #[cfg(feature = "rt")]
    #[test]
    fn an_all_digit_rt_token_through_the_environment_reaches_the_adapter_intact() {
        let c = load(
            "[crm]\nkind = \"rt\"\n[crm.rt]\nbase_url = \"https://rt.example.com\"\n\
             user = \"casesync\"\nqueue = \"Q\"\n",
            &[("CASESYNC_CRM__RT__TOKEN", "0123456789")],
        )
        .unwrap();
        let table = c.crm.unwrap().rt.unwrap();
        let rt = crate::adapters::rt::RtConfig::from_toml(table).unwrap();
        assert_eq!(rt.token.expose(), "0123456789");
    }

    #[test]
    fn no_configuration_error_prints_a_secret() {
        let token = "0123456789";
        let bad: &[(&str, &str)] = &[
            ("CASESYNC_SYNC__LEASE", "0s"),
            ("CASESYNC_CRM__KIND", "zendesk"),
            ("CASESYNC_CRM__RT__TOKEN__INNER", "x"),
            ("CASESYNC_GOOGLE__PARENT", "folders/1"),
        ];
        for (k, v) in bad {
            for secret in ["CASESYNC_CRM__RT__TOKEN", "CASESYNC_CRM__JIRA__API_TOKEN"] {
                let err = load(GOOD, &[(secret, token), (k, v)])
                    .err()
                    .map(|e| format!("{e} {e:?}"))
                    .unwrap_or_default();
                assert!(!err.contains(token) && !err.contains("123456789"), "{err}");
            }
        }
    }

    #[test]
    fn unknown_keys_are_named_in_every_section_including_replay() {
        for (text, key) in [
            ("[replay]\nsubscription = \"a\"\n", "replay.subscription"),
            ("[sync]\ncleanup_afterr = \"1d\"\n", "sync.cleanup_afterr"),
            ("[runner]\nworker = 1\n", "runner.worker"),
            (
                "[firestore]\nproject = \"p\"\ndatabase = \"d\"\nhost = \"h\"\n",
                "firestore.host",
            ),
            (
                "[pubsub]\nproject = \"p\"\nemulator = \"h\"\n",
                "pubsub.emulator",
            ),
            ("[crm]\nkind = \"rt\"\nrtt = {}\n", "crm.rtt"),
            ("[synk]\n", "synk"),
        ] {
            let err = load(text, &[]).unwrap_err();
            assert_eq!(err.key, key, "{err}");
        }
        let replay = load(
            "[replay]\nsubscriptions = [\"a\", \"b\"]\ntarget_topic = \"t\"\n",
            &[],
        )
        .unwrap()
        .replay
        .unwrap();
        assert_eq!(replay.subscriptions, vec!["a", "b"]);
        assert_eq!(replay.target_topic.as_deref(), Some("t"));
    }

    #[test]
    fn the_replay_job_checks_its_environment_for_typos() {
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let ok = replay_section_from_env(env(&[
            ("CASESYNC_REPLAY__SUBSCRIPTIONS", "a, b,"),
            ("CASESYNC_PUBSUB__PROJECT", "p"),
        ]))
        .unwrap();
        assert_eq!(ok.subscriptions, vec!["a", "b"]);
        let err = replay_section_from_env(env(&[
            ("CASESYNC_REPLAY__SUBSCRIPTIONS", "a"),
            ("CASESYNC_REPLAY__TARGET_TOPC", "t"),
        ]))
        .unwrap_err();
        assert_eq!(err.key, "replay.target_topc");
        assert!(err.problem.contains("target_topic"), "{err}");
        assert_eq!(
            replay_section_from_env(Vec::new()).unwrap(),
            ReplaySection::default()
        );
    }
}
