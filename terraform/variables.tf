# Inputs. Required: where to deploy (project, region, organization), which image to run
# (image_tag), what to poll on the Google side. How to reach the CRM is the adapter's own
# file, terraform/crm_{kind}.tf: its variables are required when crm_kind names it.
# Everything else has a default an operator can keep.

# ---------------------------------------------------------------------------------------
# Required
# ---------------------------------------------------------------------------------------

variable "project_id" {
  description = "The Google Cloud project casesync runs in (Cloud Run, Pub/Sub, Scheduler, Firestore, Secret Manager)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6-30 lowercase letters, digits and hyphens), not a project number or name."
  }
}

variable "region" {
  description = "The region of the Cloud Run services, the Scheduler jobs, the Artifact Registry repository and (by default) the Firestore database, e.g. europe-west1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1 or us-central1."
  }
}

variable "organization_id" {
  description = "The numeric ID of the organization whose support cases casesync syncs. The runtime account is granted Tech Support Editor and Organization Viewer there (docs/ARCHITECTURE.md#security)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+$", var.organization_id))
    error_message = "organization_id must be the numeric organization ID (gcloud organizations list), without the organizations/ prefix."
  }
}

variable "image_tag" {
  description = "The tag of the function images to deploy (scripts/deploy.sh passes the git commit). A fixed tag, not latest, so every apply says exactly which build runs."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a valid container image tag."
  }
}

variable "google_parent" {
  description = "The organization or project whose cases are polled: organizations/{id} or projects/{id} (google.parent)."
  type        = string

  validation {
    condition     = can(regex("^(organizations|projects)/[^/]+$", var.google_parent))
    error_message = "google_parent must be organizations/{id} or projects/{id}."
  }
}

variable "google_classification_id" {
  description = "The case classification of the Google cases casesync creates for CRM cases (google.classification_id; checked at start-up with caseClassifications.search)."
  type        = string

  validation {
    condition     = length(trimspace(var.google_classification_id)) > 0
    error_message = "google_classification_id must not be empty."
  }
}

# ---------------------------------------------------------------------------------------
# Optional: Google side
# ---------------------------------------------------------------------------------------

variable "google_create_parent" {
  description = "Where Google cases for CRM cases are created (google.create_parent): organizations/{id} or projects/{id}. Null: google_parent."
  type        = string
  default     = null

  validation {
    condition     = var.google_create_parent == null || can(regex("^(organizations|projects)/[^/]+$", var.google_create_parent))
    error_message = "google_create_parent must be organizations/{id} or projects/{id}."
  }
}

variable "google_extra_own_identities" {
  description = "Further Google e-mails whose comments count as casesync's own (google.own_identities). The runtime service account is always included."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.google_extra_own_identities : can(regex("^[^@\\s]+@[^@\\s]+$", e))])
    error_message = "google_extra_own_identities must hold e-mail addresses."
  }
}

# ---------------------------------------------------------------------------------------
# CRM side: which adapter (its own variables are in terraform/crm_{kind}.tf)
# ---------------------------------------------------------------------------------------

variable "crm_kind" {
  description = "Which CRM adapter runs (crm.kind): jira or rt (Request Tracker). Each has its own variables and secret, in terraform/crm_{kind}.tf; only those of this kind are used."
  type        = string
  default     = "jira"

  validation {
    condition     = contains(["jira", "rt"], var.crm_kind)
    error_message = "crm_kind must be one of: jira, rt."
  }
}

# ---------------------------------------------------------------------------------------
# Optional: images, scaling, networking
# ---------------------------------------------------------------------------------------

variable "artifact_repository_id" {
  description = "The Artifact Registry (Docker) repository Terraform creates for the function images."
  type        = string
  default     = "casesync"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.artifact_repository_id))
    error_message = "artifact_repository_id must be lowercase letters, digits and hyphens."
  }
}

variable "image_prefix" {
  description = "Where the images are pulled from, without the trailing /{function}:{tag}. Null: the repository Terraform creates, {region}-docker.pkg.dev/{project_id}/{artifact_repository_id}."
  type        = string
  default     = null
}

