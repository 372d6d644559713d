//! The shape of one emulated Jira Cloud site: its project, users, custom fields and
//! workflow. It exists so that tests and the local sandbox can describe a site the way a
//! Jira admin would configure one, and so the binary can load the same description from a
//! JSON file.

use serde::{Deserialize, Serialize};

/// One emulated Jira Service Management site with one service project.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct JiraEmulatorConfig {
    /// Key of the one service project, e.g. `SUP`; issue keys are `SUP-1`, `SUP-2`, ….
    pub project_key: String,
    /// The JSM service desk id of that project.
    pub service_desk_id: String,
    /// IANA name of the site's (and every user's) time zone. JQL date literals are read
    /// in it, exactly like Jira reads them in the searching user's profile time zone.
    pub time_zone: String,
    /// Id of the one-option Checkboxes field that flags an issue for syncing.
    pub sync_flag_field: String,
    /// Id of the single-line text field that holds the Google case name.
    pub google_case_field: String,
    /// Every account that can call the API. By convention the first one is the
    /// connector's own account and the second one a support agent.
    pub users: Vec<JiraUser>,
    /// Display name of the sync flag field (usable in JQL, listed by `/field`).
    pub sync_flag_field_name: String,
    /// Display name of the Google case field.
    pub google_case_field_name: String,
    /// Names of the project's components (Jira rejects unknown component names).
    pub components: Vec<String>,
    /// Statuses and transitions of the project's workflow.
    pub workflow: JiraWorkflow,
}

/// An account of the emulated site. Basic auth is `email:api_token`; a Bearer token is
/// matched against `api_token` as well.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JiraUser {
    pub account_id: String,
    pub email: String,
    pub display_name: String,
    pub api_token: String,
}

/// The workflow of the project: which statuses exist and which transitions move an
/// issue between them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct JiraWorkflow {
    pub statuses: Vec<JiraStatus>,
    pub transitions: Vec<JiraTransition>,
    /// Name of the status a new issue starts in.
    pub initial_status: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JiraStatus {
    pub id: String,
    pub name: String,
    pub category: StatusCategory,
}

/// Jira's three status categories (the fourth, "undefined", never appears on issues).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusCategory {
    New,
    Indeterminate,
    Done,
}

impl StatusCategory {
    pub fn key(self) -> &'static str {
        match self {
            StatusCategory::New => "new",
            StatusCategory::Indeterminate => "indeterminate",
            StatusCategory::Done => "done",
        }
    }

    /// Jira's fixed ids: 2 = To Do, 4 = In Progress, 3 = Done.
    pub fn id(self) -> u32 {
        match self {
            StatusCategory::New => 2,
            StatusCategory::Indeterminate => 4,
            StatusCategory::Done => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StatusCategory::New => "To Do",
            StatusCategory::Indeterminate => "In Progress",
            StatusCategory::Done => "Done",
        }
    }

    pub fn color(self) -> &'static str {
        match self {
            StatusCategory::New => "blue-gray",
            StatusCategory::Indeterminate => "yellow",
            StatusCategory::Done => "green",
        }
    }

    pub const ALL: [StatusCategory; 3] = [
        StatusCategory::New,
        StatusCategory::Indeterminate,
        StatusCategory::Done,
    ];
}

/// One workflow transition.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct JiraTransition {
    pub id: String,
    pub name: String,
    /// Names of the statuses it is available from; empty means every status but `to`
    /// (a global transition).
    pub from: Vec<String>,
    /// Name of the target status.
    pub to: String,
    /// Fields on the transition screen; only these may be sent in `fields` when
    /// transitioning (Jira answers 400 for anything else). `resolution` is the usual one.
    pub screen_fields: Vec<String>,
}

impl Default for JiraWorkflow {
    /// To Do (new) → In Progress (indeterminate) → Done (done), with the transition ids a
    /// fresh Jira project typically shows.
    fn default() -> Self {
        let status = |id: &str, name: &str, category| JiraStatus {
            id: id.to_string(),
            name: name.to_string(),
            category,
        };
        let transition =
            |id: &str, name: &str, from: &[&str], to: &str, screen: &[&str]| JiraTransition {
                id: id.to_string(),
                name: name.to_string(),
                from: from.iter().map(|s| s.to_string()).collect(),
                to: to.to_string(),
                screen_fields: screen.iter().map(|s| s.to_string()).collect(),
            };
        JiraWorkflow {
            statuses: vec![
                status("10000", "To Do", StatusCategory::New),
                status("3", "In Progress", StatusCategory::Indeterminate),
                status("10001", "Done", StatusCategory::Done),
            ],
            transitions: vec![
                transition("11", "Start Progress", &["To Do"], "In Progress", &[]),
                transition("21", "Stop Progress", &["In Progress"], "To Do", &[]),
                transition(
                    "31",
                    "Done",
                    &["To Do", "In Progress"],
                    "Done",
                    &["resolution"],
                ),
                transition("41", "Reopen", &["Done"], "To Do", &[]),
            ],
            initial_status: "To Do".to_string(),
        }
    }
}

impl Default for JiraEmulatorConfig {
    fn default() -> Self {
        JiraEmulatorConfig {
            project_key: "SUP".to_string(),
            service_desk_id: "1".to_string(),
            time_zone: "Europe/Berlin".to_string(),
            sync_flag_field: "customfield_10050".to_string(),
            google_case_field: "customfield_10051".to_string(),
            users: vec![
                JiraUser {
                    account_id: "casesync-bot".to_string(),
                    email: "casesync@example.com".to_string(),
                    display_name: "casesync".to_string(),
                    api_token: "casesync-token".to_string(),
                },
                JiraUser {
                    account_id: "agent-1".to_string(),
                    email: "agent@example.com".to_string(),
                    display_name: "Alex Agent".to_string(),
                    api_token: "agent-token".to_string(),
                },
            ],
            sync_flag_field_name: "Synchronize with Google Cloud Support".to_string(),
            google_case_field_name: "Google Case Name".to_string(),
            components: vec!["Google Cloud".to_string()],
            workflow: JiraWorkflow::default(),
        }
    }
}

impl JiraEmulatorConfig {
    /// The account people act as when a control call names nobody: the second configured
    /// user (the first is the connector), or the first if there is only one.
    pub fn default_person(&self) -> Option<&JiraUser> {
        self.users.get(1).or_else(|| self.users.first())
    }
}
