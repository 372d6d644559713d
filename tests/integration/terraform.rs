//! `terraform/` checked offline against the code (docs/ARCHITECTURE.md#exact-numbers).
//!
//! No Terraform provider can be downloaded where the tests run, so `terraform validate` and
//! `plan` are out of reach. Instead this module parses every `terraform/*.tf` with `hcl-rs`
//! and holds it against the Rust code that the deployed functions run:
//!
//! - one Cloud Run service or job per deployable crate under `functions/`, of the kind its
//!   `shared::deploy::FUNCTIONS` entry says;
//! - the push subscriptions, dead-letter topics and their replay subscriptions equal to
//!   `shared::retry_policy::PRODUCTION_QUEUE`, and each Scheduler job equal to its
//!   `SchedulerRetry` constant, with the Cloud Run timeouts that go with them;
//! - nothing public, every role on an allow-list (and only on the resources it is meant for),
//!   every service invocable by its own trigger's invoker only;
//! - every environment variable `shared::deploy::required_env` lists set on its function,
//!   secrets only through Secret Manager;
//! - every resource type, attribute, block and reference name known to the google provider
//!   6.50.0, whose names `scripts/extract-provider-schema.sh` extracted into
//!   `terraform/provider-schema.json`. Names only: types, required attributes and values are
//!   not checked there.
//!
//! Every check returns its problems as text instead of panicking, so that
//! [`each_check_fails_on_a_broken_configuration`] can break the real configuration in memory,
//! in at least one way per check, and prove the check notices: a checker that passes
//! everything would otherwise go unnoticed.

use hcl::expr::{TemplateExpr, TraversalOperator};
use hcl::template::{Directive, Element};
use hcl::{Block, Body, Expression, Template};
use serde_json::Value as Json;
use shared::adapters::registry::{CRM_KINDS, CrmKind};
use shared::deploy::{self, FUNCTIONS, FunctionSpec, SECRET_ENV, Trigger};
use shared::retry_policy::{PRODUCTION_QUEUE, SchedulerRetry};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SERVICE: &str = "google_cloud_run_v2_service";
const JOB: &str = "google_cloud_run_v2_job";
const SUBSCRIPTION: &str = "google_pubsub_subscription";
const TOPIC: &str = "google_pubsub_topic";
const SCHEDULER_JOB: &str = "google_cloud_scheduler_job";
/// The crate under `functions/` that is not deployed: the all-in-one local runner.
const LOCAL_RUNNER: &str = "local-runner";

/// The `dynamic "env"` blocks that set the CRM adapter's variables: `for_each` over these
/// locals, which main.tf picks by `crm_kind` from each adapter's `{kind}_env` and
/// `{kind}_secret_env` (terraform/crm_{kind}.tf).
const CRM_ENV_LOCAL: &str = "crm_env";
const CRM_SECRET_ENV_LOCAL: &str = "crm_secret_env";

/// Every role the Terraform may grant, and the only resource types it may be granted
/// through: least privilege (docs/ARCHITECTURE.md#security) is reviewed here, once, instead of in every diff.
const ALLOWED_ROLES: &[(&str, &[&str])] = &[
    // The Cloud Support API, on the organization (docs/ARCHITECTURE.md#security).
    (
        "roles/cloudsupport.techSupportEditor",
        &["google_organization_iam_member"],
    ),
    (
        "roles/resourcemanager.organizationViewer",
        &["google_organization_iam_member"],
    ),
    // Firestore documents; no database or index admin.
    ("roles/datastore.user", &["google_project_iam_member"]),
    ("roles/logging.logWriter", &["google_project_iam_member"]),
    (
        "roles/monitoring.metricWriter",
        &["google_project_iam_member"],
    ),
    // On the one secret, never project-wide.
    (
        "roles/secretmanager.secretAccessor",
        &["google_secret_manager_secret_iam_member"],
    ),
    // On the topics and subscriptions themselves.
    (
        "roles/pubsub.publisher",
        &["google_pubsub_topic_iam_member"],
    ),
    (
        "roles/pubsub.subscriber",
        &["google_pubsub_subscription_iam_member"],
    ),
    // Each service for its own invoker.
    (
        "roles/run.invoker",
        &["google_cloud_run_v2_service_iam_member"],
    ),
    // The Pub/Sub service agent signing push tokens as an invoker account (older projects).
    (
        "roles/iam.serviceAccountTokenCreator",
        &["google_service_account_iam_member"],
    ),
];

/// Meta-arguments Terraform accepts in every `resource` and `data` block; they are not
/// provider names, so the schema does not list them.
const META_ATTRIBUTES: &[&str] = &["count", "for_each", "depends_on", "provider"];
const META_BLOCKS: &[&str] = &["lifecycle", "provisioner", "connection"];
/// Reference roots that are not resources: Terraform's own namespaces and the iterator
/// names of `for_each` / `dynamic` blocks.
const NON_RESOURCE_ROOTS: &[&str] = &[
    "var",
    "local",
    "data",
    "each",
    "count",
    "path",
    "self",
    "terraform",
    "module",
];

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// One `resource` or `data` block.
struct Resource {
    data: bool,
    rtype: String,
    name: String,
    file: String,
    body: Body,
}

impl Resource {
    fn address(&self) -> String {
        let prefix = if self.data { "data." } else { "" };
        format!("{prefix}{}.{} ({})", self.rtype, self.name, self.file)
    }

    /// The literal `name` attribute: the Cloud Run service, topic or job name.
    fn literal_name(&self) -> Option<&str> {
        attr(&self.body, "name").and_then(str_lit)
    }
}

/// The parsed configuration.
struct Config {
    /// Every file's body, for the checks that look at everything (public access, roles).
    files: Vec<(String, Body)>,
    resources: Vec<Resource>,
    variables: BTreeSet<String>,
    locals: BTreeSet<String>,
}

impl Config {
    fn parse(sources: &[(String, String)]) -> Config {
        let mut config = Config {
            files: Vec::new(),
            resources: Vec::new(),
            variables: BTreeSet::new(),
            locals: BTreeSet::new(),
        };
        for (file, text) in sources {
            let body =
                hcl::parse(text).unwrap_or_else(|e| panic!("terraform/{file} does not parse: {e}"));
            for block in body.blocks() {
                let labels: Vec<&str> = block.labels().iter().map(|l| l.as_str()).collect();
                match (block.identifier(), labels.as_slice()) {
                    (kind @ ("resource" | "data"), [rtype, name]) => {
                        config.resources.push(Resource {
                            data: kind == "data",
                            rtype: rtype.to_string(),
                            name: name.to_string(),
                            file: file.clone(),
                            body: block.body().clone(),
                        })
                    }
                    ("variable", [name]) => {
                        config.variables.insert(name.to_string());
                    }
                    ("locals", []) => config
                        .locals
                        .extend(block.body().attributes().map(|a| a.key().to_string())),
                    _ => {}
                }
            }
            config.files.push((file.clone(), body));
        }
        config
    }

