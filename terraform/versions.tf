# Terraform and provider versions. The provider pin matches the schema the offline test
# checks names against (terraform/provider-schema.json, extracted from provider 6.50.0):
# `~> 6.50` accepts 6.50 and later 6.x, never a 7.x that renames attributes.
terraform {
  # 1.9: variable validations below refer to locals and other variables.
  required_version = ">= 1.9.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.50"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  # Every resource that takes labels gets these, so the connector's resources are easy to
  # find and to attribute in billing.
  default_labels = merge({ app = "casesync" }, var.labels)
}
