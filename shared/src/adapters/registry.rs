//! The one registry of CRM adapters (docs/ADDING-A-CRM.md): `crm.kind` selects an entry of
//! [`CRM_KINDS`] and, through [`CrmSettings::read`], the adapter's typed section
//! (`[crm.jira]`, `[crm.rt]`) and its constructor.
//!
//! Modelled on object_store's `parse_url_opts`: one match from the kind to the adapter, a
//! `#[cfg(feature)]` per arm. What a deployment needs to know of an adapter (its
//! environment, its secrets, its Terraform variables) is plain data, compiled whatever the
//! features, because `config`, `deploy` and the Terraform test read it without linking any
//! client; only the constructors depend on the adapter's feature.

use crate::config::{Config, ConfigError};
use crate::error::PortError;
use crate::ports::Crm;
use std::sync::Arc;

/// What one CRM adapter contributes besides its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrmKind {
    /// The value of `crm.kind`, the name of its section `[crm.{kind}]`, and Terraform's
    /// `crm_kind`.
    pub kind: &'static str,
    /// Its name for people.
    pub name: &'static str,
    /// The environment a function that talks to this CRM reads at start-up, beyond
    /// `CASESYNC_CRM__KIND` (`deploy::required_env`): every key the adapter cannot default.
    pub required_env: &'static [&'static str],
    /// Those of `required_env` that hold a credential: set from Secret Manager only.
    pub secret_env: &'static [&'static str],
    /// The configuration keys that hold credentials (`config::SECRET_KEYS`): refused in the
    /// configuration file, always read as strings from the environment.
    pub secret_keys: &'static [&'static str],
    /// The Terraform variables of its file `terraform/crm_{kind}.tf`.
    pub terraform_variables: &'static [&'static str],
}

/// Every CRM casesync can run. A new CRM is one entry here and one arm in
/// [`CrmSettings::read`] (with its variant).
pub const CRM_KINDS: &[CrmKind] = &[
    CrmKind {
        kind: "jira",
        name: "Jira",
        required_env: &[
            "CASESYNC_CRM__JIRA__BASE_URL",
            "CASESYNC_CRM__JIRA__EMAIL",
            "CASESYNC_CRM__JIRA__API_TOKEN",
            "CASESYNC_CRM__JIRA__PROJECT_KEY",
            "CASESYNC_CRM__JIRA__ISSUE_TYPE",
            "CASESYNC_CRM__JIRA__SYNC_FLAG_FIELD",
            "CASESYNC_CRM__JIRA__GOOGLE_CASE_FIELD",
        ],
        secret_env: &["CASESYNC_CRM__JIRA__API_TOKEN"],
        secret_keys: &["crm.jira.api_token", "crm.jira.oauth_token"],
        terraform_variables: &[
            "jira_base_url",
            "jira_email",
            "jira_project_key",
            "jira_issue_type",
            "jira_sync_flag_field",
            "jira_google_case_field",
            "jira_api_token_secret_id",
            "jira_api_token_version",
            "jira_api_token",
        ],
    },
    CrmKind {
        kind: "rt",
        name: "Request Tracker",
        required_env: &[
            "CASESYNC_CRM__RT__BASE_URL",
            "CASESYNC_CRM__RT__TOKEN",
            "CASESYNC_CRM__RT__USER",
            "CASESYNC_CRM__RT__QUEUE",
        ],
        secret_env: &["CASESYNC_CRM__RT__TOKEN"],
        secret_keys: &["crm.rt.token"],
        terraform_variables: &[
            "rt_base_url",
            "rt_user",
            "rt_queue",
            "rt_token_secret_id",
            "rt_token_version",
            "rt_token",
        ],
    },
];