    fn of_type<'a>(&'a self, rtype: &str) -> impl Iterator<Item = &'a Resource> + use<'a> {
        let rtype = rtype.to_string();
        self.resources
            .iter()
            .filter(move |r| !r.data && r.rtype == rtype)
    }

    fn find(&self, rtype: &str, name: &str) -> Option<&Resource> {
        self.of_type(rtype).find(|r| r.name == name)
    }

    /// The Cloud Run service or job whose `name` is `function`.
    fn cloud_run(&self, function: &str) -> Vec<&Resource> {
        self.of_type(SERVICE)
            .chain(self.of_type(JOB))
            .filter(|r| r.literal_name() == Some(function))
            .collect()
    }
}

/// `terraform/*.tf`, sorted by name; `.tfvars` too where asked.
fn read_terraform(with_tfvars: bool) -> Vec<(String, String)> {
    let dir = repo_root().join("terraform");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| {
            let ext = p.extension().and_then(|e| e.to_str());
            ext == Some("tf") || (with_tfvars && ext == Some("tfvars"))
        })
        .map(|p| {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a UTF-8 file name")
                .to_string();
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            (name, text)
        })
        .collect();
    files.sort();
    assert!(
        files.iter().any(|(n, _)| n.ends_with(".tf")),
        "no .tf files in {}",
        dir.display()
    );
    files
}

fn load() -> Config {
    Config::parse(&read_terraform(false))
}

fn provider_schema() -> Json {
    let path = repo_root().join("terraform/provider-schema.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (scripts/extract-provider-schema.sh writes it)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The crates under `functions/` that are deployed: every directory except the local
/// runner. Read at test time, so a new crate without Terraform fails here.
fn deployable_crates(root: &Path) -> Vec<String> {
    let dir = root.join("functions");
    let mut crates: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .filter(|n| n != LOCAL_RUNNER && !n.starts_with('.'))
        .collect();
    crates.sort();
    crates
}

// ---------------------------------------------------------------------------------------
// Expression helpers
// ---------------------------------------------------------------------------------------

fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

fn blocks<'a>(body: &'a Body, ident: &str) -> impl Iterator<Item = &'a Block> + use<'a> {
    let ident = ident.to_string();
    body.blocks().filter(move |b| b.identifier() == ident)
}

/// The body of the first block along `path`, e.g. `["template", "scaling"]`.
fn block_at<'a>(body: &'a Body, path: &[&str]) -> Option<&'a Body> {
    let mut body = body;
    for ident in path {
        body = blocks(body, ident).next()?.body();
    }
    Some(body)
}

/// The value of a string literal; `None` for anything computed.
fn str_lit(expr: &Expression) -> Option<&str> {
    match expr {
        Expression::String(s) => Some(s),
        Expression::TemplateExpr(t) => match t.as_ref() {
            TemplateExpr::QuotedString(s) if !s.contains("${") && !s.contains("%{") => Some(s),
            _ => None,
        },
        _ => None,
    }
}

