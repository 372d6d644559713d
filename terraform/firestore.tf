# casesync's own named Native-mode database (docs/ARCHITECTURE.md#data-model): the case mappings, their key
# documents and the poll bookkeeping, kept apart from anything else in the project.

resource "google_firestore_database" "casesync" {
  project     = var.project_id
  name        = var.firestore_database
  location_id = coalesce(var.firestore_location, var.region)
  type        = "FIRESTORE_NATIVE"

  # The mappings are the connector's memory of which case is which: losing them means
  # duplicate counterparts. Deletion needs firestore_delete_protection = false first.
  delete_protection_state = var.firestore_delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy         = "DELETE"

  depends_on = [google_project_service.apis]
}

# Indexes come from firestore_indexes.json, which the store's author keeps next to the
# queries it serves (shared/src/adapters/firestore_store.rs). Today every query filters one
# field, served by Firestore's automatic single-field indexes, so `indexes` is empty and no
# composite index is created; the one field override exempts caseMappings.attachmentLedger
# from indexing (never queried; indexing a growing map costs writes and index entries).
locals {
  firestore_indexes = jsondecode(file("${path.module}/firestore_indexes.json"))
}

resource "google_firestore_index" "composite" {
  for_each = { for i, index in local.firestore_indexes.indexes : "${index.collectionGroup}-${i}" => index }

  project     = var.project_id
  database    = google_firestore_database.casesync.name
  collection  = each.value.collectionGroup
  query_scope = try(each.value.queryScope, "COLLECTION")

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = fields.value.fieldPath
      order        = try(fields.value.order, null)
      array_config = try(fields.value.arrayConfig, null)
    }
  }
}

resource "google_firestore_field" "overrides" {
  for_each = { for o in local.firestore_indexes.fieldOverrides : "${o.collectionGroup}.${o.fieldPath}" => o }

  project    = var.project_id
  database   = google_firestore_database.casesync.name
  collection = each.value.collectionGroup
  field      = each.value.fieldPath

  # An index_config without indexes turns indexing off for the field (and its subfields).
  index_config {
    dynamic "indexes" {
      for_each = each.value.indexes
      content {
        query_scope  = try(indexes.value.queryScope, null)
        order        = try(indexes.value.order, null)
        array_config = try(indexes.value.arrayConfig, null)
      }
    }
  }
}
