//! The `[crm.rt]` settings: which RT and queue, casesync's own RT user and token, and how
//! the RT instance is customised (custom field names, the flag's value, the priority
//! ranges, which statuses mean closed and which one closes, Comment or Correspond). Every
//! RT differs in these, so none of them is hard-coded in the adapter.
//!
//! Keys are flat where an environment override has to reach them
//! (`CASESYNC_CRM__RT__TOKEN`).

use crate::domain::Priority;
use crate::error::{PortError, PortResult};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// A credential. Never printed: `Debug` shows a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    /// A string only, never shown in an error (see `config::deserialize_secret`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::config::deserialize_secret(d).map(Secret)
    }
}

/// Which RT transaction casesync's comments become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentType {
    /// An internal comment: requestors are not mailed.
    #[default]
    Comment,
    /// A public reply: RT mails the requestors. On a closed ticket casesync still writes a
    /// Comment, because RT reopens a ticket on correspondence.
    Correspond,
}

/// RT priorities are numbers: a level is read from ranges (`p0_from` and up is P0, …,
/// below `p3_from` is P4) and written as one number per level (docs/INVARIANTS.md#priority-and-close).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorityRanges {
    pub p0_from: i64,
    pub p1_from: i64,
    pub p2_from: i64,
    pub p3_from: i64,
    pub p0: i64,
    pub p1: i64,
    pub p2: i64,
    pub p3: i64,
    pub p4: i64,
}

impl Default for PriorityRanges {
    fn default() -> Self {
        PriorityRanges {
            p0_from: 90,
            p1_from: 65,
            p2_from: 35,
            p3_from: 10,
            p0: 100,
            p1: 80,
            p2: 50,
            p3: 20,
            p4: 0,
        }
    }
}

impl PriorityRanges {
    /// The RT number casesync writes for `p`.
    pub fn to_rt(&self, p: Priority) -> i64 {
        match p {
            Priority::P0 => self.p0,
            Priority::P1 => self.p1,
            Priority::P2 => self.p2,
            Priority::P3 => self.p3,
            Priority::P4 => self.p4,
        }
    }

    /// The level an RT priority number reads as.
    pub fn from_rt(&self, value: i64) -> Priority {
        if value >= self.p0_from {
            Priority::P0
        } else if value >= self.p1_from {
            Priority::P1
        } else if value >= self.p2_from {
            Priority::P2
        } else if value >= self.p3_from {
            Priority::P3
        } else {
            Priority::P4
        }
    }

    fn validate(&self) -> PortResult<()> {
        let from = [self.p0_from, self.p1_from, self.p2_from, self.p3_from];
        if from.windows(2).any(|w| w[0] <= w[1]) {
            return Err(PortError::Config(
                "crm.rt.priorities: p0_from > p1_from > p2_from > p3_from is required".into(),
            ));
        }
        // A written value that reads back as another level would make the priority
        // ping-pong between the two systems.
        for (i, p) in Priority::ALL.into_iter().enumerate() {
            let written = self.to_rt(p);
            if self.from_rt(written) != p {
                return Err(PortError::Config(format!(
                    "crm.rt.priorities.p{i}: {written} reads back as {}, not P{i}",
                    self.from_rt(written)
                )));
            }
        }
        Ok(())
    }
}

/// The `[crm.rt]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtConfig {
    /// The RT web root, e.g. `https://rt.example.com` or `https://example.com/rt`; REST2
    /// is under `{base_url}/REST/2.0`.
    pub base_url: String,
    /// An auth token of casesync's own RT user (REST2 `Authorization: token …`).
    pub token: Secret,
    /// casesync's own RT user name: only its comments and attachments count as mirrors
    /// (docs/INVARIANTS.md#no-spoofing). Checked at connect against the token.
    pub user: String,
    /// The queue cases are created in and searched in.
    pub queue: String,
    /// The custom field (name) flagging a ticket for sync.
    #[serde(default = "default_sync_flag_field")]
    pub sync_flag_field: String,
    /// The value of that field that means "sync".
    #[serde(default = "default_sync_flag_value")]
    pub sync_flag_value: String,
    /// The custom field (name) holding the Google case name.
    #[serde(default = "default_google_case_field")]
    pub google_case_field: String,
    #[serde(default)]
    pub priorities: PriorityRanges,
    /// Statuses that count as closed.
    #[serde(default = "default_closed_statuses")]
    pub closed_statuses: Vec<String>,
    /// The status casesync sets to close a ticket; one of `closed_statuses`.
    #[serde(default = "default_close_status")]
    pub close_status: String,
    #[serde(default)]
    pub comment_type: CommentType,
    /// The time zone RT reads TicketSQL dates in: casesync's user's RT time zone, else
    /// RT's `$Timezone`. IANA name.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Requests per second casesync sends to RT.
    #[serde(default = "default_requests_per_second")]
    pub requests_per_second: f64,
    /// Seconds a request may wait for a reply before it counts as lost.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Items per page when listing tickets, transactions and attachments.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// The largest file casesync copies (`sync.max_attachment_bytes`, set by the
    /// composition root): a download stops there even when RT gives no length.
    #[serde(skip, default = "default_max_attachment_bytes")]
    pub max_attachment_bytes: u64,
}