fn u64_lit(expr: &Expression) -> Option<u64> {
    match expr {
        Expression::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// A Google API duration literal such as `"600s"`.
fn duration_lit(expr: &Expression) -> Option<Duration> {
    let secs = str_lit(expr)?.strip_suffix('s')?;
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    secs.parse().ok().map(Duration::from_secs)
}

/// `type.name` of a reference such as `google_pubsub_topic.x.id` or `google_x.y["k"].email`.
fn resource_ref(expr: &Expression) -> Option<(String, String)> {
    let Expression::Traversal(t) = expr else {
        return None;
    };
    let Expression::Variable(root) = &t.expr else {
        return None;
    };
    match t.operators.first() {
        Some(TraversalOperator::GetAttr(name)) if !NON_RESOURCE_ROOTS.contains(&root.as_str()) => {
            Some((root.as_str().to_string(), name.as_str().to_string()))
        }
        _ => None,
    }
}

/// Calls `f` on `expr` and every expression nested in it, template interpolations included.
fn walk_expr(expr: &Expression, f: &mut dyn FnMut(&Expression)) {
    f(expr);
    match expr {
        Expression::Array(items) => items.iter().for_each(|e| walk_expr(e, f)),
        Expression::Object(object) => {
            for (key, value) in object {
                if let hcl::ObjectKey::Expression(k) = key {
                    walk_expr(k, f);
                }
                walk_expr(value, f);
            }
        }
        Expression::TemplateExpr(t) => {
            if let Ok(template) = Template::from_expr(t) {
                walk_template(&template, f);
            }
        }
        Expression::Traversal(t) => {
            walk_expr(&t.expr, f);
            for op in &t.operators {
                if let TraversalOperator::Index(e) = op {
                    walk_expr(e, f);
                }
            }
        }
        Expression::FuncCall(call) => call.args.iter().for_each(|e| walk_expr(e, f)),
        Expression::Parenthesis(e) => walk_expr(e, f),
        Expression::Conditional(c) => {
            walk_expr(&c.cond_expr, f);
            walk_expr(&c.true_expr, f);
            walk_expr(&c.false_expr, f);
        }
        Expression::Operation(op) => match op.as_ref() {
            hcl::expr::Operation::Unary(u) => walk_expr(&u.expr, f),
            hcl::expr::Operation::Binary(b) => {
                walk_expr(&b.lhs_expr, f);
                walk_expr(&b.rhs_expr, f);
            }
        },
        Expression::ForExpr(fe) => {
            walk_expr(&fe.collection_expr, f);
            if let Some(k) = &fe.key_expr {
                walk_expr(k, f);
            }
            walk_expr(&fe.value_expr, f);
            if let Some(c) = &fe.cond_expr {
                walk_expr(c, f);
            }
        }
        _ => {}
    }
}

fn walk_template(template: &Template, f: &mut dyn FnMut(&Expression)) {
    for element in template.elements() {
        match element {
            // A literal part of a template is a string the configuration contains too.
            Element::Literal(s) => f(&Expression::String(s.clone())),
            Element::Interpolation(i) => walk_expr(&i.expr, f),
            Element::Directive(d) => match d.as_ref() {
                Directive::If(d) => {
                    walk_expr(&d.cond_expr, f);
                    walk_template(&d.true_template, f);
                    if let Some(t) = &d.false_template {
                        walk_template(t, f);
                    }
                }
                Directive::For(d) => {
                    walk_expr(&d.collection_expr, f);
                    walk_template(&d.template, f);
                }
            },
        }
    }
}

/// Calls `f` with every attribute (key, expression) in `body` and all its nested blocks.
fn walk_attributes(body: &Body, f: &mut dyn FnMut(&str, &Expression)) {
    for a in body.attributes() {
        f(a.key(), a.expr());
    }
    for b in body.blocks() {
        walk_attributes(b.body(), f);
    }
}

/// Every string in `expr`: literals, template text, heredocs.
fn strings_in(expr: &Expression) -> Vec<String> {
    let mut out = Vec::new();
    walk_expr(expr, &mut |e| {
        if let Expression::String(s) = e {
            out.push(s.clone());
        }
        if let Expression::TemplateExpr(t) = e {
            match t.as_ref() {
                TemplateExpr::QuotedString(s) => out.push(s.clone()),
                TemplateExpr::Heredoc(h) => out.push(h.template.clone()),
            }
        }
    });
    out
}

// ---------------------------------------------------------------------------------------
// Checks: each returns the problems it found
// ---------------------------------------------------------------------------------------

/// One Cloud Run service or job per deployable crate, of the kind `deploy::FUNCTIONS` says,
/// and none without a crate.
fn check_functions(config: &Config, crates: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for krate in crates {
        let Some(spec) = deploy::spec(krate) else {
            problems.push(format!(
                "functions/{krate} is not in shared::deploy::FUNCTIONS"
            ));
            continue;
        };
        let found = config.cloud_run(krate);
        if found.len() != 1 {
            problems.push(format!(
                "functions/{krate}: expected exactly one Cloud Run service or job named `{krate}`, found {}",
                found.len()
            ));
            continue;
        }
        let expected = if spec.trigger == Trigger::Job {
            JOB
        } else {
            SERVICE
        };
        if found[0].rtype != expected {
            problems.push(format!(
                "{krate} is deployed as {} but its trigger ({:?}) needs a {expected}",
                found[0].address(),
                spec.trigger
            ));
        }
    }
    for r in config.of_type(SERVICE).chain(config.of_type(JOB)) {
        match r.literal_name() {
            None => problems.push(format!(
                "{}: `name` must be a literal function name",
                r.address()
            )),
            Some(name) => {
                if deploy::spec(name).is_none() {
                    problems.push(format!(
                        "{}: `{name}` is not in shared::deploy::FUNCTIONS",
                        r.address()
                    ));
                }
                if !crates.iter().any(|c| c == name) {
                    problems.push(format!(
                        "{}: no crate functions/{name} builds its image",
                        r.address()
                    ));
                }
            }
        }
    }
    problems
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(
    problems: &mut Vec<String>,
    what: String,
    actual: Option<T>,
    expected: T,
) {
    if actual.as_ref() != Some(&expected) {
        problems.push(format!("{what}: expected {expected:?}, found {actual:?}"));
    }
}

/// The push subscriptions, their dead-letter topics and replay subscriptions equal
/// `PRODUCTION_QUEUE`, each push function has its subscription on its topic, and the sync
/// services time out as the policy says.
fn check_queues(config: &Config) -> Vec<String> {
    let q = PRODUCTION_QUEUE;
    let mut problems = Vec::new();
    let mut dead_letter_topics = BTreeSet::new();
    let push: Vec<&Resource> = config
        .of_type(SUBSCRIPTION)
        .filter(|r| blocks(&r.body, "push_config").next().is_some())
        .collect();
    for sub in &push {
        let at = |what: &str| format!("{}: {what}", sub.address());
        let b = &sub.body;
        expect_eq(
            &mut problems,
            at("ack_deadline_seconds"),
            attr(b, "ack_deadline_seconds").and_then(u64_lit),
            q.ack_deadline.as_secs(),
        );
        expect_eq(
            &mut problems,
            at("message_retention_duration"),
            attr(b, "message_retention_duration").and_then(duration_lit),
            q.message_retention,
        );
        let retry = block_at(b, &["retry_policy"]);
        expect_eq(
            &mut problems,
            at("retry_policy.minimum_backoff"),
            retry
                .and_then(|r| attr(r, "minimum_backoff"))
                .and_then(duration_lit),
            q.min_backoff,
        );
        expect_eq(
            &mut problems,
            at("retry_policy.maximum_backoff"),
            retry
                .and_then(|r| attr(r, "maximum_backoff"))
                .and_then(duration_lit),
            q.max_backoff,
        );
        let dlq = block_at(b, &["dead_letter_policy"]);
        expect_eq(
            &mut problems,
            at("dead_letter_policy.max_delivery_attempts"),
            dlq.and_then(|d| attr(d, "max_delivery_attempts"))
                .and_then(u64_lit),
            u64::from(q.max_delivery_attempts),
        );
        match dlq.and_then(|d| attr(d, "dead_letter_topic")).and_then(resource_ref) {
            Some((t, name)) if t == TOPIC && config.find(TOPIC, &name).is_some() => {
                dead_letter_topics.insert(name);
            }
            other => problems.push(at(&format!("dead_letter_policy.dead_letter_topic must refer to a google_pubsub_topic of this configuration, found {other:?}"))),
        }
        let oidc = block_at(b, &["push_config", "oidc_token"]);
        let endpoint = block_at(b, &["push_config"])
            .and_then(|p| attr(p, "push_endpoint"))
            .map(|e| e.to_string());
        let audience = oidc
            .and_then(|o| attr(o, "audience"))
            .map(|e| e.to_string());
        if oidc
            .and_then(|o| attr(o, "service_account_email"))
            .is_none()
        {
            problems.push(at("push_config.oidc_token.service_account_email is missing: pushes must carry an invoker's token"));
        }
        if audience.is_none() || audience != endpoint {
            problems.push(at(&format!("push_config.oidc_token.audience ({audience:?}) must be the push endpoint ({endpoint:?}), the audience the shim checks")));
        }
    }
    for name in &dead_letter_topics {
        let topic = config.find(TOPIC, name).expect("checked above");
        let at = |what: &str| format!("{}: {what}", topic.address());
        expect_eq(
            &mut problems,
            at("message_retention_duration"),
            attr(&topic.body, "message_retention_duration").and_then(duration_lit),
            q.dead_letter_topic_retention,
        );
        let replay: Vec<&Resource> = config
            .of_type(SUBSCRIPTION)
            .filter(|s| {
                attr(&s.body, "topic").and_then(resource_ref)
                    == Some((TOPIC.to_string(), name.clone()))
            })
            .collect();
        if replay.is_empty() {
            problems.push(at("has no pull subscription for the replay job"));
        }
        for s in replay {
            if blocks(&s.body, "push_config").next().is_some() {
                problems.push(format!(
                    "{}: a dead-letter subscription must be pulled by the replay job, not pushed",
                    s.address()
                ));
            }
            expect_eq(
                &mut problems,
                format!("{}: message_retention_duration", s.address()),
                attr(&s.body, "message_retention_duration").and_then(duration_lit),
                q.dead_letter_subscription_retention,
            );
        }
    }
    for spec in FUNCTIONS.iter() {
        let Trigger::Push { topic } = spec.trigger else {
            continue;
        };
        let target = format!("\"{}\"", spec.name);
        let subs: Vec<&&Resource> = push
            .iter()
            .filter(|s| {
                block_at(&s.body, &["push_config"])
                    .and_then(|p| attr(p, "push_endpoint"))
                    .is_some_and(|e| e.to_string().contains(&target))
            })
            .collect();
        if subs.len() != 1 {
            problems.push(format!(
                "{}: expected exactly one push subscription pushing to it, found {}",
                spec.name,
                subs.len()
            ));
            continue;
        }
        // The replay job maps Pub/Sub's CloudPubSubDeadLetterSourceSubscription back to a
        // topic through the function of that name.
        expect_eq(
            &mut problems,
            format!("{}: name (the replay job reads it)", subs[0].address()),
            subs[0].literal_name(),
            spec.name,
        );
        let topic_name = attr(&subs[0].body, "topic")
            .and_then(resource_ref)
            .filter(|(t, _)| t == TOPIC)
            .and_then(|(_, n)| config.find(TOPIC, &n))
            .and_then(|t| t.literal_name().map(str::to_string));
        expect_eq(
            &mut problems,
            format!("{}: the topic it subscribes", subs[0].address()),
            topic_name,
            topic.to_string(),
        );
        if let Some(oidc) = block_at(&subs[0].body, &["push_config", "oidc_token"]) {
            check_invoker_ref(
                &mut problems,
                &subs[0].address(),
                attr(oidc, "service_account_email"),
                spec.name,
            );
        }
        if let [service] = config.cloud_run(spec.name).as_slice() {
            let timeout = block_at(&service.body, &["template"])
                .and_then(|t| attr(t, "timeout"))
                .and_then(duration_lit);
            expect_eq(
                &mut problems,
                format!("{}: template.timeout", service.address()),
                timeout,
                q.request_timeout,
            );
        }
    }
    problems
}

/// `expr` names the invoker account of `function`: `google_service_account.invoker["f"]`.
fn check_invoker_ref(
    problems: &mut Vec<String>,
    at: &str,
    expr: Option<&Expression>,
    function: &str,
) {
    let text = expr.map(|e| e.to_string()).unwrap_or_default();
    if !text.starts_with(&format!("google_service_account.invoker[\"{function}\"].")) {
        problems.push(format!("{at}: must use the invoker account of {function} (google_service_account.invoker[\"{function}\"]), found `{text}`"));
    }
}

/// Each scheduled function has one Scheduler job equal to its `SchedulerRetry`, calling its
/// service with its invoker's token; no other Scheduler job exists.
fn check_scheduler(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let scheduled: BTreeMap<&str, SchedulerRetry> = FUNCTIONS
        .iter()
        .filter_map(|f| match f.trigger {
            Trigger::Scheduler(retry) => Some((f.name, retry)),
            _ => None,
        })
        .collect();
    for job in config.of_type(SCHEDULER_JOB) {
        if !job
            .literal_name()
            .is_some_and(|n| scheduled.contains_key(n))
        {
            problems.push(format!(
                "{}: `name` must be a scheduled function of shared::deploy::FUNCTIONS",
                job.address()
            ));
        }
    }
    for (function, retry) in &scheduled {
        let jobs: Vec<&Resource> = config
            .of_type(SCHEDULER_JOB)
            .filter(|j| j.literal_name() == Some(function))
            .collect();
        let [job] = jobs.as_slice() else {
            problems.push(format!("{function}: expected exactly one google_cloud_scheduler_job named `{function}`, found {}", jobs.len()));
            continue;
        };
        let at = |what: &str| format!("{}: {what}", job.address());
        let b = &job.body;
        expect_eq(
            &mut problems,
            at("schedule"),
            attr(b, "schedule").and_then(str_lit),
            retry.schedule,
        );
        expect_eq(
            &mut problems,
            at("time_zone (the schedules are UTC)"),
            attr(b, "time_zone").and_then(str_lit),
            "Etc/UTC",
        );
        expect_eq(
            &mut problems,
            at("attempt_deadline"),
            attr(b, "attempt_deadline").and_then(duration_lit),
            retry.attempt_deadline,
        );
        let rc = block_at(b, &["retry_config"]);
        let get = |key: &str| rc.and_then(|r| attr(r, key));
        expect_eq(
            &mut problems,
            at("retry_config.retry_count"),
            get("retry_count").and_then(u64_lit),
            u64::from(retry.retry_count),
        );
        expect_eq(
            &mut problems,
            at("retry_config.min_backoff_duration"),
            get("min_backoff_duration").and_then(duration_lit),
            retry.min_backoff,
        );
        expect_eq(
            &mut problems,
            at("retry_config.max_backoff_duration"),
            get("max_backoff_duration").and_then(duration_lit),
            retry.max_backoff,
        );
        expect_eq(
            &mut problems,
            at("retry_config.max_retry_duration"),
            get("max_retry_duration").and_then(duration_lit),
            retry.max_retry_duration,
        );
        let uri = block_at(b, &["http_target"])
            .and_then(|h| attr(h, "uri"))
            .map(|e| e.to_string());
        if !uri
            .as_deref()
            .is_some_and(|u| u.contains(&format!("\"{function}\"")))
        {
            problems.push(at(&format!(
                "http_target.uri must name the {function} service, found {uri:?}"
            )));
        }
        let oidc = block_at(b, &["http_target", "oidc_token"]);
        check_invoker_ref(
            &mut problems,
            &job.address(),
            oidc.and_then(|o| attr(o, "service_account_email")),
            function,
        );
        let audience = oidc
            .and_then(|o| attr(o, "audience"))
            .map(|e| e.to_string());
        if audience.is_none() || audience != uri {
            problems.push(at(&format!("http_target.oidc_token.audience ({audience:?}) must be the target URI ({uri:?}), the audience the shim checks")));
        }
        // The service must give up no later than Scheduler stops waiting for it, or a retry
        // starts while the attempt it replaces still runs.
        if let [service] = config.cloud_run(function).as_slice() {
            match block_at(&service.body, &["template"]).and_then(|t| attr(t, "timeout")).and_then(duration_lit) {
                Some(t) if t <= retry.attempt_deadline => {}
                other => problems.push(format!("{}: template.timeout must be at most the attempt deadline {:?}, found {other:?}", service.address(), retry.attempt_deadline)),
            }
        }
    }
    problems
}

/// No attribute value anywhere grants access to everyone, and no service turns off its
/// invoker check.
fn check_nothing_public(files: &[(String, Body)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, body) in files {
        walk_attributes(body, &mut |key, expr| {
            for s in strings_in(expr) {
                for public in ["allUsers", "allAuthenticatedUsers"] {
                    if s.contains(public) {
                        problems.push(format!("{file}: `{key}` grants {public}"));
                    }
                }
            }
            if key == "invoker_iam_disabled" && !matches!(expr, Expression::Bool(false)) {
                problems.push(format!(
                    "{file}: invoker_iam_disabled must stay false: every service checks its caller"
                ));
            }
        });
    }
    problems
}

/// Every role is allow-listed for the resource type granting it; grants are additive
/// members (an authoritative binding or policy would remove other people's grants); each
/// Cloud Run service is invocable by its own invoker only.
fn check_roles(config: &Config) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED_ROLES.iter().copied().collect();
    let mut problems = Vec::new();
    for (file, body) in &config.files {
        walk_attributes(body, &mut |key, expr| {
            for s in strings_in(expr) {
                if s.contains("roles/") && !allowed.contains_key(s.as_str()) {
                    problems.push(format!(
                        "{file}: `{key}` names `{s}`, which is not on the test's role allow-list"
                    ));
                }
            }
        });
    }
    for r in config.resources.iter().filter(|r| !r.data) {
        if r.rtype.ends_with("_iam_binding") || r.rtype.ends_with("_iam_policy") {
            problems.push(format!(
                "{}: authoritative IAM; grant with an _iam_member instead",
                r.address()
            ));
        }
        let Some(role) = attr(&r.body, "role") else {
            continue;
        };
        match str_lit(role) {
            None => problems.push(format!(
                "{}: `role` must be a literal so the allow-list can check it",
                r.address()
            )),
            Some(role) => match allowed.get(role) {
                Some(types) if types.contains(&r.rtype.as_str()) => {}
                Some(types) => problems.push(format!(
                    "{}: {role} may be granted only through {types:?}",
                    r.address()
                )),
                None => problems.push(format!(
                    "{}: {role} is not on the test's role allow-list",
                    r.address()
                )),
            },
        }
    }
    for service in config.of_type(SERVICE) {
        let Some(function) = service.literal_name() else {
            continue;
        };
        let grants: Vec<&Resource> = config
            .of_type("google_cloud_run_v2_service_iam_member")
            .filter(|m| {
                attr(&m.body, "name").and_then(resource_ref)
                    == Some((SERVICE.to_string(), service.name.clone()))
            })
            .collect();
        if grants.len() != 1 {
            problems.push(format!(
                "{}: expected exactly one run.invoker grant, for its invoker account, found {}",
                service.address(),
                grants.len()
            ));
        }
        for grant in grants {
            check_invoker_ref(
                &mut problems,
                &grant.address(),
                attr(&grant.body, "member"),
                function,
            );
        }
    }
    problems
}

/// The literal `env` blocks of a service's or job's container.
fn container_env(resource: &Resource) -> Vec<&Body> {
    let path: &[&str] = if resource.rtype == JOB {
        &["template", "template", "containers"]
    } else {
        &["template", "containers"]
    };
    let Some(container) = block_at(&resource.body, path) else {
        return Vec::new();
    };
    blocks(container, "env").map(|b| b.body()).collect()
}

/// The value of `local.{name}`, wherever it is declared.
fn local_expr<'a>(config: &'a Config, name: &str) -> Option<&'a Expression> {
    config
        .files
        .iter()
        .flat_map(|(_, body)| blocks(body, "locals"))
        .find_map(|b| attr(b.body(), name))
}

