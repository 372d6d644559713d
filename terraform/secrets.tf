# The CRM credential (docs/ARCHITECTURE.md#security): the Jira API token of casesync's own Atlassian account, in
# Secret Manager. Terraform creates the secret and lets the runtime account read it; the
# value is added by the operator (README), so it never passes through Terraform state. Only
# when jira_api_token is set does Terraform add the version itself (then it IS in state).

resource "google_secret_manager_secret" "jira_api_token" {
  project   = var.project_id
  secret_id = var.jira_api_token_secret_id

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "jira_api_token" {
  # Whether a token was given is not itself secret; the token is.
  count = nonsensitive(var.jira_api_token != null) ? 1 : 0

  secret      = google_secret_manager_secret.jira_api_token.id
  secret_data = var.jira_api_token
}

# Read access on this one secret only, not on the project's secrets.
resource "google_secret_manager_secret_iam_member" "runtime_reads_jira_api_token" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.jira_api_token.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime.member
}
