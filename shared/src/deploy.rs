//! What each deployable function is, how it is triggered, and which environment variables it
//! reads at start-up. The function binaries check their environment against this list (so a
//! missing variable stops start-up with its name), and a test parses `terraform/` to prove
//! every Cloud Run service sets every variable its function reads.

use crate::adapters::registry::{self, CRM_KINDS, CrmKind};
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

/// Everything: the sync functions, detect-outages and the local runner.
pub const ALL: Needs = Needs {
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
/// Read by every function that talks to the CRM, whatever its kind; each adapter adds its
/// own variables (`adapters::registry::CrmKind::required_env`).
pub const CRM_KIND_ENV: &str = "CASESYNC_CRM__KIND";
/// The environment variables that hold secrets, every adapter's: set from Secret Manager,
/// never as values.
pub static SECRET_ENV: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    CRM_KINDS
        .iter()
        .flat_map(|k| k.secret_env.iter().copied())
        .collect()
});
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

/// Every environment variable `name` reads at start-up where the CRM is `crm`.
pub fn required_env(name: &str, crm: &CrmKind) -> Vec<&'static str> {
    let mut env = env_before_crm(name);
    if spec(name).is_some_and(|s| s.needs.crm) {
        env.extend(crm.required_env);
    }
    env.extend(env_after_crm(name));
    env
}

/// What `name` reads whatever the CRM: all of `required_env` but the adapter's own.
fn env_before_crm(name: &str) -> Vec<&'static str> {
    let Some(spec) = spec(name) else {
        return Vec::new();
    };
    let mut env: Vec<&'static str> = COMMON_ENV.to_vec();
    if spec.needs.support_api || spec.needs.crm {
        env.extend(GOOGLE_ENV);
        // Knows which CRM its cases name; the adapter's keys only where it talks to it.
        env.push(CRM_KIND_ENV);
    }
    env
}

fn env_after_crm(name: &str) -> Vec<&'static str> {
    let Some(spec) = spec(name) else {
        return Vec::new();
    };
    let mut env = Vec::new();
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

/// What Terraform sets on `name` where the CRM is `crm`: what it must read, and what it
/// reads when set.
pub fn provisioned_env(name: &str, crm: &CrmKind) -> Vec<&'static str> {
    let mut env = required_env(name, crm);
    if name == "cleanup-case-mappings" {
        env.extend(CLEANUP_ENV);
    }
    env
}

/// Checks that every variable `name` reads is set; the error names the first one missing.
/// The adapter's variables are those of the kind `CASESYNC_CRM__KIND` names; an unknown
/// kind is the registry's error (the key named, the kinds listed).
pub fn check_env(
    name: &str,
    env: &std::collections::HashMap<String, String>,
) -> Result<(), crate::config::ConfigError> {
    let set = |key: &str| env.get(key).is_some_and(|v| !v.trim().is_empty());
    let missing = |key: &str| crate::config::ConfigError {
        key: key.to_string(),
        problem: format!("is required by {name} and not set"),
    };
    for key in env_before_crm(name) {
        if !set(key) {
            return Err(missing(key));
        }
    }
    if spec(name).is_some_and(|s| s.needs.crm) {
        let kind = env.get(CRM_KIND_ENV).map(|k| k.trim()).unwrap_or_default();
        for key in registry::kind(kind)?.required_env {
            if !set(key) {
                return Err(missing(key));
            }
        }
    }
    for key in env_after_crm(name) {
        if !set(key) {
            return Err(missing(key));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_privilege_shows_in_what_each_function_reads() {
        for crm in CRM_KINDS {
            let required = |name| required_env(name, crm);
            let token = crm.secret_env[0];
            let cleanup = required("cleanup-case-mappings");
            assert!(!cleanup.contains(&token));
            assert!(!cleanup.contains(&"CASESYNC_GOOGLE__PARENT"));
            assert!(
                required("sync-google-to-company").contains(&"CASESYNC_SHIM__DEAD_LETTER_TOPIC")
            );
            assert!(required("poll-company").contains(&token));
            assert!(!required("poll-google").contains(&token));
            assert!(required("poll-google").contains(&CRM_KIND_ENV));
            assert!(required("replay-dead-letters").contains(&"CASESYNC_REPLAY__SUBSCRIPTIONS"));
            assert!(!cleanup.contains(&"CASESYNC_CLEANUP__DEAD_LETTER_SUBSCRIPTIONS"));
            assert!(
                provisioned_env("cleanup-case-mappings", crm)
                    .contains(&"CASESYNC_CLEANUP__DEAD_LETTER_SUBSCRIPTIONS")
            );
            assert!(required("nope").is_empty());
            // Another adapter's variables are never read.
            for other in CRM_KINDS.iter().filter(|o| o.kind != crm.kind) {
                for name in FUNCTIONS.iter().map(|f| f.name) {
                    assert!(
                        other
                            .required_env
                            .iter()
                            .all(|e| !required(name).contains(e))
                    );
                }
            }
        }
        assert!(
            required_env("poll-company", registry::kind("jira").unwrap())
                .contains(&"CASESYNC_CRM__JIRA__API_TOKEN")
        );
        assert!(
            required_env("poll-company", registry::kind("rt").unwrap())
                .contains(&"CASESYNC_CRM__RT__TOKEN")
        );
    }

    #[test]
    fn the_crm_kind_picks_the_variables_checked_and_an_unknown_one_is_named() {
        let mut env: std::collections::HashMap<String, String> = FUNCTIONS[1..2]
            .iter()
            .flat_map(|f| required_env(f.name, registry::kind("rt").unwrap()))
            .map(|k| (k.to_string(), "x".to_string()))
            .collect();
        env.insert(CRM_KIND_ENV.into(), "rt".into());
        check_env("poll-company", &env).unwrap();
        env.insert(CRM_KIND_ENV.into(), "jira".into());
        let err = check_env("poll-company", &env).unwrap_err();
        assert_eq!(err.key, "CASESYNC_CRM__JIRA__BASE_URL");
        env.insert(CRM_KIND_ENV.into(), "nosuch".into());
        let err = check_env("poll-company", &env).unwrap_err();
        assert_eq!(err.key, "crm.kind");
        assert!(err.problem.contains("jira, rt"), "{err}");
    }

    #[test]
    fn a_missing_variable_is_named() {
        let env = std::collections::HashMap::new();
        let err = check_env("cleanup-case-mappings", &env).unwrap_err();
        assert_eq!(err.key, "CASESYNC_FIRESTORE__PROJECT");
    }
}
