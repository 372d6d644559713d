# What an operator watches (docs/ARCHITECTURE.md#production-topology): an alert while dead letters wait, an alert
# while detect-outages reports an outage, and one dashboard with throughput, errors, dead
# letters and outage state. Alerts notify var.notification_channels (none by default: the
# incidents still open in the console).

locals {
  # Monitoring filter fragments: `one_of(...)` over quoted names.
  dead_letter_subscription_filter = join(", ", [for s in values(local.dead_letter_subscriptions) : "\"${s}\""])
  push_subscription_filter        = join(", ", [for s in values(local.push_subscriptions) : "\"${s}\""])
  sync_service_filter             = join(", ", [for f in local.push_functions : "\"${f}\""])
  service_filter                  = join(", ", [for f in local.http_functions : "\"${f}\""])
}

# A message in a dead-letter subscription needs a look: it either failed permanently or
# exhausted 100 deliveries. Undelivered messages are sampled every minute; any one opens
# the incident.
resource "google_monitoring_alert_policy" "dead_letters" {
  project      = var.project_id
  display_name = "casesync: dead-lettered sync messages waiting"
  combiner     = "OR"
  severity     = "WARNING"

  conditions {
    display_name = "Dead-letter subscription is not empty"

    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.label.subscription_id = one_of(${local.dead_letter_subscription_filter})"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "casesync: dead letters waiting"
    content   = <<-EOT
      Sync messages are waiting in a casesync dead-letter subscription
      (`casesync-google-case-updates-dead-letter-replay` or `casesync-company-case-updates-dead-letter-replay`).
      Each carries its reason in the `casesync_error` attribute, or Pub/Sub's
      `CloudPubSubDeadLetterSource*` attributes after 100 failed deliveries.
      Read the reasons in the functions' logs, fix the cause, then replay:
      `gcloud run jobs execute replay-dead-letters --region ${var.region} --project ${var.project_id}`.
    EOT
  }

  notification_channels = var.notification_channels

  depends_on = [google_project_service.apis]
}

# detect-outages answers 5xx while any case has not synced within its tolerance (docs/ARCHITECTURE.md#detect-outages),
# and also when it cannot run at all. Either way a person should look.
resource "google_monitoring_alert_policy" "outage_detected" {
  project      = var.project_id
  display_name = "casesync: sync outage detected"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = "detect-outages answers 5xx"

    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND resource.label.service_name = \"detect-outages\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.label.response_code_class = \"5xx\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  # detect-outages runs every 5 minutes: 15 minutes without a 5xx means it recovered.
  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "casesync: sync outage"
    content   = <<-EOT
      casesync's detect-outages reports that cases have not synced within their tolerance
      (or that it cannot run). The affected cases got an outage comment on each side; they get
      "Syncing has resumed." once they catch up. Look at the ERROR logs of the casesync
      services (poll-google, poll-company, sync-*) for the cause: CRM or Cloud Support API
      credentials (401/403), quota, or a failing dependency.
    EOT
  }

  notification_channels = var.notification_channels

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_dashboard" "casesync" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "casesync"
    mosaicLayout = {
      columns = 48
      tiles = [
        {
          width = 24, height = 16
          widget = {
            title = "Sync throughput (successful syncs/s by service)"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.label.response_code_class = \"2xx\" AND resource.label.service_name = one_of(${local.sync_service_filter})"
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = "ALIGN_RATE"
                      crossSeriesReducer = "REDUCE_SUM"
                      groupByFields      = ["resource.label.service_name"]
                    }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 24, width = 24, height = 16
          widget = {
            title = "Errors (5xx/s by service; sync retries and outages)"
            xyChart = {
              dataSets = [{
                plotType = "STACKED_BAR"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.label.response_code_class = \"5xx\" AND resource.label.service_name = one_of(${local.service_filter})"
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = "ALIGN_RATE"
                      crossSeriesReducer = "REDUCE_SUM"
                      groupByFields      = ["resource.label.service_name"]
                    }
                  }
                }
              }]
            }
          }
        },
        {
          yPos = 16, width = 24, height = 16
          widget = {
            title = "Dead letters waiting (by subscription)"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.label.subscription_id = one_of(${local.dead_letter_subscription_filter})"
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = "ALIGN_MAX"
                      crossSeriesReducer = "REDUCE_SUM"
                      groupByFields      = ["resource.label.subscription_id"]
                    }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 24, yPos = 16, width = 24, height = 16
          widget = {
            title = "Outage state (detect-outages 5xx per run: > 0 = outage)"
            xyChart = {
              dataSets = [{
                plotType = "STACKED_BAR"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = "resource.type = \"cloud_run_revision\" AND resource.label.service_name = \"detect-outages\" AND metric.type = \"run.googleapis.com/request_count\""
                    aggregation = {
                      alignmentPeriod    = "300s"
                      perSeriesAligner   = "ALIGN_SUM"
                      crossSeriesReducer = "REDUCE_SUM"
                      groupByFields      = ["metric.label.response_code_class"]
                    }
                  }
                }
              }]
            }
          }
        },
        {
          yPos = 32, width = 24, height = 16
          widget = {
            title = "Sync backlog (undelivered messages by push subscription)"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.label.subscription_id = one_of(${local.push_subscription_filter})"
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = "ALIGN_MAX"
                      crossSeriesReducer = "REDUCE_SUM"
                      groupByFields      = ["resource.label.subscription_id"]
                    }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 24, yPos = 32, width = 24, height = 16
          widget = {
            title = "Oldest unacked sync message (seconds)"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.label.subscription_id = one_of(${local.push_subscription_filter})"
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = "ALIGN_MAX"
                      crossSeriesReducer = "REDUCE_MAX"
                      groupByFields      = ["resource.label.subscription_id"]
                    }
                  }
                }
              }]
            }
          }
        },
      ]
    }
  })

  depends_on = [google_project_service.apis]
}