fn default_max_attachment_bytes() -> u64 {
    50 * 1024 * 1024
}

fn default_sync_flag_field() -> String {
    "SyncWithGoogle".into()
}
fn default_sync_flag_value() -> String {
    "true".into()
}
fn default_google_case_field() -> String {
    "GoogleCaseName".into()
}
fn default_closed_statuses() -> Vec<String> {
    vec!["resolved".into(), "rejected".into(), "deleted".into()]
}
fn default_close_status() -> String {
    "resolved".into()
}
fn default_time_zone() -> String {
    "UTC".into()
}
fn default_requests_per_second() -> f64 {
    10.0
}
fn default_request_timeout_secs() -> u64 {
    30
}

/// `request_timeout_secs`: a reply awaited longer than five minutes could never reach the
/// function that asked, whose own timeout is shorter.
pub const REQUEST_TIMEOUT_SECS: std::ops::RangeInclusive<u64> = 1..=300;
fn default_page_size() -> u32 {
    50
}

impl RtConfig {
    /// A configuration with every optional key at its default.
    pub fn new(base_url: &str, token: Secret, user: &str, queue: &str) -> Self {
        RtConfig {
            base_url: base_url.into(),
            token,
            user: user.into(),
            queue: queue.into(),
            sync_flag_field: default_sync_flag_field(),
            sync_flag_value: default_sync_flag_value(),
            google_case_field: default_google_case_field(),
            priorities: PriorityRanges::default(),
            closed_statuses: default_closed_statuses(),
            close_status: default_close_status(),
            comment_type: CommentType::default(),
            time_zone: default_time_zone(),
            requests_per_second: default_requests_per_second(),
            request_timeout_secs: default_request_timeout_secs(),
            page_size: default_page_size(),
            max_attachment_bytes: default_max_attachment_bytes(),
        }
    }