/// The literal keys of an object (also inside `tomap(...)`), e.g. a `{kind}_env` local.
fn object_keys(expr: &Expression) -> Option<Vec<String>> {
    match expr {
        Expression::Object(object) => object
            .keys()
            .map(|k| match k {
                hcl::ObjectKey::Identifier(id) => Some(id.as_str().to_string()),
                hcl::ObjectKey::Expression(e) => str_lit(e).map(str::to_string),
                _ => None,
            })
            .collect(),
        Expression::FuncCall(call) if call.name.to_string() == "tomap" => {
            call.args.first().and_then(object_keys)
        }
        _ => None,
    }
}

/// `local.{name}` of a `for_each`.
fn local_name(expr: &Expression) -> Option<&str> {
    let Expression::Traversal(t) = expr else {
        return None;
    };
    match (&t.expr, t.operators.as_slice()) {
        (Expression::Variable(root), [TraversalOperator::GetAttr(name)])
            if root.as_str() == "local" =>
        {
            Some(name.as_str())
        }
        _ => None,
    }
}

/// The environment names a container sets for CRM `crm`: its literal `env` blocks, and the
/// keys of the adapter's locals where a `dynamic "env"` iterates over `local.crm_env` or
/// `local.crm_secret_env`. Each name with whether it is set from Secret Manager.
fn container_env_names(
    config: &Config,
    resource: &Resource,
    crm: &CrmKind,
    problems: &mut Vec<String>,
) -> Vec<(String, bool)> {
    let at = resource.address();
    let mut names = Vec::new();
    for env in container_env(resource) {
        let Some(name) = attr(env, "name").and_then(str_lit) else {
            problems.push(format!("{at}: every env block needs a literal name (optional settings go through extra_env)"));
            continue;
        };
        let secret_ref = block_at(env, &["value_source", "secret_key_ref"]);
        let from_secret = attr(env, "value").is_none()
            && secret_ref
                .is_some_and(|s| attr(s, "secret").is_some() && attr(s, "version").is_some());
        if !from_secret && attr(env, "value").is_none() {
            problems.push(format!("{at}: {name} has no value"));
        }
        names.push((name.to_string(), from_secret));
    }
    for dynamic in container_dynamic_env(resource) {
        let local = attr(dynamic, "for_each").and_then(local_name);
        let (adapter_local, secret) = match local {
            Some(CRM_ENV_LOCAL) => (format!("{}_env", crm.kind), false),
            Some(CRM_SECRET_ENV_LOCAL) => (format!("{}_secret_env", crm.kind), true),
            // extra_env: the operator's optional settings, not the code's.
            _ => continue,
        };
        let Some(keys) = local_expr(config, &adapter_local).and_then(object_keys) else {
            problems.push(format!(
                "{at}: local.{adapter_local} (terraform/crm_{}.tf) is not an object of literal variable names",
                crm.kind
            ));
            continue;
        };
        let content = block_at(dynamic, &["content"]);
        let secret_ref = content.and_then(|c| block_at(c, &["value_source", "secret_key_ref"]));
        let from_secret = content.is_some_and(|c| attr(c, "value").is_none())
            && secret_ref
                .is_some_and(|s| attr(s, "secret").is_some() && attr(s, "version").is_some());
        if secret != from_secret {
            problems.push(format!(
                "{at}: the dynamic env over local.{} must set {}",
                local.unwrap_or_default(),
                if secret {
                    "value_source.secret_key_ref (secret and version), never a value"
                } else {
                    "a value"
                }
            ));
        }
        names.extend(keys.into_iter().map(|k| (k, from_secret)));
    }
    names
}

