//! The `[crm.jira]` settings: which site and project, how casesync authenticates, and how
//! the site is customised (custom field ids, the flag's option, priority names, the close
//! transition). Every site differs in these, so none of them is hard-coded in the adapter.
//!
//! Keys are flat where an environment override has to reach them
//! (`CASESYNC_CRM__JIRA__API_TOKEN`), and ids accept TOML numbers too, because an override
//! like `CASESYNC_CRM__JIRA__SERVICE_DESK_ID=10` arrives as an integer.

use crate::domain::Priority;
use crate::error::{PortError, PortResult};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
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

/// How casesync authenticates toward Jira.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JiraAuth {
    /// An API token of casesync's own Atlassian account (HTTP Basic `email:token`).
    Basic { email: String, api_token: Secret },
    /// An OAuth 2.0 access token (Bearer); the base URL is then
    /// `https://api.atlassian.com/ex/jira/{cloudId}`.
    Bearer { token: Secret },
}

/// How the sync-flag custom field holds "yes".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncFlagKind {
    /// A Checkboxes field: `[{"value": "Yes"}]` when ticked, `null` or `[]` otherwise.
    #[default]
    Checkbox,
    /// A single-select (or radio) field: `{"value": "Yes"}`.
    Select,
}

/// Whether casesync's comments are JSM internal notes or visible to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentVisibility {
    /// Carries the property `sd.public.comment` = `{"internal": true}`: agents only.
    #[default]
    Internal,
    Public,
}

/// Jira priority names for P0..P4, written by name; reading also accepts `also`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorityMap {
    pub p0: String,
    pub p1: String,
    pub p2: String,
    pub p3: String,
    pub p4: String,
    /// Further Jira names and the level each reads as (a scheme with `Critical`, say):
    /// `[crm.jira.priorities.also] Critical = 0`.
    pub also: BTreeMap<String, Priority>,
}

impl Default for PriorityMap {
    fn default() -> Self {
        PriorityMap {
            p0: "Highest".into(),
            p1: "High".into(),
            p2: "Medium".into(),
            p3: "Low".into(),
            p4: "Lowest".into(),
            also: BTreeMap::new(),
        }
    }
}

impl PriorityMap {
    /// The Jira name casesync writes for `p`.
    pub fn to_jira(&self, p: Priority) -> &str {
        match p {
            Priority::P0 => &self.p0,
            Priority::P1 => &self.p1,
            Priority::P2 => &self.p2,
            Priority::P3 => &self.p3,
            Priority::P4 => &self.p4,
        }
    }

    /// The level a Jira priority name reads as (case-insensitive); `None` for a name the
    /// map does not know, so an unknown priority is never mistaken for a change.
    pub fn from_jira(&self, name: &str) -> Option<Priority> {
        let name = name.trim();
        Priority::ALL
            .into_iter()
            .find(|p| self.to_jira(*p).eq_ignore_ascii_case(name))
            .or_else(|| {
                self.also
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, p)| *p)
            })
    }
}

