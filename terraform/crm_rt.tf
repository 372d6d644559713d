# The Request Tracker adapter (crm_kind = "rt"): its variables, its secret and its
# environment, as terraform/crm_jira.tf is Jira's (docs/ADDING-A-CRM.md). The code's
# registry entry (shared::adapters::registry, `rt`) lists the same variables and
# environment, and the Terraform test holds the two together.
#
# The credential is an auth token of casesync's own RT user, in Secret Manager
# (casesync-rt-token by default). Terraform creates the secret and lets the runtime account
# read it; the operator adds the value (README), so it never passes through Terraform state,
# unless rt_token is set. Nothing here is created unless crm_kind is rt. The adapter's other
# keys (custom field names, priorities, statuses, time zone) keep their defaults or are set
# through extra_env (CASESYNC_CRM__RT__*).

variable "rt_base_url" {
  description = "The RT web root, e.g. https://rt.example.com (crm.rt.base_url); REST2 is under {base_url}/REST/2.0. Required when crm_kind is rt."
  type        = string
  default     = null

  validation {
    condition     = var.crm_kind != "rt" || can(regex("^https?://[^/]+", var.rt_base_url))
    error_message = "rt_base_url must be an http(s) URL (crm_kind is rt)."
  }
}

variable "rt_user" {
  description = "casesync's own RT user (crm.rt.user): only its comments and attachments count as mirrors (docs/INVARIANTS.md#no-spoofing); checked at start-up against the token. Required when crm_kind is rt."
  type        = string
  default     = null

  validation {
    condition     = var.crm_kind != "rt" || length(trimspace(coalesce(var.rt_user, " "))) > 0
    error_message = "rt_user must not be empty (crm_kind is rt)."
  }
}

variable "rt_queue" {
  description = "The RT queue cases are created and searched in (crm.rt.queue). Required when crm_kind is rt."
  type        = string
  default     = null

  validation {
    condition     = var.crm_kind != "rt" || length(trimspace(coalesce(var.rt_queue, " "))) > 0
    error_message = "rt_queue must not be empty (crm_kind is rt)."
  }
}

variable "rt_token_secret_id" {
  description = "The Secret Manager secret holding the auth token of rt_user. Terraform creates the secret; its value is added by the operator (see README) or from rt_token."
  type        = string
  default     = "casesync-rt-token"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.rt_token_secret_id))
    error_message = "rt_token_secret_id must be a valid secret ID."
  }
}

variable "rt_token_version" {
  description = "The secret version the functions read: latest, or a version number to pin."
  type        = string
  default     = "latest"

  validation {
    condition     = can(regex("^(latest|[0-9]+)$", var.rt_token_version))
    error_message = "rt_token_version must be latest or a version number."
  }
}

variable "rt_token" {
  description = "Optional: the RT auth token itself, added as a secret version by Terraform. It then lands in the Terraform state; prefer adding the version with gcloud (README) and leave this null."
  type        = string
  default     = null
  sensitive   = true
}

resource "google_secret_manager_secret" "rt_token" {
  count     = var.crm_kind == "rt" ? 1 : 0
  project   = var.project_id
  secret_id = var.rt_token_secret_id

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "rt_token" {
  # Whether a token was given is not itself secret; the token is.
  count = var.crm_kind == "rt" && nonsensitive(var.rt_token != null) ? 1 : 0

  secret      = google_secret_manager_secret.rt_token[0].id
  secret_data = var.rt_token
}

# Read access on this one secret only, not on the project's secrets.
resource "google_secret_manager_secret_iam_member" "runtime_reads_rt_token" {
  count     = var.crm_kind == "rt" ? 1 : 0
  project   = var.project_id
  secret_id = google_secret_manager_secret.rt_token[0].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime.member
}

locals {
  # What the functions that talk to RT read (the registry's `required_env` for rt).
  rt_env = tomap({
    CASESYNC_CRM__RT__BASE_URL = var.rt_base_url
    CASESYNC_CRM__RT__USER     = var.rt_user
    CASESYNC_CRM__RT__QUEUE    = var.rt_queue
  })
  # Its secret, for scripts/deploy.sh: created first, and its token added, before any
  # function needs it.
  rt_secret = {
    resource    = "google_secret_manager_secret.rt_token"
    id          = var.rt_token_secret_id
    token_given = nonsensitive(var.rt_token != null)
  }
  # Its secret, by Secret Manager reference only (the registry's `secret_env` for rt).
  rt_secret_env = {
    CASESYNC_CRM__RT__TOKEN = {
      secret  = one(google_secret_manager_secret.rt_token[*].secret_id)
      version = var.rt_token_version
    }
  }
}