/// The `dynamic "env"` blocks of a service's or job's container.
fn container_dynamic_env(resource: &Resource) -> Vec<&Body> {
    let path: &[&str] = if resource.rtype == JOB {
        &["template", "template", "containers"]
    } else {
        &["template", "containers"]
    };
    let Some(container) = block_at(&resource.body, path) else {
        return Vec::new();
    };
    blocks(container, "dynamic")
        .filter(|b| b.labels().first().is_some_and(|l| l.as_str() == "env"))
        .map(|b| b.body())
        .collect()
}

/// Each function's container sets exactly what `provisioned_env` lists for CRM `crm`, every
/// secret from Secret Manager, nothing else literal.
fn check_env(config: &Config, spec: &FunctionSpec, crm: &CrmKind) -> Vec<String> {
    let mut problems = Vec::new();
    let found = config.cloud_run(spec.name);
    let [resource] = found.as_slice() else {
        return vec![format!(
            "{}: expected one Cloud Run service or job, found {}",
            spec.name,
            found.len()
        )];
    };
    let at = format!("{} (crm_kind = {})", resource.address(), crm.kind);
    // What the function must read, and what it reads when set (deploy::provisioned_env).
    let expected: BTreeSet<&str> = deploy::provisioned_env(spec.name, crm)
        .into_iter()
        .collect();
    let mut set = BTreeSet::new();
    for (name, from_secret) in container_env_names(config, resource, crm, &mut problems) {
        if !set.insert(name.clone()) {
            problems.push(format!("{at}: {name} is set twice"));
        }
        if SECRET_ENV.contains(&name.as_str()) && !from_secret {
            problems.push(format!("{at}: {name} is a secret: set it through value_source.secret_key_ref (secret and version), never as a value"));
        }
    }
    for name in &expected {
        if !set.contains(*name) {
            problems.push(format!(
                "{at}: {name} is read by {} at start-up (shared::deploy::required_env) but not set",
                spec.name
            ));
        }
    }
    for name in &set {
        if !expected.contains(name.as_str()) {
            problems.push(format!("{at}: {name} is not read by {} (least privilege: set only what required_env lists)", spec.name));
        }
    }
    problems
}