variable "min_instances" {
  description = "Minimum instances per Cloud Run service, keyed by function name; functions left out keep the defaults (0 for all: every trigger tolerates a cold start)."
  type        = map(number)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.min_instances : contains(local.http_functions, k) && v >= 0 && floor(v) == v])
    error_message = "min_instances keys must be HTTP function names (poll-google, poll-company, sync-google-to-company, sync-company-to-google, cleanup-case-mappings, detect-outages) and values whole numbers >= 0."
  }
}

variable "max_instances" {
  description = "Maximum instances per Cloud Run service, keyed by function name; functions left out keep the defaults (sync services 5, the others 1, so scheduled runs do not overlap)."
  type        = map(number)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.max_instances : contains(local.http_functions, k) && v >= 1 && floor(v) == v])
    error_message = "max_instances keys must be HTTP function names and values whole numbers >= 1."
  }
}

variable "max_concurrency" {
  description = "Requests one instance serves at once (max_instance_request_concurrency), keyed by function name; functions left out keep the defaults (sync services 8, the others 1)."
  type        = map(number)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.max_concurrency : contains(local.http_functions, k) && v >= 1 && v <= 1000 && floor(v) == v])
    error_message = "max_concurrency keys must be HTTP function names and values whole numbers from 1 to 1000."
  }
}

variable "container_cpu" {
  description = "CPU limit of every function container."
  type        = string
  default     = "1"
}

variable "container_memory" {
  description = "Memory limit of every function container. Attachments stream (docs/INVARIANTS.md#attachment-limits), so memory does not grow with file size."
  type        = string
  default     = "512Mi"
}

variable "ingress" {
  description = "Ingress of the Cloud Run services. Internal-only still admits Pub/Sub push and Cloud Scheduler of the same project; every request must also carry its invoker's OIDC token."
  type        = string
  default     = "INGRESS_TRAFFIC_INTERNAL_ONLY"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "extra_env" {
  description = "Further CASESYNC_* settings for every function, e.g. { CASESYNC_SYNC__LOOKUP_LAG = \"15m\" } (README lists the keys). Not for secrets, and not for the variables Terraform sets itself."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([for k in keys(var.extra_env) : can(regex("^CASESYNC_[A-Z0-9_]+$", k)) && !contains([
      "CASESYNC_CRM__JIRA__API_TOKEN", "CASESYNC_CRM__JIRA__OAUTH_TOKEN", "CASESYNC_CRM__RT__TOKEN",
      "CASESYNC_SHIM__AUDIENCE", "CASESYNC_SHIM__INVOKER", "CASESYNC_SHIM__VERIFY_TOKENS",
    ], k)])
    error_message = "extra_env keys must be CASESYNC_* names; secrets come from Secret Manager, and the token check (CASESYNC_SHIM__*) is not overridable."
  }
}

variable "scheduler_paused" {
  description = "Pause every Cloud Scheduler job (maintenance); the services stay deployed."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------
# Optional: data, operations
# ---------------------------------------------------------------------------------------

variable "firestore_database" {
  description = "The name of casesync's own Native-mode Firestore database (docs/ARCHITECTURE.md#production-topology)."
  type        = string
  default     = "casesync"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.firestore_database))
    error_message = "firestore_database must be 4-63 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "firestore_location" {
  description = "The Firestore location, a region or a multi-region such as eur3 or nam5. Null: region."
  type        = string
  default     = null
}

variable "firestore_delete_protection" {
  description = "Protect the Firestore database (the case mappings) from deletion; terraform destroy then fails on it until this is false."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Cloud Run deletion protection of the services and the job. They hold no data, so off by default."
  type        = bool
  default     = false
}

variable "notification_channels" {
  description = "Monitoring notification channel IDs (projects/{p}/notificationChannels/{id}) the alert policies notify. Empty: the alerts still open incidents in the console."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "notification_channels must be full channel IDs: projects/{project}/notificationChannels/{id}."
  }
}

variable "labels" {
  description = "Extra labels on every resource that takes labels (app = casesync is always set)."
  type        = map(string)
  default     = {}
}