    /// Reads the `[crm.rt]` table; errors name the key (`crm.rt.queue: …`).
    pub fn from_toml(value: toml::Value) -> PortResult<Self> {
        let config: RtConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let key = if path == "." {
                "crm.rt".to_string()
            } else {
                format!("crm.rt.{path}")
            };
            PortError::Config(format!("{key}: {}", inner.message()))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self) -> PortResult<()> {
        let bad =
            |key: &str, problem: String| Err(PortError::Config(format!("crm.rt.{key}: {problem}")));
        let url = self.base_url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || reqwest::Url::parse(url).is_err()
        {
            return bad("base_url", format!("`{url}` is not an http(s) URL"));
        }
        for (key, value) in [
            ("token", self.token.expose()),
            ("user", &self.user),
            ("queue", &self.queue),
            ("sync_flag_field", &self.sync_flag_field),
            ("sync_flag_value", &self.sync_flag_value),
            ("google_case_field", &self.google_case_field),
            ("close_status", &self.close_status),
        ] {
            if value.trim().is_empty() {
                return bad(key, "must not be empty".into());
            }
        }
        for (key, value) in [
            ("queue", &self.queue),
            ("sync_flag_field", &self.sync_flag_field),
            ("google_case_field", &self.google_case_field),
        ] {
            // They are written into TicketSQL; RT cannot escape braces in `CF.{…}`.
            if value.contains(['{', '}', '\n']) {
                return bad(key, format!("`{value}` contains a brace or a line break"));
            }
        }
        if self.sync_flag_field == self.google_case_field {
            return bad(
                "google_case_field",
                "must differ from sync_flag_field".into(),
            );
        }
        if self.closed_statuses.is_empty() {
            return bad("closed_statuses", "must name at least one".into());
        }
        if !self.is_closed_status(&self.close_status) {
            return bad(
                "close_status",
                format!("`{}` is not one of closed_statuses", self.close_status),
            );
        }
        self.priorities.validate()?;
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return bad(
                "time_zone",
                format!("`{}` is not an IANA time zone", self.time_zone),
            );
        }
        if !(self.requests_per_second > 0.0 && self.requests_per_second.is_finite()) {
            return bad("requests_per_second", "must be a positive number".into());
        }
        if !REQUEST_TIMEOUT_SECS.contains(&self.request_timeout_secs) {
            return bad(
                "request_timeout_secs",
                format!(
                    "{} is out of range: must be between {} and {} seconds",
                    self.request_timeout_secs,
                    REQUEST_TIMEOUT_SECS.start(),
                    REQUEST_TIMEOUT_SECS.end()
                ),
            );
        }
        // REST2 serves at most 100 items a page.
        if !(1..=100).contains(&self.page_size) {
            return bad("page_size", "must be between 1 and 100".into());
        }
        Ok(())
    }

    pub fn is_closed_status(&self, status: &str) -> bool {
        self.closed_statuses
            .iter()
            .any(|s| s.trim().eq_ignore_ascii_case(status.trim()))
    }

    /// The zone TicketSQL date literals are read in (validated).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }

    /// `{base_url}` without a trailing slash.
    pub fn base(&self) -> &str {
        self.base_url.trim().trim_end_matches('/')
    }

    /// Where a person opens ticket `id` in RT's web UI.
    pub fn ticket_url(&self, id: &str) -> String {
        format!("{}/Ticket/Display.html?id={id}", self.base())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
base_url = "https://rt.example.com/"
token = "1-2-abc"
user = "casesync"
queue = "GoogleSupport"
"#;

    fn parse(text: &str) -> PortResult<RtConfig> {
        RtConfig::from_toml(toml::Value::Table(text.parse().unwrap()))
    }

    #[test]
    fn a_minimal_section_takes_the_documented_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.base(), "https://rt.example.com");
        assert_eq!(c.sync_flag_field, "SyncWithGoogle");
        assert_eq!(c.sync_flag_value, "true");
        assert_eq!(c.google_case_field, "GoogleCaseName");
        assert_eq!(c.closed_statuses, vec!["resolved", "rejected", "deleted"]);
        assert_eq!(c.close_status, "resolved");
        assert_eq!(c.comment_type, CommentType::Comment);
        assert_eq!(c.priorities, PriorityRanges::default());
        assert_eq!(c.tz(), chrono_tz::UTC);
        assert_eq!(
            c.ticket_url("7"),
            "https://rt.example.com/Ticket/Display.html?id=7"
        );
        assert!(
            !format!("{c:?}").contains("1-2-abc"),
            "secrets are not printed"
        );
    }

    #[test]
    fn errors_name_the_key() {
        for (text, key) in [
            (format!("{MINIMAL}colour = \"red\"\n"), "crm.rt"),
            (MINIMAL.replace("queue = \"GoogleSupport\"\n", ""), "crm.rt"),
            (
                MINIMAL.replace("https://rt.example.com/", "rt"),
                "crm.rt.base_url",
            ),
            (
                format!("{MINIMAL}close_status = \"open\"\n"),
                "crm.rt.close_status",
            ),
            (
                format!("{MINIMAL}comment_type = \"email\"\n"),
                "crm.rt.comment_type",
            ),
            (
                format!("{MINIMAL}time_zone = \"Mars/Olympus\"\n"),
                "crm.rt.time_zone",
            ),
            (
                format!("{MINIMAL}sync_flag_field = \"a}}b\"\n"),
                "crm.rt.sync_flag_field",
            ),
            (
                format!("{MINIMAL}[priorities]\np1_from = 95\n"),
                "crm.rt.priorities",
            ),
            (
                format!("{MINIMAL}[priorities]\np1 = 95\n"),
                "crm.rt.priorities.p1",
            ),
            (format!("{MINIMAL}page_size = 0\n"), "crm.rt.page_size"),
        ] {
            let err = parse(&text).unwrap_err();
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn the_token_is_a_string_never_shown_and_listed_as_a_secret() {
        assert!(crate::config::SECRET_KEYS.contains(&"crm.rt.token"));
        for raw in ["123456789", "true", "1.5"] {
            let err = parse(&MINIMAL.replace("\"1-2-abc\"", raw)).unwrap_err();
            assert!(err.to_string().contains("crm.rt.token"), "{err}");
            assert!(!err.to_string().contains(raw), "{err}");
        }
        let c = parse(&MINIMAL.replace("1-2-abc", "0123456789")).unwrap();
        assert_eq!(c.token.expose(), "0123456789");
    }

    #[test]
    fn the_request_timeout_is_bounded() {
        for (secs, ok) in [
            (0, false),
            (1, true),
            (300, true),
            (301, false),
            (86_400, false),
        ] {
            let r = parse(&format!("{MINIMAL}request_timeout_secs = {secs}\n"));
            assert_eq!(r.is_ok(), ok, "{secs}: {r:?}");
            if let Err(e) = r {
                assert!(e.to_string().contains("crm.rt.request_timeout_secs"), "{e}");
                assert!(e.to_string().contains("between 1 and 300"), "{e}");
            }
        }
    }

    #[test]
    fn priorities_map_by_the_documented_ranges() {
        let m = PriorityRanges::default();
        for (value, level) in [
            (i64::MAX, Priority::P0),
            (100, Priority::P0),
            (90, Priority::P0),
            (89, Priority::P1),
            (65, Priority::P1),
            (64, Priority::P2),
            (35, Priority::P2),
            (34, Priority::P3),
            (10, Priority::P3),
            (9, Priority::P4),
            (0, Priority::P4),
            (-5, Priority::P4),
        ] {
            assert_eq!(m.from_rt(value), level, "RT priority {value}");
        }
        let written: Vec<i64> = Priority::ALL.iter().map(|p| m.to_rt(*p)).collect();
        assert_eq!(written, vec![100, 80, 50, 20, 0]);
        for p in Priority::ALL {
            assert_eq!(m.from_rt(m.to_rt(p)), p, "{p} round-trips");
        }
    }

    #[test]
    fn closed_statuses_compare_without_case() {
        let c = parse(MINIMAL).unwrap();
        assert!(c.is_closed_status("Resolved"));
        assert!(c.is_closed_status("rejected"));
        assert!(!c.is_closed_status("open"));
        assert!(!c.is_closed_status("stalled"));
    }
}
