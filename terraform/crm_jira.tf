# The Jira adapter (crm_kind = "jira"): its variables, its secret and its environment. Each
# CRM adapter has a file like this one (docs/ADDING-A-CRM.md); the code's registry entry
# (shared::adapters::registry, `jira`) lists the same variables and environment, and the
# Terraform test holds the two together.
#
# The credential (docs/ARCHITECTURE.md#security) is the Jira API token of casesync's own
# Atlassian account, in Secret Manager. Terraform creates the secret and lets the runtime
# account read it; the value is added by the operator (README), so it never passes through
# Terraform state. Only when jira_api_token is set does Terraform add the version itself
# (then it IS in state). Nothing here is created unless crm_kind is jira.

variable "jira_base_url" {
  description = "The Jira site: https://{site}.atlassian.net (crm.jira.base_url). Required when crm_kind is jira."
  type        = string
  default     = null

  validation {
    condition     = var.crm_kind != "jira" || can(regex("^https://[^/]+", var.jira_base_url))
    error_message = "jira_base_url must be an https URL (crm_kind is jira)."
  }
}

variable "jira_email" {
  description = "The e-mail of casesync's own Atlassian account (crm.jira.email). It must be an account of its own: a person's account makes that person's comments look like mirrors (docs/INVARIANTS.md#own-identity). Required when crm_kind is jira."
  type        = string
  default     = null

  validation {
    condition     = var.crm_kind != "jira" || can(regex("^[^@\\s]+@[^@\\s]+$", var.jira_email))
    error_message = "jira_email must be an e-mail address (crm_kind is jira)."
  }
}

variable "jira_project_key" {
  description = "The Jira project cases are created and searched in, e.g. SUP (crm.jira.project_key). Required when crm_kind is jira."
  type        = string
  default     = null

  validation {
    condition     = var.crm_kind != "jira" || can(regex("^[A-Z][A-Z0-9_]+$", var.jira_project_key))
    error_message = "jira_project_key must be a Jira project key such as SUP (crm_kind is jira)."
  }
}

variable "jira_issue_type" {
  description = "The issue type of created cases, by name or id (crm.jira.issue_type); the Jira adapter requires it. Required when crm_kind is jira."
  type        = string
  default     = null

  validation {
    condition     = var.crm_kind != "jira" || length(trimspace(coalesce(var.jira_issue_type, " "))) > 0
    error_message = "jira_issue_type must not be empty (crm_kind is jira)."
  }
}

variable "jira_sync_flag_field" {
  description = "The custom field that flags a Jira case for sync, customfield_{n} (crm.jira.sync_flag_field). Required when crm_kind is jira."
  type        = string
  default     = null

  validation {
    condition     = var.crm_kind != "jira" || can(regex("^customfield_[0-9]+$", var.jira_sync_flag_field))
    error_message = "jira_sync_flag_field must be customfield_{n} (crm_kind is jira)."
  }
}

variable "jira_google_case_field" {
  description = "The single-line text custom field that holds the Google case name, customfield_{n} (crm.jira.google_case_field). Required when crm_kind is jira."
  type        = string
  default     = null

  validation {
    condition     = var.crm_kind != "jira" || can(regex("^customfield_[0-9]+$", var.jira_google_case_field))
    error_message = "jira_google_case_field must be customfield_{n} (crm_kind is jira)."
  }
}

variable "jira_api_token_secret_id" {
  description = "The Secret Manager secret holding the Jira API token of jira_email. Terraform creates the secret; its value is added by the operator (see README) or from jira_api_token."
  type        = string
  default     = "casesync-jira-api-token"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.jira_api_token_secret_id))
    error_message = "jira_api_token_secret_id must be a valid secret ID."
  }
}

variable "jira_api_token_version" {
  description = "The secret version the functions read: latest, or a version number to pin. A new version reaches the functions with their next revision (the next apply that changes them)."
  type        = string
  default     = "latest"

  validation {
    condition     = can(regex("^(latest|[0-9]+)$", var.jira_api_token_version))
    error_message = "jira_api_token_version must be latest or a version number."
  }
}

variable "jira_api_token" {
  description = "Optional: the Jira API token itself, added as a secret version by Terraform. It then lands in the Terraform state; prefer adding the version with gcloud (README) and leave this null."
  type        = string
  default     = null
  sensitive   = true
}

resource "google_secret_manager_secret" "jira_api_token" {
  count     = var.crm_kind == "jira" ? 1 : 0
  project   = var.project_id
  secret_id = var.jira_api_token_secret_id

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "jira_api_token" {
  # Whether a token was given is not itself secret; the token is.
  count = var.crm_kind == "jira" && nonsensitive(var.jira_api_token != null) ? 1 : 0

  secret      = google_secret_manager_secret.jira_api_token[0].id
  secret_data = var.jira_api_token
}

# Read access on this one secret only, not on the project's secrets.
resource "google_secret_manager_secret_iam_member" "runtime_reads_jira_api_token" {
  count     = var.crm_kind == "jira" ? 1 : 0
  project   = var.project_id
  secret_id = google_secret_manager_secret.jira_api_token[0].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime.member
}

locals {
  # What the functions that talk to Jira read (the registry's `required_env` for jira).
  jira_env = tomap({
    CASESYNC_CRM__JIRA__BASE_URL          = var.jira_base_url
    CASESYNC_CRM__JIRA__EMAIL             = var.jira_email
    CASESYNC_CRM__JIRA__PROJECT_KEY       = var.jira_project_key
    CASESYNC_CRM__JIRA__ISSUE_TYPE        = var.jira_issue_type
    CASESYNC_CRM__JIRA__SYNC_FLAG_FIELD   = var.jira_sync_flag_field
    CASESYNC_CRM__JIRA__GOOGLE_CASE_FIELD = var.jira_google_case_field
  })
  # Its secret, for scripts/deploy.sh: created first, and its token added, before any
  # function needs it.
  jira_secret = {
    resource    = "google_secret_manager_secret.jira_api_token"
    id          = var.jira_api_token_secret_id
    token_given = nonsensitive(var.jira_api_token != null)
  }
  # Its secret, by Secret Manager reference only (the registry's `secret_env` for jira).
  jira_secret_env = {
    CASESYNC_CRM__JIRA__API_TOKEN = {
      secret  = one(google_secret_manager_secret.jira_api_token[*].secret_id)
      version = var.jira_api_token_version
    }
  }
}
