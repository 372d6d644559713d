# Every Google API the connector and this configuration use. Disabling an API on destroy
# could break other workloads in the project, so destroy leaves them on.

locals {
  apis = [
    "artifactregistry.googleapis.com",     # function images
    "cloudresourcemanager.googleapis.com", # project and organization IAM
    "cloudscheduler.googleapis.com",       # poll, cleanup and detect-outages triggers
    "cloudsupport.googleapis.com",         # the Cloud Support API v2 the functions call
    "firestore.googleapis.com",            # case mappings
    "iam.googleapis.com",                  # service accounts
    "logging.googleapis.com",              # structured logs
    "monitoring.googleapis.com",           # alert policies and the dashboard
    "pubsub.googleapis.com",               # sync topics, push subscriptions, dead letters
    "run.googleapis.com",                  # the functions
    "secretmanager.googleapis.com",        # the CRM credential
  ]
}

resource "google_project_service" "apis" {
  for_each = toset(local.apis)

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# The function images; scripts/deploy.sh creates this first, pushes, then applies the rest.
resource "google_artifact_registry_repository" "images" {
  project       = var.project_id
  location      = var.region
  repository_id = var.artifact_repository_id
  format        = "DOCKER"
  description   = "casesync function images (one per function, tagged with the git commit)"

  # Each deploy pushes seven images; keep the recent ones for rollback, drop the rest.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s" # 30 days
    }
  }

  depends_on = [google_project_service.apis]
}