/// The `[crm.jira]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraConfig {
    /// `https://{site}.atlassian.net`, or `https://api.atlassian.com/ex/jira/{cloudId}`
    /// with OAuth or scoped tokens.
    pub base_url: String,
    /// casesync's own Atlassian account, with `api_token` (Basic auth).
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub api_token: Option<Secret>,
    /// An OAuth 2.0 access token instead of `email` + `api_token`.
    #[serde(default)]
    pub oauth_token: Option<Secret>,
    /// The project cases are created in and searched in, e.g. `SUP`.
    pub project_key: String,
    /// The JSM service desk of the project; only needed with `request_type`.
    #[serde(default, deserialize_with = "opt_string_or_number")]
    pub service_desk_id: Option<String>,
    /// Issue type of created cases: a name (`Service Request`) or an id (`10002`).
    #[serde(deserialize_with = "string_or_number")]
    pub issue_type: String,
    /// JSM request type of created cases, written into `request_type_field` (Jira Cloud
    /// takes the request type's id there). Unset: Jira's default for the issue type.
    #[serde(default, deserialize_with = "opt_string_or_number")]
    pub request_type: Option<String>,
    #[serde(default = "default_request_type_field")]
    pub request_type_field: String,
    /// Component of created cases; empty for none.
    #[serde(default = "default_component")]
    pub component: String,
    /// The custom field flagging a case for sync, `customfield_{n}`.
    pub sync_flag_field: String,
    #[serde(default)]
    pub sync_flag_kind: SyncFlagKind,
    /// The option that means "sync".
    #[serde(default = "default_sync_flag_value")]
    pub sync_flag_value: String,
    /// The single-line text field holding the Google case name, `customfield_{n}`.
    pub google_case_field: String,
    #[serde(default)]
    pub priorities: PriorityMap,
    /// The workflow transition that closes a case, by name.
    #[serde(default = "default_close_transition")]
    pub close_transition: String,
    /// The resolution set when the close transition's screen asks for one.
    #[serde(default = "default_close_resolution")]
    pub close_resolution: String,
    /// Status categories that count as closed (`new`, `indeterminate`, `done`).
    #[serde(default = "default_closed_status_categories")]
    pub closed_status_categories: Vec<String>,
    #[serde(default)]
    pub comment_visibility: CommentVisibility,
    /// casesync's own account id; read from `/rest/api/3/myself` when unset, and checked
    /// against it when set (a person's token would make their comments look like mirrors).
    #[serde(default, deserialize_with = "opt_string_or_number")]
    pub own_account_id: Option<String>,
    /// Requests per second casesync sends to Jira (burst limits are per tenant).
    #[serde(default = "default_requests_per_second")]
    pub requests_per_second: f64,
    /// Seconds a request may wait for a reply before it counts as lost.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Issues per search page (Jira allows up to 5000 with few fields).
    #[serde(default = "default_search_page_size")]
    pub search_page_size: u32,
}

fn default_request_type_field() -> String {
    "customfield_10010".into()
}
fn default_component() -> String {
    "Google Cloud".into()
}
fn default_sync_flag_value() -> String {
    "Yes".into()
}
fn default_close_transition() -> String {
    "Done".into()
}
fn default_close_resolution() -> String {
    "Done".into()
}
fn default_closed_status_categories() -> Vec<String> {
    vec!["done".into()]
}
fn default_requests_per_second() -> f64 {
    5.0
}
fn default_request_timeout_secs() -> u64 {
    30
}

/// `request_timeout_secs`: a reply awaited longer than five minutes could never reach the
/// function that asked, whose own timeout is shorter.
pub const REQUEST_TIMEOUT_SECS: std::ops::RangeInclusive<u64> = 1..=300;
fn default_search_page_size() -> u32 {
    100
}

/// The smallest settings a site needs; everything else takes its default.
pub struct JiraSite<'a> {
    pub base_url: &'a str,
    pub auth: JiraAuth,
    pub project_key: &'a str,
    pub issue_type: &'a str,
    pub sync_flag_field: &'a str,
    pub google_case_field: &'a str,
}

impl JiraConfig {
    /// A configuration with every optional key at its default.
    pub fn new(site: JiraSite<'_>) -> Self {
        let (email, api_token, oauth_token) = match site.auth {
            JiraAuth::Basic { email, api_token } => (Some(email), Some(api_token), None),
            JiraAuth::Bearer { token } => (None, None, Some(token)),
        };
        JiraConfig {
            base_url: site.base_url.into(),
            email,
            api_token,
            oauth_token,
            project_key: site.project_key.into(),
            service_desk_id: None,
            issue_type: site.issue_type.into(),
            request_type: None,
            request_type_field: default_request_type_field(),
            component: default_component(),
            sync_flag_field: site.sync_flag_field.into(),
            sync_flag_kind: SyncFlagKind::default(),
            sync_flag_value: default_sync_flag_value(),
            google_case_field: site.google_case_field.into(),
            priorities: PriorityMap::default(),
            close_transition: default_close_transition(),
            close_resolution: default_close_resolution(),
            closed_status_categories: default_closed_status_categories(),
            comment_visibility: CommentVisibility::default(),
            own_account_id: None,
            requests_per_second: default_requests_per_second(),
            request_timeout_secs: default_request_timeout_secs(),
            search_page_size: default_search_page_size(),
        }
    }

