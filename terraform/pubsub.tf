# The sync queues (docs/ARCHITECTURE.md#exact-numbers): one topic per direction, a push subscription to
# its sync service, and a dead-letter topic with a pull subscription the replay job reads.
#
# Every retry and dead-letter number here is a literal equal to
# `shared::retry_policy::PRODUCTION_QUEUE`; tests/integration/terraform.rs fails when they
# drift. Durations are whole seconds: 604800s = 7 d, 2678400s = 31 d.

# --- Topics --------------------------------------------------------------------------------

resource "google_pubsub_topic" "google_case_updates" {
  project = var.project_id
  name    = "casesync-google-case-updates"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "company_case_updates" {
  project = var.project_id
  name    = "casesync-company-case-updates"

  depends_on = [google_project_service.apis]
}

# Dead letters are kept 31 days on the topic (PRODUCTION_QUEUE.dead_letter_topic_retention),
# so a replay subscription created later can still seek back to them.
resource "google_pubsub_topic" "google_case_updates_dead_letter" {
  project                    = var.project_id
  name                       = "casesync-google-case-updates-dead-letter"
  message_retention_duration = "2678400s"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "company_case_updates_dead_letter" {
  project                    = var.project_id
  name                       = "casesync-company-case-updates-dead-letter"
  message_retention_duration = "2678400s"

  depends_on = [google_project_service.apis]
}

# --- Push subscriptions: the sync triggers -----------------------------------------------

# "Retry indefinitely with exponential backoff" of the seed, bounded: 100 deliveries at
# 10..600 s (about 16 h), then the dead-letter topic. The ack deadline (600 s) outlasts the
# service's request timeout (540 s), so Pub/Sub never redelivers a sync still running.
# Each is named after its function: the replay job finds a dead letter's source topic from
# the subscription Pub/Sub names in CloudPubSubDeadLetterSourceSubscription.
resource "google_pubsub_subscription" "sync_google_to_company" {
  project = var.project_id
  name    = "sync-google-to-company"
  topic   = google_pubsub_topic.google_case_updates.id

  ack_deadline_seconds       = 600
  message_retention_duration = "604800s"

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.google_case_updates_dead_letter.id
    max_delivery_attempts = 100
  }

  push_config {
    push_endpoint = local.service_url["sync-google-to-company"]

    oidc_token {
      service_account_email = google_service_account.invoker["sync-google-to-company"].email
      audience              = local.service_url["sync-google-to-company"]
    }
  }

  # Never expire for inactivity: a quiet week must not delete the trigger.
  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.sync_google_to_company_invoker,
    google_pubsub_topic_iam_member.pubsub_agent_publishes_dead_letters,
    google_service_account_iam_member.pubsub_agent_signs_as_push_invoker,
  ]
}

resource "google_pubsub_subscription" "sync_company_to_google" {
  project = var.project_id
  name    = "sync-company-to-google"
  topic   = google_pubsub_topic.company_case_updates.id

  ack_deadline_seconds       = 600
  message_retention_duration = "604800s"

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.company_case_updates_dead_letter.id
    max_delivery_attempts = 100
  }

  push_config {
    push_endpoint = local.service_url["sync-company-to-google"]

    oidc_token {
      service_account_email = google_service_account.invoker["sync-company-to-google"].email
      audience              = local.service_url["sync-company-to-google"]
    }
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.sync_company_to_google_invoker,
    google_pubsub_topic_iam_member.pubsub_agent_publishes_dead_letters,
    google_service_account_iam_member.pubsub_agent_signs_as_push_invoker,
  ]
}

# --- Dead-letter pull subscriptions: what the replay job reads ----------------------------

# Kept 7 days (PRODUCTION_QUEUE.dead_letter_subscription_retention); monitoring.tf alerts
# while either is not empty. The replay job acks a message only after republishing it.
resource "google_pubsub_subscription" "google_case_updates_dead_letter" {
  project = var.project_id
  name    = "casesync-google-case-updates-dead-letter-replay"
  topic   = google_pubsub_topic.google_case_updates_dead_letter.id

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "company_case_updates_dead_letter" {
  project = var.project_id
  name    = "casesync-company-case-updates-dead-letter-replay"
  topic   = google_pubsub_topic.company_case_updates_dead_letter.id

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

# --- Who may publish and pull -------------------------------------------------------------

locals {
  source_topics = {
    google  = google_pubsub_topic.google_case_updates.name
    company = google_pubsub_topic.company_case_updates.name
  }
  dead_letter_topics = {
    google  = google_pubsub_topic.google_case_updates_dead_letter.name
    company = google_pubsub_topic.company_case_updates_dead_letter.name
  }
  push_subscriptions = {
    google  = google_pubsub_subscription.sync_google_to_company.name
    company = google_pubsub_subscription.sync_company_to_google.name
  }
  dead_letter_subscriptions = {
    google  = google_pubsub_subscription.google_case_updates_dead_letter.name
    company = google_pubsub_subscription.company_case_updates_dead_letter.name
  }
}

# The Pub/Sub service agent moves a message that exhausted its deliveries: it publishes to
# the dead-letter topic and acks on the source subscription. Without both grants Pub/Sub
# keeps redelivering instead of dead-lettering.
resource "google_pubsub_topic_iam_member" "pubsub_agent_publishes_dead_letters" {
  for_each = local.dead_letter_topics

  project = var.project_id
  topic   = each.value
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_acks_source_subscriptions" {
  for_each = local.push_subscriptions

  project      = var.project_id
  subscription = each.value
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# The polls and detect-outages enqueue syncs; the replay job republishes dead letters.
resource "google_pubsub_topic_iam_member" "runtime_publishes" {
  for_each = local.source_topics

  project = var.project_id
  topic   = each.value
  role    = "roles/pubsub.publisher"
  member  = google_service_account.runtime.member
}

# The sync services' shim dead-letters a message it cannot process itself (docs/FAILURES.md#what-the-shim-answers).
resource "google_pubsub_topic_iam_member" "runtime_publishes_dead_letters" {
  for_each = local.dead_letter_topics

  project = var.project_id
  topic   = each.value
  role    = "roles/pubsub.publisher"
  member  = google_service_account.runtime.member
}

# The replay job pulls and acks dead letters; nothing else reads a subscription.
resource "google_pubsub_subscription_iam_member" "runtime_pulls_dead_letters" {
  for_each = local.dead_letter_subscriptions

  project      = var.project_id
  subscription = each.value
  role         = "roles/pubsub.subscriber"
  member       = google_service_account.runtime.member
}