/// Every function for every CRM kind.
fn check_env_every_kind(config: &Config) -> Vec<String> {
    CRM_KINDS
        .iter()
        .flat_map(|crm| {
            FUNCTIONS
                .iter()
                .flat_map(move |spec| check_env(config, spec, crm))
        })
        .collect()
}

/// `crm_kind` accepts exactly the kinds of the code's registry; main.tf's `crm_env` and
/// `crm_secret_env` pick each kind's locals; each adapter's file declares its variables.
fn check_crm_kinds(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let kinds: BTreeSet<String> = CRM_KINDS.iter().map(|k| k.kind.to_string()).collect();
    let mut accepted = BTreeSet::new();
    for (_, body) in &config.files {
        for block in blocks(body, "variable") {
            if block.labels().first().map(|l| l.as_str()) != Some("crm_kind") {
                continue;
            }
            for validation in blocks(block.body(), "validation") {
                if let Some(condition) = attr(validation.body(), "condition") {
                    walk_expr(condition, &mut |e| {
                        if let Expression::Array(items) = e {
                            accepted.extend(items.iter().filter_map(str_lit).map(str::to_string));
                        }
                    });
                }
            }
        }
    }
    if accepted != kinds {
        problems.push(format!(
            "variable crm_kind accepts {accepted:?}; the registry's kinds are {kinds:?}"
        ));
    }
    for (local, suffix) in [
        (CRM_ENV_LOCAL, "env"),
        (CRM_SECRET_ENV_LOCAL, "secret_env"),
        // Which secret scripts/deploy.sh creates and checks first.
        ("crm_secret", "secret"),
    ] {
        // `{ jira = local.jira_env, ... }[var.crm_kind]`
        let picks: Option<BTreeMap<String, String>> = local_expr(config, local).and_then(|e| {
            let Expression::Traversal(t) = e else {
                return None;
            };
            let Expression::Object(object) = &t.expr else {
                return None;
            };
            object
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        hcl::ObjectKey::Identifier(id) => id.as_str().to_string(),
                        hcl::ObjectKey::Expression(e) => str_lit(e)?.to_string(),
                        _ => return None,
                    };
                    Some((key, local_name(v)?.to_string()))
                })
                .collect()
        });
        let wanted: BTreeMap<String, String> = CRM_KINDS
            .iter()
            .map(|k| (k.kind.to_string(), format!("{}_{suffix}", k.kind)))
            .collect();
        if picks.as_ref() != Some(&wanted) {
            problems.push(format!(
                "local.{local} must be {{ kind = local.{{kind}}_{suffix}, … }}[var.crm_kind] over every registry kind: found {picks:?}"
            ));
        }
    }
    for crm in CRM_KINDS {
        let file = format!("crm_{}.tf", crm.kind);
        let declared: BTreeSet<String> = config
            .files
            .iter()
            .filter(|(f, _)| *f == file)
            .flat_map(|(_, body)| blocks(body, "variable"))
            .filter_map(|b| b.labels().first().map(|l| l.as_str().to_string()))
            .collect();
        let listed: BTreeSet<String> = crm
            .terraform_variables
            .iter()
            .map(|v| v.to_string())
            .collect();
        if declared != listed {
            problems.push(format!(
                "terraform/{file} declares {declared:?}; the registry lists {listed:?}"
            ));
        }
    }
    problems
}

/// The schema entry for a resource or data source.
fn schema_entry<'a>(schema: &'a Json, data: bool, rtype: &str) -> Option<&'a Json> {
    schema
        .get(if data { "data_sources" } else { "resources" })?
        .get(rtype)
}

fn has_name(entry: &Json, kind: &str, name: &str) -> bool {
    entry.get(kind).and_then(|k| k.get(name)).is_some()
}

/// Every attribute and block of `body` exists in `entry`, recursively; `dynamic "x"` counts
/// as block `x` with its `content` as the body.
fn check_body_names(problems: &mut Vec<String>, at: &str, body: &Body, entry: &Json, top: bool) {
    for a in body.attributes() {
        let key = a.key();
        if top && META_ATTRIBUTES.contains(&key) {
            continue;
        }
        if !has_name(entry, "attributes", key) {
            problems.push(format!("{at}: unknown attribute `{key}`"));
        }
    }
    for b in body.blocks() {
        let ident = b.identifier();
        if top && META_BLOCKS.contains(&ident) {
            continue;
        }
        let (name, inner) = if ident == "dynamic" {
            let Some(label) = b.labels().first() else {
                problems.push(format!("{at}: a dynamic block needs a label"));
                continue;
            };
            for a in b.body().attributes() {
                if !["for_each", "iterator", "labels"].contains(&a.key()) {
                    problems.push(format!(
                        "{at}: dynamic \"{}\": unknown argument `{}`",
                        label.as_str(),
                        a.key()
                    ));
                }
            }
            match block_at(b.body(), &["content"]) {
                Some(content) => (label.as_str(), content),
                None => {
                    problems.push(format!(
                        "{at}: dynamic \"{}\" has no content block",
                        label.as_str()
                    ));
                    continue;
                }
            }
        } else {
            (ident, b.body())
        };
        match entry.get("blocks").and_then(|bl| bl.get(name)) {
            Some(nested) => {
                check_body_names(problems, &format!("{at}.{name}"), inner, nested, false)
            }
            None => problems.push(format!("{at}: unknown block `{name}`")),
        }
    }
}

/// Every resource and data type, attribute and block exists in provider 6.50.0, and every
/// reference names a declared resource, variable or local and an attribute the provider has.
fn check_schema(config: &Config, schema: &Json) -> Vec<String> {
    let mut problems = Vec::new();
    let declared: BTreeSet<(bool, &str, &str)> = config
        .resources
        .iter()
        .map(|r| (r.data, r.rtype.as_str(), r.name.as_str()))
        .collect();
    for r in &config.resources {
        let Some(entry) = schema_entry(schema, r.data, &r.rtype) else {
            problems.push(format!("{}: type `{}` is not in terraform/provider-schema.json (rerun scripts/extract-provider-schema.sh if it is new)", r.address(), r.rtype));
            continue;
        };
        check_body_names(&mut problems, &r.address(), &r.body, entry, true);
    }
    for (file, body) in &config.files {
        walk_attributes(body, &mut |_, expr| {
            walk_expr(expr, &mut |e| {
                check_reference(&mut problems, file, e, config, &declared, schema)
            });
        });
    }
    problems
}

