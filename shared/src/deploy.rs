//! What each deployable function is, how it is triggered, and which environment variables it
//! reads at start-up. The function binaries check their environment against this list (so a
//! missing variable stops start-up with its name), and a test parses `terraform/` to prove
//! every Cloud Run service sets every variable its function reads.

use crate::retry_policy::{self, SchedulerRetry};

/// How a function is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A Cloud Scheduler job with these numbers.
    Scheduler(SchedulerRetry),
    /// A Pub/Sub push subscription on this topic.
    Push { topic: &'static str },
    /// A Cloud Run job, started by hand.
    Job,
}

/// What a function talks to; it gets credentials and configuration for these only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub support_api: bool,
    pub crm: bool,
    pub queue: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionSpec {
    /// The crate under `functions/` and the Cloud Run service or job name.
    pub name: &'static str,
    pub trigger: Trigger,
    pub needs: Needs,
}

const ALL: Needs = Needs {
    support_api: true,
    crm: true,
    queue: true,
};

pub const FUNCTIONS: [FunctionSpec; 7] = [
    FunctionSpec {
        name: "poll-google",
        trigger: Trigger::Scheduler(retry_policy::POLL_GOOGLE_JOB),
        needs: Needs {
            support_api: true,
            crm: false,
            queue: true,
        },
    },
    FunctionSpec {
        name: "poll-company",
        trigger: Trigger::Scheduler(retry_policy::POLL_COMPANY_JOB),
        needs: Needs {
            support_api: false,
            crm: true,
            queue: true,
        },
    },
    FunctionSpec {
        name: "sync-google-to-company",
        trigger: Trigger::Push {
            topic: retry_policy::GOOGLE_UPDATES_TOPIC,
        },
        needs: ALL,
    },
    FunctionSpec {
        name: "sync-company-to-google",
        trigger: Trigger::Push {
            topic: retry_policy::COMPANY_UPDATES_TOPIC,
        },
        needs: ALL,
    },
    FunctionSpec {
        name: "cleanup-case-mappings",
        trigger: Trigger::Scheduler(retry_policy::CLEANUP_JOB),
        needs: Needs {
            support_api: false,
            crm: false,
            queue: false,
        },
    },
    FunctionSpec {
        name: "detect-outages",
        trigger: Trigger::Scheduler(retry_policy::DETECT_OUTAGES_JOB),
        needs: ALL,
    },
    FunctionSpec {
        name: "replay-dead-letters",
        trigger: Trigger::Job,
        needs: Needs {
            support_api: false,
            crm: false,
            queue: true,
        },
    },
];

/// Read by every function.
pub const COMMON_ENV: &[&str] = &[
    "CASESYNC_FIRESTORE__PROJECT",
    "CASESYNC_FIRESTORE__DATABASE",
];
/// Read by every function that talks to the Cloud Support API (the Google keys are also
/// read by the CRM side: a mirrored case names its Google case).
pub const GOOGLE_ENV: &[&str] = &[
    "CASESYNC_GOOGLE__PARENT",
    "CASESYNC_GOOGLE__CREATE_PARENT",
    "CASESYNC_GOOGLE__CLASSIFICATION_ID",
    "CASESYNC_GOOGLE__OWN_IDENTITIES",
];
/// Read by every function that talks to the CRM (Jira). The token comes from Secret Manager.
pub const CRM_ENV: &[&str] = &[
    "CASESYNC_CRM__KIND",
    "CASESYNC_CRM__JIRA__BASE_URL",
    "CASESYNC_CRM__JIRA__EMAIL",
    "CASESYNC_CRM__JIRA__API_TOKEN",
    "CASESYNC_CRM__JIRA__PROJECT_KEY",
    "CASESYNC_CRM__JIRA__ISSUE_TYPE",
    "CASESYNC_CRM__JIRA__SYNC_FLAG_FIELD",
    "CASESYNC_CRM__JIRA__GOOGLE_CASE_FIELD",
];
/// The environment variables that hold secrets: set from Secret Manager, never as values.
pub const SECRET_ENV: &[&str] = &["CASESYNC_CRM__JIRA__API_TOKEN"];
pub const QUEUE_ENV: &[&str] = &["CASESYNC_PUBSUB__PROJECT"];
/// Read by the HTTP shim of every Cloud Run service (not by the job).
pub const SHIM_ENV: &[&str] = &["CASESYNC_SHIM__AUDIENCE", "CASESYNC_SHIM__INVOKER"];
/// Read by the push-triggered services: where the shim dead-letters a message itself.
pub const PUSH_ENV: &[&str] = &["CASESYNC_SHIM__DEAD_LETTER_TOPIC"];
/// Read by the replay job.
pub const REPLAY_ENV: &[&str] = &["CASESYNC_REPLAY__SUBSCRIPTIONS"];
/// Read by cleanup-case-mappings when set: the dead letters it acknowledges once their case
/// synced. Without them it only deletes old mappings (the local stack, tests).
pub const CLEANUP_ENV: &[&str] = &[
    "CASESYNC_PUBSUB__PROJECT",
    "CASESYNC_CLEANUP__DEAD_LETTER_SUBSCRIPTIONS",
];

