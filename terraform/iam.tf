# Identities and grants (docs/ARCHITECTURE.md#security, docs/INVARIANTS.md#own-identity): ONE runtime account that every function runs as,
# so everything casesync writes carries one identity, and one invoker account per trigger,
# the only caller its service accepts. Every grant is the narrowest role on the narrowest
# resource that works; the Terraform test keeps an allow-list of the roles used here.

resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = "casesync-runtime"
  display_name = "casesync runtime"
  description  = "The identity every casesync function runs as: toward the Cloud Support API, Firestore, Pub/Sub and Secret Manager."

  depends_on = [google_project_service.apis]
}

locals {
  # Service account IDs are at most 30 characters, so they abbreviate the function names.
  invoker_account_ids = {
    "poll-google"            = "casesync-inv-poll-google"
    "poll-company"           = "casesync-inv-poll-company"
    "sync-google-to-company" = "casesync-inv-sync-to-company"
    "sync-company-to-google" = "casesync-inv-sync-to-google"
    "cleanup-case-mappings"  = "casesync-inv-cleanup"
    "detect-outages"         = "casesync-inv-detect-outages"
  }
  push_functions = ["sync-google-to-company", "sync-company-to-google"]
}

resource "google_service_account" "invoker" {
  for_each = local.invoker_account_ids

  project      = var.project_id
  account_id   = each.value
  display_name = "casesync invoker: ${each.key}"
  description  = "Signs the OIDC token of the trigger of ${each.key}; the only account that may invoke it."

  depends_on = [google_project_service.apis]
}

# --- The runtime account on the organization: the Cloud Support API (docs/ARCHITECTURE.md#security) ---------

resource "google_organization_iam_member" "runtime_support_editor" {
  org_id = var.organization_id
  role   = "roles/cloudsupport.techSupportEditor"
  member = google_service_account.runtime.member
}

# Resolves organizations/{id} and projects/{id} case parents and lists the organization's
# projects that cases name.
resource "google_organization_iam_member" "runtime_organization_viewer" {
  org_id = var.organization_id
  role   = "roles/resourcemanager.organizationViewer"
  member = google_service_account.runtime.member
}

# --- The runtime account in the project ---------------------------------------------------

# Read and write documents; not roles/datastore.owner (no index or database admin). The
# condition limits it to casesync's own database: other databases of the project stay out
# of reach.
resource "google_project_iam_member" "runtime_datastore_user" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.runtime.member

  condition {
    title       = "casesync database only"
    description = "Firestore access for casesync is limited to its own named database."
    expression  = "resource.name == \"${google_firestore_database.casesync.id}\""
  }
}

resource "google_project_iam_member" "runtime_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.runtime.member
}

resource "google_project_iam_member" "runtime_metric_writer" {
  project = var.project_id
  role    = "roles/monitoring.metricWriter"
  member  = google_service_account.runtime.member
}

# Pub/Sub and Secret Manager grants are on the topics, subscriptions and the secret
# themselves (pubsub.tf, secrets.tf), not on the project.

# --- Pub/Sub push with OIDC ----------------------------------------------------------------

# The Pub/Sub service agent signs the push tokens as the push invokers. Projects created
# since April 2021 allow that through the agent's own role; older ones need this grant. It
# is scoped to the two push invokers only.
resource "google_service_account_iam_member" "pubsub_agent_signs_as_push_invoker" {
  for_each = toset(local.push_functions)

  service_account_id = google_service_account.invoker[each.value].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent

  depends_on = [google_project_service.apis]
}