    /// Reads the `[crm.jira]` table; errors name the key (`crm.jira.issue_type: …`).
    pub fn from_toml(value: toml::Value) -> PortResult<Self> {
        let config: JiraConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let key = if path == "." {
                "crm.jira".to_string()
            } else {
                format!("crm.jira.{path}")
            };
            PortError::Config(format!("{key}: {}", inner.message()))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The credential to send, from `email` + `api_token` or `oauth_token`.
    pub fn auth(&self) -> PortResult<JiraAuth> {
        match (&self.email, &self.api_token, &self.oauth_token) {
            (Some(email), Some(token), None) => Ok(JiraAuth::Basic {
                email: email.clone(),
                api_token: token.clone(),
            }),
            (None, None, Some(token)) => Ok(JiraAuth::Bearer {
                token: token.clone(),
            }),
            _ => Err(PortError::Config(
                "crm.jira.api_token: set `email` and `api_token`, or `oauth_token` alone".into(),
            )),
        }
    }

    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self) -> PortResult<()> {
        let bad = |key: &str, problem: String| {
            Err(PortError::Config(format!("crm.jira.{key}: {problem}")))
        };
        let url = self.base_url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || reqwest::Url::parse(url).is_err()
        {
            return bad("base_url", format!("`{url}` is not an http(s) URL"));
        }
        self.auth()?;
        if let Some(email) = &self.email
            && !email.contains('@')
        {
            return bad("email", format!("`{email}` is not an e-mail address"));
        }
        for (key, value) in [
            ("project_key", &self.project_key),
            ("issue_type", &self.issue_type),
            ("sync_flag_value", &self.sync_flag_value),
            ("close_transition", &self.close_transition),
        ] {
            if value.trim().is_empty() {
                return bad(key, "must not be empty".into());
            }
        }
        for (key, value) in [
            ("sync_flag_field", &self.sync_flag_field),
            ("google_case_field", &self.google_case_field),
            ("request_type_field", &self.request_type_field),
        ] {
            if custom_field_number(value).is_none() {
                return bad(
                    key,
                    format!("`{value}` is not a custom field id (customfield_N)"),
                );
            }
        }
        if self.sync_flag_field == self.google_case_field {
            return bad(
                "google_case_field",
                "must differ from sync_flag_field".into(),
            );
        }
        if self.closed_status_categories.is_empty() {
            return bad("closed_status_categories", "must name at least one".into());
        }
        for c in &self.closed_status_categories {
            if !matches!(c.as_str(), "new" | "indeterminate" | "done") {
                return bad(
                    "closed_status_categories",
                    format!("`{c}` is not new, indeterminate or done"),
                );
            }
        }
        let names: Vec<&str> = Priority::ALL
            .iter()
            .map(|p| self.priorities.to_jira(*p))
            .collect();
        for (i, n) in names.iter().enumerate() {
            if n.trim().is_empty() {
                return bad(&format!("priorities.p{i}"), "must not be empty".into());
            }
            if names[..i].iter().any(|m| m.eq_ignore_ascii_case(n)) {
                return bad(
                    &format!("priorities.p{i}"),
                    format!("`{n}` is used for two levels"),
                );
            }
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
        if !(1..=5000).contains(&self.search_page_size) {
            return bad("search_page_size", "must be between 1 and 5000".into());
        }
        if self.request_type.is_some() && self.service_desk_id.is_none() {
            return bad("service_desk_id", "is needed with request_type".into());
        }
        Ok(())
    }

    pub(crate) fn base(&self) -> &str {
        self.base_url.trim().trim_end_matches('/')
    }
}

/// `customfield_10050` → `10050`: the number JQL's `cf[N]` wants.
pub fn custom_field_number(field: &str) -> Option<u64> {
    field.strip_prefix("customfield_")?.parse().ok()
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        I(i64),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::S(s) => s,
        Raw::I(i) => i.to_string(),
    })
}