/// The kinds, as `crm.kind`'s error lists them: `jira, rt`.
pub fn kind_list() -> String {
    CRM_KINDS
        .iter()
        .map(|k| k.kind)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The registry entry of `kind`; an unknown kind is an error naming `crm.kind` and listing
/// the kinds, the same wherever it is read (functions, local runner, `deploy::check_env`).
pub fn kind(kind: &str) -> Result<&'static CrmKind, ConfigError> {
    CRM_KINDS
        .iter()
        .find(|k| k.kind == kind)
        .ok_or_else(|| ConfigError {
            key: "crm.kind".into(),
            problem: format!("unknown CRM `{kind}` (supported: {})", kind_list()),
        })
}

/// Why a CRM adapter could not be read or built.
#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Port(#[from] PortError),
}

/// An adapter's settings, read and checked from its typed section, before anything
/// connects: a bad key is named even where the CRM or Google cannot be reached.
#[derive(Debug, Clone)]
pub enum CrmSettings {
    #[cfg(feature = "jira")]
    Jira(Box<crate::adapters::jira::JiraConfig>),
    #[cfg(feature = "rt")]
    Rt(Box<crate::adapters::rt::RtConfig>),
}

impl CrmSettings {
    /// Reads `[crm]` and the section its kind selects. The one match from kind to adapter.
    pub fn read(config: &Config) -> Result<CrmSettings, CrmError> {
        let crm = config.require_crm()?;
        let entry = kind(&crm.kind)?;
        let section = |table: &Option<toml::Value>| {
            table.clone().ok_or_else(|| ConfigError {
                key: format!("crm.{}", entry.kind),
                problem: format!(
                    "the [crm.{0}] section is required when crm.kind is `{0}`",
                    entry.kind
                ),
            })
        };
        // Unused in a build without any CRM feature, where every arm below is compiled out.
        let _ = &section;
        match entry.kind {
            #[cfg(feature = "jira")]
            "jira" => Ok(CrmSettings::Jira(Box::new(
                crate::adapters::jira::JiraConfig::from_toml(section(&crm.jira)?)?,
            ))),
            #[cfg(feature = "rt")]
            "rt" => {
                let mut rt = crate::adapters::rt::RtConfig::from_toml(section(&crm.rt)?)?;
                // RT streams downloads and stops at the limit itself, so it is given it.
                rt.max_attachment_bytes = config.sync.max_attachment_bytes;
                Ok(CrmSettings::Rt(Box::new(rt)))
            }
            other => Err(ConfigError {
                key: "crm.kind".into(),
                problem: format!(
                    "this build has no `{other}` adapter (build shared with its feature `{other}`)"
                ),
            }
            .into()),
        }
    }

    /// Connects the adapter (it checks its account, project or queue as it does).
    pub async fn connect(self) -> Result<Arc<dyn Crm>, PortError> {
        match self {
            #[cfg(feature = "jira")]
            CrmSettings::Jira(c) => {
                Ok(Arc::new(crate::adapters::jira::JiraCrm::connect(*c).await?))
            }
            #[cfg(feature = "rt")]
            CrmSettings::Rt(c) => Ok(Arc::new(crate::adapters::rt::RtCrm::connect(*c).await?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_kind_names_the_key_and_lists_the_kinds() {
        let err = kind("nosuch").unwrap_err();
        assert_eq!(err.key, "crm.kind");
        assert!(err.problem.contains("jira, rt"), "{err}");
        assert_eq!(kind("rt").unwrap().name, "Request Tracker");
    }

    #[test]
    fn every_kind_is_unique_and_its_secrets_are_read_from_its_environment() {
        for (i, k) in CRM_KINDS.iter().enumerate() {
            assert!(CRM_KINDS[..i].iter().all(|o| o.kind != k.kind));
            let prefix = format!("CASESYNC_CRM__{}__", k.kind.to_ascii_uppercase());
            assert!(k.required_env.iter().all(|e| e.starts_with(&prefix)));
            assert!(k.secret_env.iter().all(|e| k.required_env.contains(e)));
            for env in k.secret_env {
                let key = k
                    .secret_keys
                    .iter()
                    .find(|key| crate::config::env_name(key) == *env);
                assert!(key.is_some(), "{env} is no secret key of {}", k.kind);
            }
        }
    }
}