pub fn spec(name: &str) -> Option<&'static FunctionSpec> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// Every environment variable `name` reads at start-up.
pub fn required_env(name: &str) -> Vec<&'static str> {
    let Some(spec) = spec(name) else {
        return Vec::new();
    };
    let mut env: Vec<&'static str> = COMMON_ENV.to_vec();
    if spec.needs.support_api || spec.needs.crm {
        env.extend(GOOGLE_ENV);
    }
    if spec.needs.crm {
        env.extend(CRM_ENV);
    } else if spec.needs.support_api {
        // Knows which CRM its cases name, without credentials for it.
        env.push("CASESYNC_CRM__KIND");
    }
    if spec.needs.queue {
        env.extend(QUEUE_ENV);
    }
    match spec.trigger {
        Trigger::Job => env.extend(REPLAY_ENV),
        Trigger::Push { .. } => {
            env.extend(SHIM_ENV);
            env.extend(PUSH_ENV);
        }
        Trigger::Scheduler(_) => env.extend(SHIM_ENV),
    }
    env
}

/// What Terraform sets on `name`: what it must read, and what it reads when set.
pub fn provisioned_env(name: &str) -> Vec<&'static str> {
    let mut env = required_env(name);
    if name == "cleanup-case-mappings" {
        env.extend(CLEANUP_ENV);
    }
    env
}

/// Checks that every variable `name` reads is set; the error names the first one missing.
pub fn check_env(
    name: &str,
    env: &std::collections::HashMap<String, String>,
) -> Result<(), crate::config::ConfigError> {
    for key in required_env(name) {
        if env.get(key).is_none_or(|v| v.trim().is_empty()) {
            return Err(crate::config::ConfigError {
                key: key.to_string(),
                problem: format!("is required by {name} and not set"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_privilege_shows_in_what_each_function_reads() {
        let cleanup = required_env("cleanup-case-mappings");
        assert!(!cleanup.contains(&"CASESYNC_CRM__JIRA__API_TOKEN"));
        assert!(!cleanup.contains(&"CASESYNC_GOOGLE__PARENT"));
        assert!(
            required_env("sync-google-to-company").contains(&"CASESYNC_SHIM__DEAD_LETTER_TOPIC")
        );
        assert!(required_env("poll-company").contains(&"CASESYNC_CRM__JIRA__API_TOKEN"));
        assert!(!required_env("poll-google").contains(&"CASESYNC_CRM__JIRA__API_TOKEN"));
        assert!(required_env("replay-dead-letters").contains(&"CASESYNC_REPLAY__SUBSCRIPTIONS"));
        assert!(
            !required_env("cleanup-case-mappings")
                .contains(&"CASESYNC_CLEANUP__DEAD_LETTER_SUBSCRIPTIONS")
        );
        assert!(
            provisioned_env("cleanup-case-mappings")
                .contains(&"CASESYNC_CLEANUP__DEAD_LETTER_SUBSCRIPTIONS")
        );
        assert!(required_env("nope").is_empty());
    }

    #[test]
    fn a_missing_variable_is_named() {
        let env = std::collections::HashMap::new();
        let err = check_env("cleanup-case-mappings", &env).unwrap_err();
        assert_eq!(err.key, "CASESYNC_FIRESTORE__PROJECT");
    }
}