/// A reference `google_x.name[...].attr`, `data.google_x.name.attr`, `var.x` or `local.x`
/// names something that exists.
fn check_reference(
    problems: &mut Vec<String>,
    file: &str,
    expr: &Expression,
    config: &Config,
    declared: &BTreeSet<(bool, &str, &str)>,
    schema: &Json,
) {
    let Expression::Traversal(t) = expr else {
        return;
    };
    let Expression::Variable(root) = &t.expr else {
        return;
    };
    let names: Vec<&str> = t
        .operators
        .iter()
        .filter_map(|op| match op {
            TraversalOperator::GetAttr(id) => Some(id.as_str()),
            _ => None,
        })
        .collect();
    let text = expr.to_string();
    match root.as_str() {
        namespace @ ("var" | "local") => {
            let (declared, what) = if namespace == "var" {
                (&config.variables, "variable")
            } else {
                (&config.locals, "local")
            };
            if !names.first().is_some_and(|n| declared.contains(*n)) {
                problems.push(format!("{file}: `{text}` names no declared {what}"));
            }
        }
        root if root.starts_with("google_") || root == "data" => {
            let data = root == "data";
            let (rtype, rest) = if data {
                match names.split_first() {
                    Some((rtype, rest)) => (*rtype, rest),
                    None => return,
                }
            } else {
                (root, names.as_slice())
            };
            let Some((name, attrs)) = rest.split_first() else {
                return;
            };
            if !declared.contains(&(data, rtype, name)) {
                problems.push(format!("{file}: `{text}` names no declared resource"));
                return;
            }
            if let (Some(attribute), Some(entry)) =
                (attrs.first(), schema_entry(schema, data, rtype))
            {
                let readable = entry
                    .get("readable")
                    .and_then(Json::as_array)
                    .is_some_and(|names| names.iter().any(|n| n.as_str() == Some(attribute)));
                if !readable {
                    problems.push(format!(
                        "{file}: `{text}`: {rtype} has no attribute `{attribute}`"
                    ));
                }
            }
        }
        _ => {}
    }
}

fn assert_none(check: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{check}:\n  {}", problems.join("\n  "));
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

/// Fields the Monitoring API drops when they are zero (a dashboard tile's `xPos`, `yPos`)
/// would show as a change on every plan: they must be left out.
fn check_no_zero_dashboard_positions(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    for r in config.of_type("google_monitoring_dashboard") {
        if let Some(json) = attr(&r.body, "dashboard_json") {
            walk_expr(json, &mut |e| {
                if let Expression::Object(object) = e {
                    for (key, value) in object {
                        let name = match key {
                            hcl::ObjectKey::Identifier(id) => id.as_str().to_string(),
                            hcl::ObjectKey::Expression(k) => {
                                str_lit(k).unwrap_or_default().to_string()
                            }
                            _ => String::new(),
                        };
                        if matches!(name.as_str(), "xPos" | "yPos") && u64_lit(value) == Some(0) {
                            problems.push(format!(
                                "{}: {name} = 0 is dropped by the API and diffs on every plan: leave it out",
                                r.address()
                            ));
                        }
                    }
                }
            });
        }
    }
    problems
}

#[test]
fn dashboard_tiles_leave_out_zero_positions() {
    assert_none(
        "dashboard zero fields",
        check_no_zero_dashboard_positions(&load()),
    );
    let broken = Config::parse(&[(
        "monitoring.tf".to_string(),
        r#"resource "google_monitoring_dashboard" "d" {
  dashboard_json = jsonencode({ tiles = [{ xPos = 0, width = 24 }] })
}"#
        .to_string(),
    )]);
    assert_eq!(check_no_zero_dashboard_positions(&broken).len(), 1);
}

#[test]
fn there_is_one_cloud_run_service_or_job_per_deployable_function_crate() {
    assert_none(
        "Cloud Run vs functions/",
        check_functions(&load(), &deployable_crates(&repo_root())),
    );
}

#[test]
fn push_subscriptions_and_dead_letters_equal_the_production_queue_policy() {
    assert_none(
        "Pub/Sub vs retry_policy::PRODUCTION_QUEUE",
        check_queues(&load()),
    );
}

#[test]
fn scheduler_jobs_equal_their_scheduler_retry_constants() {
    assert_none("Cloud Scheduler vs retry_policy", check_scheduler(&load()));
}

#[test]
fn nothing_is_granted_to_all_users() {
    // The example variables are what operators copy: they must not open anything either.
    let config = Config::parse(&read_terraform(true));
    assert_none("public access", check_nothing_public(&config.files));
}

#[test]
fn every_role_granted_is_on_the_allow_list() {
    assert_none("roles", check_roles(&load()));
}

#[test]
fn every_function_gets_exactly_the_environment_it_reads_for_every_crm_kind() {
    let config = load();
    for crm in CRM_KINDS {
        let problems: Vec<String> = FUNCTIONS
            .iter()
            .flat_map(|spec| check_env(&config, spec, crm))
            .collect();
        assert_none(
            &format!(
                "environment vs deploy::required_env, crm_kind = {}",
                crm.kind
            ),
            problems,
        );
    }
}

#[test]
fn every_crm_kind_of_the_registry_is_deployable() {
    assert_none("crm_kind vs adapters::registry", check_crm_kinds(&load()));
}

#[test]
fn every_name_exists_in_the_provider_schema() {
    assert_none(
        "names vs provider 6.50.0",
        check_schema(&load(), &provider_schema()),
    );
}

#[test]
fn the_provider_schema_covers_every_type_used_and_no_more() {
    // The schema file is extracted for exactly the types the configuration uses, so a stale
    // file (a type added without rerunning the script) is caught with its fix.
    let config = load();
    let schema = provider_schema();
    for (data, key) in [(false, "resources"), (true, "data_sources")] {
        let used: BTreeSet<&str> = config
            .resources
            .iter()
            .filter(|r| r.data == data)
            .map(|r| r.rtype.as_str())
            .collect();
        let listed: BTreeSet<&str> = schema[key]
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            used, listed,
            "terraform/provider-schema.json {key}: rerun scripts/extract-provider-schema.sh"
        );
    }
}

#[test]
fn the_example_variables_set_every_required_variable_and_nothing_unknown() {
    // An operator starts from example.tfvars: it must name every variable without a default
    // (but image_tag, which scripts/deploy.sh passes) and no variable that does not exist.
    let mut required = BTreeSet::new();
    let mut known = BTreeSet::new();
    for (_, text) in read_terraform(false) {
        let body = hcl::parse(&text).expect("checked by the other tests");
        for block in blocks(&body, "variable") {
            let name = block.labels()[0].as_str().to_string();
            if attr(block.body(), "default").is_none() && name != "image_tag" {
                required.insert(name.clone());
            }
            known.insert(name);
        }
    }
    let path = repo_root().join("terraform/example.tfvars");
    let text = std::fs::read_to_string(&path).expect("terraform/example.tfvars");
    let example: BTreeSet<String> = hcl::parse(&text)
        .expect("example.tfvars parses")
        .attributes()
        .map(|a| a.key().to_string())
        .collect();
    let missing: Vec<&String> = required.difference(&example).collect();
    let unknown: Vec<&String> = example.difference(&known).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "example.tfvars: missing required {missing:?}, unknown {unknown:?}"
    );
}

/// A check, by name, for the breakage table below.
#[derive(Debug, Clone, Copy)]
enum Check {
    Functions,
    Queues,
    Scheduler,
    Public,
    Roles,
    Env,
    CrmKinds,
    Schema,
}