fn opt_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    string_or_number(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
base_url = "https://example.atlassian.net/"
email = "casesync@example.com"
api_token = "t0ken"
project_key = "SUP"
issue_type = 10002
sync_flag_field = "customfield_10050"
google_case_field = "customfield_10051"
"#;

    fn parse(text: &str) -> PortResult<JiraConfig> {
        JiraConfig::from_toml(toml::Value::Table(text.parse().unwrap()))
    }

    #[test]
    fn a_minimal_section_takes_the_documented_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.base(), "https://example.atlassian.net");
        assert_eq!(c.issue_type, "10002");
        assert_eq!(c.component, "Google Cloud");
        assert_eq!(c.sync_flag_kind, SyncFlagKind::Checkbox);
        assert_eq!(c.sync_flag_value, "Yes");
        assert_eq!(c.close_transition, "Done");
        assert_eq!(c.closed_status_categories, vec!["done".to_string()]);
        assert_eq!(c.comment_visibility, CommentVisibility::Internal);
        assert_eq!(c.priorities, PriorityMap::default());
        assert_eq!(c.requests_per_second, 5.0);
        assert_eq!(c.search_page_size, 100);
        assert!(matches!(c.auth().unwrap(), JiraAuth::Basic { .. }));
        assert!(
            !format!("{c:?}").contains("t0ken"),
            "secrets are not printed"
        );
    }

    #[test]
    fn errors_name_the_key() {
        let unknown = parse(&format!("{MINIMAL}colour = \"red\"\n")).unwrap_err();
        assert!(unknown.to_string().contains("crm.jira"), "{unknown}");
        let field = parse(&MINIMAL.replace("customfield_10050", "Sync")).unwrap_err();
        assert!(
            field.to_string().contains("crm.jira.sync_flag_field"),
            "{field}"
        );
        let both = parse(&format!("{MINIMAL}oauth_token = \"x\"\n")).unwrap_err();
        assert!(both.to_string().contains("crm.jira.api_token"), "{both}");
        let dup = parse(&format!("{MINIMAL}[priorities]\np1 = \"highest\"\n")).unwrap_err();
        assert!(dup.to_string().contains("crm.jira.priorities.p1"), "{dup}");
        let kind = parse(&format!("{MINIMAL}sync_flag_kind = \"toggle\"\n")).unwrap_err();
        assert!(
            kind.to_string().contains("crm.jira.sync_flag_kind"),
            "{kind}"
        );
    }

    #[test]
    fn priorities_map_both_ways_and_read_extra_names() {
        let c = parse(&format!(
            "{MINIMAL}[priorities]\np0 = \"Blocker\"\n[priorities.also]\nCritical = 0\nTrivial = 4\n"
        ))
        .unwrap();
        let m = &c.priorities;
        assert_eq!(m.to_jira(Priority::P0), "Blocker");
        assert_eq!(m.to_jira(Priority::P1), "High");
        assert_eq!(m.to_jira(Priority::P4), "Lowest");
        for p in Priority::ALL {
            assert_eq!(m.from_jira(m.to_jira(p)), Some(p));
        }
        assert_eq!(m.from_jira("blocker"), Some(Priority::P0));
        assert_eq!(m.from_jira("Critical"), Some(Priority::P0));
        assert_eq!(m.from_jira("trivial"), Some(Priority::P4));
        assert_eq!(
            m.from_jira("Highest"),
            None,
            "a renamed level is no longer read"
        );
        assert_eq!(m.from_jira("Whatever"), None);
    }

    #[test]
    fn secrets_are_strings_never_shown_and_listed_as_secrets() {
        for key in ["api_token", "oauth_token"] {
            assert!(
                crate::config::SECRET_KEYS.contains(&format!("crm.jira.{key}").as_str()),
                "crm.jira.{key} must be refused in the file"
            );
        }
        let err = parse(&MINIMAL.replace("\"t0ken\"", "9876543210")).unwrap_err();
        assert!(err.to_string().contains("crm.jira.api_token"), "{err}");
        assert!(!err.to_string().contains("9876543210"), "{err}");
        let c = parse(&MINIMAL.replace("t0ken", "0012345")).unwrap();
        assert_eq!(c.api_token.unwrap().expose(), "0012345");
    }

    #[test]
    fn the_request_timeout_is_bounded() {
        for (secs, ok) in [
            (0, false),
            (1, true),
            (300, true),
            (301, false),
            (u64::MAX, false),
        ] {
            let r = parse(&format!(
                "{MINIMAL}request_timeout_secs = {}\n",
                secs.min(i64::MAX as u64)
            ));
            assert_eq!(r.is_ok(), ok, "{secs}: {r:?}");
            if let Err(e) = r {
                assert!(
                    e.to_string().contains("crm.jira.request_timeout_secs"),
                    "{e}"
                );
                assert!(e.to_string().contains("between 1 and 300"), "{e}");
            }
        }
    }

    #[test]
    fn oauth_alone_is_bearer_auth() {
        let text = MINIMAL
            .replace("email = \"casesync@example.com\"\n", "")
            .replace("api_token = \"t0ken\"", "oauth_token = \"o\"");
        let c = parse(&text).unwrap();
        assert_eq!(
            c.auth().unwrap(),
            JiraAuth::Bearer {
                token: Secret::new("o")
            }
        );
    }
}
