# What scripts/deploy.sh and an operator need after apply.

output "region" {
  description = "The region everything regional runs in."
  value       = var.region
}

output "image_prefix" {
  description = "Push the function images here as {image_prefix}/{function}:{image_tag} (scripts/deploy.sh does)."
  value       = local.image_prefix
}

output "service_urls" {
  description = "The URL of each Cloud Run service; also each trigger's OIDC audience."
  value       = local.service_url
}

output "replay_job" {
  description = "The Cloud Run job that replays dead letters: gcloud run jobs execute <name> --region <region>."
  value       = google_cloud_run_v2_job.replay_dead_letters.name
}

output "runtime_service_account" {
  description = "The e-mail every function runs as: casesync's identity toward the Cloud Support API (google.own_identities)."
  value       = google_service_account.runtime.email
}

output "invoker_service_accounts" {
  description = "The invoker account of each function's trigger."
  value       = { for f, sa in google_service_account.invoker : f => sa.email }
}

output "topics" {
  description = "The sync topics and their dead-letter topics."
  value = {
    google_case_updates              = google_pubsub_topic.google_case_updates.id
    company_case_updates             = google_pubsub_topic.company_case_updates.id
    google_case_updates_dead_letter  = google_pubsub_topic.google_case_updates_dead_letter.id
    company_case_updates_dead_letter = google_pubsub_topic.company_case_updates_dead_letter.id
  }
}

output "dead_letter_subscriptions" {
  description = "The pull subscriptions the replay job reads."
  value = [
    google_pubsub_subscription.google_case_updates_dead_letter.id,
    google_pubsub_subscription.company_case_updates_dead_letter.id,
  ]
}

output "firestore_database" {
  description = "casesync's Firestore database (CASESYNC_FIRESTORE__DATABASE)."
  value       = google_firestore_database.casesync.name
}

output "jira_api_token_secret" {
  description = "The secret to add the Jira API token to: gcloud secrets versions add <id> --data-file=- (null unless crm_kind is jira)."
  value       = one(google_secret_manager_secret.jira_api_token[*].secret_id)
}

output "rt_token_secret" {
  description = "The secret to add the RT auth token to: gcloud secrets versions add <id> --data-file=- (null unless crm_kind is rt)."
  value       = one(google_secret_manager_secret.rt_token[*].secret_id)
}

output "dashboard" {
  description = "The monitoring dashboard's resource ID."
  value       = google_monitoring_dashboard.casesync.id
}
