# Shared values, the project lookup, and the names every other file uses.
#
# The functions and their triggers mirror `shared::deploy::FUNCTIONS` in the Rust code, and
# the retry, backoff, schedule and dead-letter numbers in pubsub.tf, scheduler.tf and run.tf
# are written out as literals equal to `shared::retry_policy`: tests/integration/terraform.rs
# parses this directory and fails when either drifts from the code.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  # The six Cloud Run services; replay-dead-letters is a Cloud Run job (run.tf).
  http_functions = [
    "poll-google",
    "poll-company",
    "sync-google-to-company",
    "sync-company-to-google",
    "cleanup-case-mappings",
    "detect-outages",
  ]
  functions = concat(local.http_functions, ["replay-dead-letters"])

  project_number = data.google_project.this.number

  # Cloud Run's deterministic URL, https://{service}-{project number}.{region}.run.app. The
  # services' own `uri` cannot be used for CASESYNC_SHIM__AUDIENCE: a service cannot refer
  # to its own attribute (a cycle), and this form is known before the service exists. The
  # same string is each trigger's push endpoint/target and OIDC audience, so the audience a
  # token carries is exactly the one the shim expects.
  service_url = {
    for f in local.http_functions : f => "https://${f}-${local.project_number}.${var.region}.run.app"
  }

  image_prefix = coalesce(
    var.image_prefix,
    "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}",
  )
  image = { for f in local.functions : f => "${local.image_prefix}/${f}:${var.image_tag}" }

  # Scaling: sync services scale out with the backlog; scheduled ones run one at a time, so
  # a slow poll makes the next tick wait (429, retried by Scheduler) instead of overlapping.
  default_min_instances = { for f in local.http_functions : f => 0 }
  default_max_instances = {
    "poll-google"            = 1
    "poll-company"           = 1
    "sync-google-to-company" = 5
    "sync-company-to-google" = 5
    "cleanup-case-mappings"  = 1
    "detect-outages"         = 1
  }
  default_max_concurrency = {
    "poll-google"            = 1
    "poll-company"           = 1
    "sync-google-to-company" = 8
    "sync-company-to-google" = 8
    "cleanup-case-mappings"  = 1
    "detect-outages"         = 1
  }
  min_instances   = merge(local.default_min_instances, var.min_instances)
  max_instances   = merge(local.default_max_instances, var.max_instances)
  max_concurrency = merge(local.default_max_concurrency, var.max_concurrency)

  google_create_parent = coalesce(var.google_create_parent, var.google_parent)

  # The CRM adapter's environment, by crm_kind: each adapter's file (terraform/crm_{kind}.tf)
  # declares its variables, its secret and these two locals, {kind}_env (plain values) and
  # {kind}_secret_env (Secret Manager references). One entry per kind of the code's registry
  # (shared::adapters::registry), which the Terraform test holds this map to.
  crm_env = {
    jira = local.jira_env
    rt   = local.rt_env
  }[var.crm_kind]
  crm_secret_env = {
    jira = local.jira_secret_env
    rt   = local.rt_secret_env
  }[var.crm_kind]
  crm_secret = {
    jira = local.jira_secret
    rt   = local.rt_secret
  }[var.crm_kind]

  # A TOML array as the configuration's env override expects it (README.md#configuration); JSON
  # string arrays are valid TOML. The runtime account is always one of casesync's own
  # identities: every comment casesync writes carries it (docs/INVARIANTS.md#own-identity).
  google_own_identities = jsonencode(concat([google_service_account.runtime.email], var.google_extra_own_identities))

  # The Pub/Sub service agent forwards undeliverable messages to the dead-letter topics and
  # acks them on the source subscriptions; it needs rights on both (pubsub.tf).
  pubsub_service_agent = "serviceAccount:service-${local.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}