/// One breakage per row: what is broken, the check that must notice, and the text replaced
/// (first occurrence) in a file of `terraform/`.
#[rustfmt::skip]
const BREAKAGES: &[(&str, Check, &str, &str, &str)] = &[
    ("a service renamed", Check::Functions, "run.tf", r#"name                = "poll-google""#, r#"name                = "poll-googl""#),
    ("the job deployed as a service", Check::Functions, "run.tf", r#"resource "google_cloud_run_v2_job""#, r#"resource "google_cloud_run_v2_service""#),
    ("max delivery attempts", Check::Queues, "pubsub.tf", "max_delivery_attempts = 100", "max_delivery_attempts = 99"),
    ("maximum backoff", Check::Queues, "pubsub.tf", r#"maximum_backoff = "600s""#, r#"maximum_backoff = "300s""#),
    ("ack deadline", Check::Queues, "pubsub.tf", "ack_deadline_seconds       = 600", "ack_deadline_seconds       = 60"),
    ("no retry policy", Check::Queues, "pubsub.tf", "retry_policy {", "retry_policy_gone {"),
    ("a push subscription renamed", Check::Queues, "pubsub.tf", r#"name    = "sync-company-to-google""#, r#"name    = "sync-to-google""#),
    ("dead-letter topic retention", Check::Queues, "pubsub.tf", r#""2678400s""#, r#""604800s""#),
    ("sync request timeout", Check::Queues, "run.tf", r#"timeout                          = "540s""#, r#"timeout                          = "300s""#),
    ("schedule", Check::Scheduler, "scheduler.tf", r#"schedule         = "*/5 * * * *""#, r#"schedule         = "*/10 * * * *""#),
    ("retry count", Check::Scheduler, "scheduler.tf", "retry_count          = 5", "retry_count          = 4"),
    ("max retry duration", Check::Scheduler, "scheduler.tf", r#"max_retry_duration   = "86400s""#, r#"max_retry_duration   = "3600s""#),
    ("another function's invoker", Check::Scheduler, "scheduler.tf", r#"invoker["poll-company"].email"#, r#"invoker["poll-google"].email"#),
    ("allUsers", Check::Public, "run.tf", r#"member   = google_service_account.invoker["poll-google"].member"#, r#"member   = "allUsers""#),
    ("allAuthenticatedUsers in a template", Check::Public, "iam.tf", "member = google_service_account.runtime.member", r#"member = "${"allAuthenticatedUsers"}""#),
    ("a role off the list", Check::Roles, "iam.tf", "roles/datastore.user", "roles/datastore.owner"),
    ("an allowed role on the wrong scope", Check::Roles, "crm_rt.tf", r#"resource "google_secret_manager_secret_iam_member""#, r#"resource "google_project_iam_member""#),
    ("invoker of another service", Check::Roles, "run.tf", r#"member   = google_service_account.invoker["poll-google"].member"#, r#"member   = google_service_account.invoker["detect-outages"].member"#),
    ("a required variable missing", Check::Env, "run.tf", r#"name  = "CASESYNC_SHIM__DEAD_LETTER_TOPIC""#, r#"name  = "CASESYNC_SHIM__DEAD_LETTER""#),
    ("a secret as a plain value", Check::Env, "run.tf", "          name = env.key\n          value_source {", "          name  = env.key\n          value = env.value.secret\n          value_source {"),
    ("an adapter's variable missing", Check::Env, "crm_rt.tf", "    CASESYNC_CRM__RT__QUEUE    = var.rt_queue\n", ""),
    ("another adapter's variable", Check::Env, "crm_jira.tf", "CASESYNC_CRM__JIRA__EMAIL ", "CASESYNC_CRM__RT__EMAIL "),
    ("a kind the code does not know", Check::CrmKinds, "variables.tf", r#"contains(["jira", "rt"]"#, r#"contains(["jira", "rt", "zendesk"]"#),
    ("a kind without its locals", Check::CrmKinds, "main.tf", "    rt   = local.rt_env\n", ""),
    ("an adapter variable outside its file", Check::CrmKinds, "crm_rt.tf", r#"variable "rt_queue""#, r#"variable "rt_queues""#),
    ("a variable a function does not read", Check::Env, "run.tf", r#"name  = "CASESYNC_CRM__KIND""#, r#"name  = "CASESYNC_CRM__JIRA__EMAIL""#),
    ("an unknown attribute", Check::Schema, "pubsub.tf", "max_delivery_attempts = 100", "max_delivery_attempt = 100"),
    ("an unknown block", Check::Schema, "scheduler.tf", "retry_config {", "retry_settings {"),
    ("an unknown resource type", Check::Schema, "iam.tf", r#"resource "google_service_account" "runtime""#, r#"resource "google_service_acount" "runtime""#),
    ("an unknown dynamic block", Check::Schema, "firestore.tf", r#"dynamic "indexes""#, r#"dynamic "index""#),
    ("a reference to an unknown attribute", Check::Schema, "run.tf", "google_firestore_database.casesync.name", "google_firestore_database.casesync.nme"),
    ("a reference to an unknown variable", Check::Schema, "crm_jira.tf", "= var.jira_base_url", "= var.jira_url"),
];

/// Breaks the real configuration in memory, once per row of [`BREAKAGES`], and expects the
/// named check to complain: the proof that no check passes vacuously.
#[test]
fn each_check_fails_on_a_broken_configuration() {
    let sources = read_terraform(false);
    let schema = provider_schema();
    // The functions check also needs crates: here, exactly the functions of the code.
    let crates: Vec<String> = FUNCTIONS.iter().map(|f| f.name.to_string()).collect();
    let run = |check: Check, config: &Config| -> Vec<String> {
        match check {
            Check::Functions => check_functions(config, &crates),
            Check::Queues => check_queues(config),
            Check::Scheduler => check_scheduler(config),
            Check::Public => check_nothing_public(&config.files),
            Check::Roles => check_roles(config),
            Check::Env => check_env_every_kind(config),
            Check::CrmKinds => check_crm_kinds(config),
            Check::Schema => check_schema(config, &schema),
        }
    };
    let mut silent = Vec::new();
    for (what, check, file, from, to) in BREAKAGES {
        let mut broken = sources.clone();
        let (_, text) = broken
            .iter_mut()
            .find(|(name, _)| name == file)
            .unwrap_or_else(|| panic!("terraform/{file} is gone: update BREAKAGES"));
        assert!(
            text.contains(from),
            "terraform/{file} no longer contains `{from}`: update BREAKAGES"
        );
        *text = text.replacen(from, to, 1);
        if run(*check, &Config::parse(&broken)).is_empty() {
            silent.push(format!("{what} ({check:?})"));
        }
    }
    // A crate under functions/ with no Cloud Run service or job.
    let with_new_crate = [crates.clone(), vec!["sync-new-crm".to_string()]].concat();
    if check_functions(&Config::parse(&sources), &with_new_crate).is_empty() {
        silent.push("a crate without a service (Functions)".to_string());
    }
    assert!(
        silent.is_empty(),
        "these breakages went unnoticed: {silent:?}"
    );
    // And the unbroken configuration passes every check, so each failure above is the
    // breakage's.
    let clean = Config::parse(&sources);
    for check in [
        Check::Functions,
        Check::Queues,
        Check::Scheduler,
        Check::Public,
        Check::Roles,
        Check::Env,
        Check::CrmKinds,
        Check::Schema,
    ] {
        assert_none(
            &format!("{check:?} on the unbroken configuration"),
            run(check, &clean),
        );
    }
}
