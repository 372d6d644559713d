# The functions (docs/ARCHITECTURE.md#production-topology): six Cloud Run services, each reachable only with an OIDC token
# of its own trigger's invoker account, and the replay tool as a Cloud Run job. All run as
# the one runtime account (docs/INVARIANTS.md#own-identity).
#
# Each service sets exactly the environment its function reads at start-up
# (`shared::deploy::required_env`). The CRM adapter's variables come from its file,
# terraform/crm_{kind}.tf (local.crm_env, local.crm_secret_env, chosen by crm_kind); its
# token comes from Secret Manager, and only the functions that talk to the CRM get it.
# Environment names are literal, here or in those locals, so that the Terraform test can
# compare them with the code for every kind; `extra_env` adds optional settings to every
# function.

# poll-google: every minute (Cloud Scheduler): searches the Cloud Support API for updated
# cases and enqueues one sync per case.
resource "google_cloud_run_v2_service" "poll_google" {
  project             = var.project_id
  location            = var.region
  name                = "poll-google"
  ingress             = var.ingress
  deletion_protection = var.deletion_protection
  labels              = { function = "poll-google" }

  template {
    # timeout = POLL_GOOGLE_JOB.attempt_deadline: give up no later than Scheduler stops waiting.
    service_account                  = google_service_account.runtime.email
    timeout                          = "120s"
    max_instance_request_concurrency = local.max_concurrency["poll-google"]

    scaling {
      min_instance_count = local.min_instances["poll-google"]
      max_instance_count = local.max_instances["poll-google"]
    }

    containers {
      image = local.image["poll-google"]

      resources {
        limits            = { cpu = var.container_cpu, memory = var.container_memory }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      startup_probe {
        http_get {
          path = "/health"
        }
      }

      env {
        name  = "CASESYNC_FIRESTORE__PROJECT"
        value = var.project_id
      }
      env {
        name  = "CASESYNC_FIRESTORE__DATABASE"
        value = google_firestore_database.casesync.name
      }
      env {
        name  = "CASESYNC_GOOGLE__PARENT"
        value = var.google_parent
      }
      env {
        name  = "CASESYNC_GOOGLE__CREATE_PARENT"
        value = local.google_create_parent
      }
      env {
        name  = "CASESYNC_GOOGLE__CLASSIFICATION_ID"
        value = var.google_classification_id
      }
      env {
        name  = "CASESYNC_GOOGLE__OWN_IDENTITIES"
        value = local.google_own_identities
      }
      env {
        name  = "CASESYNC_CRM__KIND"
        value = var.crm_kind
      }
      env {
        name  = "CASESYNC_PUBSUB__PROJECT"
        value = var.project_id
      }
      env {
        name  = "CASESYNC_SHIM__AUDIENCE"
        value = local.service_url["poll-google"]
      }
      env {
        name  = "CASESYNC_SHIM__INVOKER"
        value = google_service_account.invoker["poll-google"].email
      }
      dynamic "env" {
        for_each = var.extra_env
        content {
          name  = env.key
          value = env.value
        }
      }
    }
  }

  # A revision that cannot read its secret or data fails to start: grant first.
  depends_on = [
    google_project_iam_member.runtime_datastore_user,
    google_project_iam_member.runtime_log_writer,
    google_organization_iam_member.runtime_support_editor,
    google_organization_iam_member.runtime_organization_viewer,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "poll_google_invoker" {
  project  = var.project_id
  location = google_cloud_run_v2_service.poll_google.location
  name     = google_cloud_run_v2_service.poll_google.name
  role     = "roles/run.invoker"
  member   = google_service_account.invoker["poll-google"].member
}

# poll-company: every minute (Cloud Scheduler): searches the CRM for updated, sync-flagged
# cases and enqueues one sync per case.
resource "google_cloud_run_v2_service" "poll_company" {
  project             = var.project_id
  location            = var.region
  name                = "poll-company"
  ingress             = var.ingress
  deletion_protection = var.deletion_protection
  labels              = { function = "poll-company" }

  template {
    # timeout = POLL_COMPANY_JOB.attempt_deadline: give up no later than Scheduler stops waiting.
    service_account                  = google_service_account.runtime.email
    timeout                          = "120s"
    max_instance_request_concurrency = local.max_concurrency["poll-company"]

    scaling {
      min_instance_count = local.min_instances["poll-company"]
      max_instance_count = local.max_instances["poll-company"]
    }

    containers {
      image = local.image["poll-company"]

      resources {
        limits            = { cpu = var.container_cpu, memory = var.container_memory }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      startup_probe {
        http_get {
          path = "/health"
        }
      }

      env {
        name  = "CASESYNC_FIRESTORE__PROJECT"
        value = var.project_id
      }
      env {
        name  = "CASESYNC_FIRESTORE__DATABASE"
        value = google_firestore_database.casesync.name
      }
      env {
        name  = "CASESYNC_GOOGLE__PARENT"
        value = var.google_parent
      }
      env {
        name  = "CASESYNC_GOOGLE__CREATE_PARENT"
        value = local.google_create_parent
      }
      env {
        name  = "CASESYNC_GOOGLE__CLASSIFICATION_ID"
        value = var.google_classification_id
      }
      env {
        name  = "CASESYNC_GOOGLE__OWN_IDENTITIES"
        value = local.google_own_identities
      }
      env {
        name  = "CASESYNC_CRM__KIND"
        value = var.crm_kind
      }
      # The CRM adapter's own settings (terraform/crm_{kind}.tf, chosen by crm_kind), and
      # its credential from Secret Manager.
      dynamic "env" {
        for_each = local.crm_env
        content {
          name  = env.key
          value = env.value
        }
      }
      dynamic "env" {
        for_each = local.crm_secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value.secret
              version = env.value.version
            }
          }
        }
      }
      env {
        name  = "CASESYNC_PUBSUB__PROJECT"
        value = var.project_id
      }
      env {
        name  = "CASESYNC_SHIM__AUDIENCE"
        value = local.service_url["poll-company"]
      }
      env {
        name  = "CASESYNC_SHIM__INVOKER"
        value = google_service_account.invoker["poll-company"].email
      }
      dynamic "env" {
        for_each = var.extra_env
        content {
          name  = env.key
          value = env.value
        }
      }
    }
  }

  # A revision that cannot read its secret or data fails to start: grant first.
  depends_on = [
    google_project_iam_member.runtime_datastore_user,
    google_project_iam_member.runtime_log_writer,
    google_organization_iam_member.runtime_support_editor,
    google_organization_iam_member.runtime_organization_viewer,
    google_secret_manager_secret_iam_member.runtime_reads_jira_api_token,
    google_secret_manager_secret_version.jira_api_token,
    google_secret_manager_secret_iam_member.runtime_reads_rt_token,
    google_secret_manager_secret_version.rt_token,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "poll_company_invoker" {
  project  = var.project_id
  location = google_cloud_run_v2_service.poll_company.location
  name     = google_cloud_run_v2_service.poll_company.name
  role     = "roles/run.invoker"
  member   = google_service_account.invoker["poll-company"].member
}

# sync-google-to-company: Pub/Sub push from casesync-google-case-updates: mirrors one Google case
# into the CRM.
resource "google_cloud_run_v2_service" "sync_google_to_company" {
  project             = var.project_id
  location            = var.region
  name                = "sync-google-to-company"
  ingress             = var.ingress
  deletion_protection = var.deletion_protection
  labels              = { function = "sync-google-to-company" }

  template {
    # timeout = PRODUCTION_QUEUE.request_timeout: under the ack deadline; also a sync's lease.
    service_account                  = google_service_account.runtime.email
    timeout                          = "540s"
    max_instance_request_concurrency = local.max_concurrency["sync-google-to-company"]

    scaling {
      min_instance_count = local.min_instances["sync-google-to-company"]
      max_instance_count = local.max_instances["sync-google-to-company"]
    }

    containers {
      image = local.image["sync-google-to-company"]

      resources {
        limits            = { cpu = var.container_cpu, memory = var.container_memory }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      startup_probe {
        http_get {
          path = "/health"
        }
      }

      env {
        name  = "CASESYNC_FIRESTORE__PROJECT"
        value = var.project_id
      }
      env {
        name  = "CASESYNC_FIRESTORE__DATABASE"
        value = google_firestore_database.casesync.name
      }
      env {
        name  = "CASESYNC_GOOGLE__PARENT"
        value = var.google_parent
      }
      env {
        name  = "CASESYNC_GOOGLE__CREATE_PARENT"
        value = local.google_create_parent
      }
      env {
        name  = "CASESYNC_GOOGLE__CLASSIFICATION_ID"
        value = var.google_classification_id
      }
      env {
        name  = "CASESYNC_GOOGLE__OWN_IDENTITIES"
        value = local.google_own_identities
      }
      env {
        name  = "CASESYNC_CRM__KIND"
        value = var.crm_kind
      }
      # The CRM adapter's own settings (terraform/crm_{kind}.tf, chosen by crm_kind), and
      # its credential from Secret Manager.
      dynamic "env" {
        for_each = local.crm_env
        content {
          name  = env.key
          value = env.value
        }
      }
      dynamic "env" {
        for_each = local.crm_secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value.secret
              version = env.value.version
            }
          }
        }
      }
      env {
        name  = "CASESYNC_PUBSUB__PROJECT"
        value = var.project_id
      }
      env {
        name  = "CASESYNC_SHIM__AUDIENCE"
        value = local.service_url["sync-google-to-company"]
      }
      env {
        name  = "CASESYNC_SHIM__INVOKER"
        value = google_service_account.invoker["sync-google-to-company"].email
      }
      env {
        name  = "CASESYNC_SHIM__DEAD_LETTER_TOPIC"
        value = google_pubsub_topic.google_case_updates_dead_letter.id
      }
      dynamic "env" {
        for_each = var.extra_env
        content {
          name  = env.key
          value = env.value
        }
      }
    }
  }

  # A revision that cannot read its secret or data fails to start: grant first.
  depends_on = [
    google_project_iam_member.runtime_datastore_user,
    google_project_iam_member.runtime_log_writer,
    google_organization_iam_member.runtime_support_editor,
    google_organization_iam_member.runtime_organization_viewer,
    google_secret_manager_secret_iam_member.runtime_reads_jira_api_token,
    google_secret_manager_secret_version.jira_api_token,
    google_secret_manager_secret_iam_member.runtime_reads_rt_token,
    google_secret_manager_secret_version.rt_token,
    google_pubsub_topic_iam_member.runtime_publishes_dead_letters,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "sync_google_to_company_invoker" {
  project  = var.project_id
  location = google_cloud_run_v2_service.sync_google_to_company.location
  name     = google_cloud_run_v2_service.sync_google_to_company.name
  role     = "roles/run.invoker"
  member   = google_service_account.invoker["sync-google-to-company"].member
}

# sync-company-to-google: Pub/Sub push from casesync-company-case-updates: mirrors one CRM case
# into Google Cloud Support.
resource "google_cloud_run_v2_service" "sync_company_to_google" {
  project             = var.project_id
  location            = var.region
  name                = "sync-company-to-google"
  ingress             = var.ingress
  deletion_protection = var.deletion_protection
  labels              = { function = "sync-company-to-google" }

  template {
    # timeout = PRODUCTION_QUEUE.request_timeout: under the ack deadline; also a sync's lease.
    service_account                  = google_service_account.runtime.email
    timeout                          = "540s"
    max_instance_request_concurrency = local.max_concurrency["sync-company-to-google"]

    scaling {
      min_instance_count = local.min_instances["sync-company-to-google"]
      max_instance_count = local.max_instances["sync-company-to-google"]
    }

    containers {
      image = local.image["sync-company-to-google"]

      resources {
        limits            = { cpu = var.container_cpu, memory = var.container_memory }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      startup_probe {
        http_get {
          path = "/health"
        }
      }

      env {
        name  = "CASESYNC_FIRESTORE__PROJECT"
        value = var.project_id
      }
      env {
        name  = "CASESYNC_FIRESTORE__DATABASE"
        value = google_firestore_database.casesync.name
      }
      env {
        name  = "CASESYNC_GOOGLE__PARENT"
        value = var.google_parent
      }
      env {
        name  = "CASESYNC_GOOGLE__CREATE_PARENT"
        value = local.google_create_parent
      }
      env {
        name  = "CASESYNC_GOOGLE__CLASSIFICATION_ID"
        value = var.google_classification_id
      }
      env {
        name  = "CASESYNC_GOOGLE__OWN_IDENTITIES"
        value = local.google_own_identities
      }
      env {
        name  = "CASESYNC_CRM__KIND"
        value = var.crm_kind
      }
      # The CRM adapter's own settings (terraform/crm_{kind}.tf, chosen by crm_kind), and
      # its credential from Secret Manager.
      dynamic "env" {
        for_each = local.crm_env
        content {
          name  = env.key
          value = env.value
        }
      }
      dynamic "env" {
        for_each = local.crm_secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value.secret
              version = env.value.version
            }
          }
        }
      }
      env {
        name  = "CASESYNC_PUBSUB__PROJECT"
        value = var.project_id
      }
      env {
        name  = "CASESYNC_SHIM__AUDIENCE"
        value = local.service_url["sync-company-to-google"]
      }
      env {
        name  = "CASESYNC_SHIM__INVOKER"
        value = google_service_account.invoker["sync-company-to-google"].email
      }
      env {
        name  = "CASESYNC_SHIM__DEAD_LETTER_TOPIC"
        value = google_pubsub_topic.company_case_updates_dead_letter.id
      }
      dynamic "env" {
        for_each = var.extra_env
        content {
          name  = env.key
          value = env.value
        }
      }
    }
  }

  # A revision that cannot read its secret or data fails to start: grant first.
  depends_on = [
    google_project_iam_member.runtime_datastore_user,
    google_project_iam_member.runtime_log_writer,
    google_organization_iam_member.runtime_support_editor,
    google_organization_iam_member.runtime_organization_viewer,
    google_secret_manager_secret_iam_member.runtime_reads_jira_api_token,
    google_secret_manager_secret_version.jira_api_token,
    google_secret_manager_secret_iam_member.runtime_reads_rt_token,
    google_secret_manager_secret_version.rt_token,
    google_pubsub_topic_iam_member.runtime_publishes_dead_letters,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "sync_company_to_google_invoker" {
  project  = var.project_id
  location = google_cloud_run_v2_service.sync_company_to_google.location
  name     = google_cloud_run_v2_service.sync_company_to_google.name
  role     = "roles/run.invoker"
  member   = google_service_account.invoker["sync-company-to-google"].member
}

# cleanup-case-mappings: daily (Cloud Scheduler): deletes mappings of cases closed for 30
# days. Touches Firestore only.
resource "google_cloud_run_v2_service" "cleanup_case_mappings" {
  project             = var.project_id
  location            = var.region
  name                = "cleanup-case-mappings"
  ingress             = var.ingress
  deletion_protection = var.deletion_protection
  labels              = { function = "cleanup-case-mappings" }

  template {
    # timeout = CLEANUP_JOB.attempt_deadline.
    service_account                  = google_service_account.runtime.email
    timeout                          = "1800s"
    max_instance_request_concurrency = local.max_concurrency["cleanup-case-mappings"]

    scaling {
      min_instance_count = local.min_instances["cleanup-case-mappings"]
      max_instance_count = local.max_instances["cleanup-case-mappings"]
    }

    containers {
      image = local.image["cleanup-case-mappings"]

      resources {
        limits            = { cpu = var.container_cpu, memory = var.container_memory }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      startup_probe {
        http_get {
          path = "/health"
        }
      }

      env {
        name  = "CASESYNC_FIRESTORE__PROJECT"
        value = var.project_id
      }
      env {
        name  = "CASESYNC_FIRESTORE__DATABASE"
        value = google_firestore_database.casesync.name
      }
      env {
        name  = "CASESYNC_PUBSUB__PROJECT"
        value = var.project_id
      }
      env {
        # Each run acknowledges the dead letters of cases that have synced since.
        name = "CASESYNC_CLEANUP__DEAD_LETTER_SUBSCRIPTIONS"
        value = join(",", [
          google_pubsub_subscription.google_case_updates_dead_letter.id,
          google_pubsub_subscription.company_case_updates_dead_letter.id,
        ])
      }
      env {
        name  = "CASESYNC_SHIM__AUDIENCE"
        value = local.service_url["cleanup-case-mappings"]
      }
      env {
        name  = "CASESYNC_SHIM__INVOKER"
        value = google_service_account.invoker["cleanup-case-mappings"].email
      }
      dynamic "env" {
        for_each = var.extra_env
        content {
          name  = env.key
          value = env.value
        }
      }
    }
  }

  # A revision that cannot read its secret or data fails to start: grant first.
  depends_on = [
    google_project_iam_member.runtime_datastore_user,
    google_project_iam_member.runtime_log_writer,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "cleanup_case_mappings_invoker" {
  project  = var.project_id
  location = google_cloud_run_v2_service.cleanup_case_mappings.location
  name     = google_cloud_run_v2_service.cleanup_case_mappings.name
  role     = "roles/run.invoker"
  member   = google_service_account.invoker["cleanup-case-mappings"].member
}

# detect-outages: every 5 minutes (Cloud Scheduler): posts outage and recovery comments,
# re-enqueues lagging cases, and answers 5xx while an outage lasts so monitoring sees it.
resource "google_cloud_run_v2_service" "detect_outages" {
  project             = var.project_id
  location            = var.region
  name                = "detect-outages"
  ingress             = var.ingress
  deletion_protection = var.deletion_protection
  labels              = { function = "detect-outages" }

  template {
    # timeout = DETECT_OUTAGES_JOB.attempt_deadline.
    service_account                  = google_service_account.runtime.email
    timeout                          = "180s"
    max_instance_request_concurrency = local.max_concurrency["detect-outages"]

    scaling {
      min_instance_count = local.min_instances["detect-outages"]
      max_instance_count = local.max_instances["detect-outages"]
    }

    containers {
      image = local.image["detect-outages"]

      resources {
        limits            = { cpu = var.container_cpu, memory = var.container_memory }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      startup_probe {
        http_get {
          path = "/health"
        }
      }

      env {
        name  = "CASESYNC_FIRESTORE__PROJECT"
        value = var.project_id
      }
      env {
        name  = "CASESYNC_FIRESTORE__DATABASE"
        value = google_firestore_database.casesync.name
      }
      env {
        name  = "CASESYNC_GOOGLE__PARENT"
        value = var.google_parent
      }
      env {
        name  = "CASESYNC_GOOGLE__CREATE_PARENT"
        value = local.google_create_parent
      }
      env {
        name  = "CASESYNC_GOOGLE__CLASSIFICATION_ID"
        value = var.google_classification_id
      }
      env {
        name  = "CASESYNC_GOOGLE__OWN_IDENTITIES"
        value = local.google_own_identities
      }
      env {
        name  = "CASESYNC_CRM__KIND"
        value = var.crm_kind
      }
      # The CRM adapter's own settings (terraform/crm_{kind}.tf, chosen by crm_kind), and
      # its credential from Secret Manager.
      dynamic "env" {
        for_each = local.crm_env
        content {
          name  = env.key
          value = env.value
        }
      }
      dynamic "env" {
        for_each = local.crm_secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value.secret
              version = env.value.version
            }
          }
        }
      }
      env {
        name  = "CASESYNC_PUBSUB__PROJECT"
        value = var.project_id
      }
      env {
        name  = "CASESYNC_SHIM__AUDIENCE"
        value = local.service_url["detect-outages"]
      }
      env {
        name  = "CASESYNC_SHIM__INVOKER"
        value = google_service_account.invoker["detect-outages"].email
      }
      dynamic "env" {
        for_each = var.extra_env
        content {
          name  = env.key
          value = env.value
        }
      }
    }
  }

  # A revision that cannot read its secret or data fails to start: grant first.
  depends_on = [
    google_project_iam_member.runtime_datastore_user,
    google_project_iam_member.runtime_log_writer,
    google_organization_iam_member.runtime_support_editor,
    google_organization_iam_member.runtime_organization_viewer,
    google_secret_manager_secret_iam_member.runtime_reads_jira_api_token,
    google_secret_manager_secret_version.jira_api_token,
    google_secret_manager_secret_iam_member.runtime_reads_rt_token,
    google_secret_manager_secret_version.rt_token,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "detect_outages_invoker" {
  project  = var.project_id
  location = google_cloud_run_v2_service.detect_outages.location
  name     = google_cloud_run_v2_service.detect_outages.name
  role     = "roles/run.invoker"
  member   = google_service_account.invoker["detect-outages"].member
}

# replay-dead-letters: started by hand (`gcloud run jobs execute replay-dead-letters`, see
# README). Pulls the dead-letter subscriptions and republishes each message to its source
# topic, acking it only after the republish.
resource "google_cloud_run_v2_job" "replay_dead_letters" {
  project             = var.project_id
  location            = var.region
  name                = "replay-dead-letters"
  deletion_protection = var.deletion_protection
  labels              = { function = "replay-dead-letters" }

  template {
    task_count  = 1
    parallelism = 1

    template {
      service_account = google_service_account.runtime.email
      timeout         = "3600s"
      # A replay acks only what it republished, so running it again is safe; a failed run is
      # left for the operator to look at rather than retried blindly.
      max_retries = 0

      containers {
        image = local.image["replay-dead-letters"]

        resources {
          limits = { cpu = var.container_cpu, memory = var.container_memory }
        }

        env {
          name  = "CASESYNC_FIRESTORE__PROJECT"
          value = var.project_id
        }
        env {
          name  = "CASESYNC_FIRESTORE__DATABASE"
          value = google_firestore_database.casesync.name
        }
        env {
          name  = "CASESYNC_PUBSUB__PROJECT"
          value = var.project_id
        }
        env {
          name = "CASESYNC_REPLAY__SUBSCRIPTIONS"
          # Comma-separated: the replay tool's --subscriptions takes a list that way.
          value = join(",", [
            google_pubsub_subscription.google_case_updates_dead_letter.id,
            google_pubsub_subscription.company_case_updates_dead_letter.id,
          ])
        }
        dynamic "env" {
          for_each = var.extra_env
          content {
            name  = env.key
            value = env.value
          }
        }
      }
    }
  }

  depends_on = [
    google_project_iam_member.runtime_datastore_user,
    google_project_iam_member.runtime_log_writer,
    google_pubsub_subscription_iam_member.runtime_pulls_dead_letters,
  ]
}
