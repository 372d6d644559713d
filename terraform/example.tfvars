# Copy to terraform/terraform.tfvars (ignored by git) and fill in; scripts/deploy.sh reads it
# and passes image_tag itself. Only the first block is required.

project_id      = "my-casesync-project"
region          = "europe-west1"
organization_id = "123456789012"

google_parent            = "organizations/123456789012"
google_classification_id = "100152"

# The CRM: crm_kind (jira by default, or rt) and that adapter's variables
# (terraform/crm_{kind}.tf); only the chosen kind's are read.
crm_kind = "jira"

jira_base_url          = "https://example.atlassian.net"
jira_email             = "casesync@example.com"
jira_project_key       = "SUP"
jira_issue_type        = "Service Request"
jira_sync_flag_field   = "customfield_10100"
jira_google_case_field = "customfield_10101"

# Request Tracker instead (crm_kind = "rt"); its token goes into the secret casesync-rt-token.
# rt_base_url = "https://rt.example.com"
# rt_user     = "casesync"
# rt_queue    = "GoogleSupport"

# --- Optional (defaults shown where they differ from leaving the line out) ---

# google_create_parent        = "projects/my-support-project"
# google_extra_own_identities = []
# firestore_database          = "casesync"
# firestore_location          = "eur3"
# max_instances               = { "sync-google-to-company" = 10, "sync-company-to-google" = 10 }
# max_concurrency             = { "sync-google-to-company" = 8 }
# min_instances               = { "poll-google" = 1 }
# notification_channels       = ["projects/my-casesync-project/notificationChannels/1234567890"]
# extra_env                   = { CASESYNC_SYNC__LOOKUP_LAG = "15m" }
# ingress                     = "INGRESS_TRAFFIC_INTERNAL_ONLY"
# labels                      = { team = "support-tools" }
