# The scheduled triggers (docs/ARCHITECTURE.md#exact-numbers). Schedules and retry settings are literals equal
# to the `SchedulerRetry` constants in `shared::retry_policy`; tests/integration/terraform.rs
# fails when they drift. Each job calls its service with an OIDC token of its own invoker
# account, for the audience the service's shim expects.
#
# A job's attempt_deadline is how long Scheduler waits for one attempt; the service's Cloud
# Run timeout (run.tf) is no longer, so an attempt never outlives the wait for it.

# "A few times within the first minute, then expire": 3 retries within 60 s.
resource "google_cloud_scheduler_job" "poll_google" {
  project          = var.project_id
  region           = var.region
  name             = "poll-google"
  description      = "casesync: poll the Cloud Support API for updated cases (POLL_GOOGLE_JOB)"
  schedule         = "* * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "120s"
  paused           = var.scheduler_paused

  retry_config {
    retry_count          = 3
    min_backoff_duration = "5s"
    max_backoff_duration = "20s"
    max_retry_duration   = "60s"
  }

  http_target {
    http_method = "POST"
    uri         = local.service_url["poll-google"]

    oidc_token {
      service_account_email = google_service_account.invoker["poll-google"].email
      audience              = local.service_url["poll-google"]
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.poll_google_invoker]
}

resource "google_cloud_scheduler_job" "poll_company" {
  project          = var.project_id
  region           = var.region
  name             = "poll-company"
  description      = "casesync: poll the CRM for updated, sync-flagged cases (POLL_COMPANY_JOB)"
  schedule         = "* * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "120s"
  paused           = var.scheduler_paused

  retry_config {
    retry_count          = 3
    min_backoff_duration = "5s"
    max_backoff_duration = "20s"
    max_retry_duration   = "60s"
  }

  http_target {
    http_method = "POST"
    uri         = local.service_url["poll-company"]

    oidc_token {
      service_account_email = google_service_account.invoker["poll-company"].email
      audience              = local.service_url["poll-company"]
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.poll_company_invoker]
}

# "A few times within the first 5 minutes": 3 retries within 300 s. detect-outages answers
# 5xx while an outage lasts, so these retries also re-check it.
resource "google_cloud_scheduler_job" "detect_outages" {
  project          = var.project_id
  region           = var.region
  name             = "detect-outages"
  description      = "casesync: post outage and recovery comments, re-enqueue lagging cases (DETECT_OUTAGES_JOB)"
  schedule         = "*/5 * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "180s"
  paused           = var.scheduler_paused

  retry_config {
    retry_count          = 3
    min_backoff_duration = "30s"
    max_backoff_duration = "120s"
    max_retry_duration   = "300s"
  }

  http_target {
    http_method = "POST"
    uri         = local.service_url["detect-outages"]

    oidc_token {
      service_account_email = google_service_account.invoker["detect-outages"].email
      audience              = local.service_url["detect-outages"]
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.detect_outages_invoker]
}

# "Exponential backoff for up to 24 hours": 5 retries, 60..3600 s, within 86400 s.
resource "google_cloud_scheduler_job" "cleanup_case_mappings" {
  project          = var.project_id
  region           = var.region
  name             = "cleanup-case-mappings"
  description      = "casesync: delete mappings of cases closed for 30 days (CLEANUP_JOB)"
  schedule         = "0 3 * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "1800s"
  paused           = var.scheduler_paused

  retry_config {
    retry_count          = 5
    min_backoff_duration = "60s"
    max_backoff_duration = "3600s"
    max_retry_duration   = "86400s"
  }

  http_target {
    http_method = "POST"
    uri         = local.service_url["cleanup-case-mappings"]

    oidc_token {
      service_account_email = google_service_account.invoker["cleanup-case-mappings"].email
      audience              = local.service_url["cleanup-case-mappings"]
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.cleanup_case_mappings_invoker]
}
