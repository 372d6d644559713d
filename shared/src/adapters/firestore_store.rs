//! The production `MappingStore`: mappings and the poll bookkeeping in a named Native-mode
//! Firestore database (docs/ARCHITECTURE.md#data-model). It passes the same contract suite as the embedded
//! SQLite store (`store_contract`), so the engine runs unchanged on either: one mapping per
//! key, one lease holder, fields owned by their writers.
//!
//! # Document layout
//!
//! - `caseMappings/{CaseMapping.id}`: the mapping as `CaseMapping` serialises it (camelCase,
//!   the seed's names: `googleCaseName`, `companyCaseID`, `resolvedAt`, …, plus
//!   `schemaVersion`). Every time is a Firestore timestamp (`lease.until` and the ledger's
//!   `attemptedAt` too); an unset one is stored as an explicit `null`, so that open mappings
//!   are found with `resolvedAt == null`. The document id is deterministic (docs/ARCHITECTURE.md#case-keys).
//! - `caseMappingKeys/{google-{number} | company-{id, sanitised}}`: `{mappingId, side, key,
//!   schemaVersion}`, one per key of a mapping, written in the mapping's transaction: a key
//!   finds its mapping exactly, and a key can name only one mapping.
//! - `casesyncGlobal/global`: `Global` (`google_last_polled_at`, … as its serde names) plus
//!   `schemaVersion`.
//!
//! # Who writes what
//!
//! As in the SQLite store's separate columns, each writer touches only its own fields, with
//! a field mask: a sync (fenced by its lease) writes every field except `lease`,
//! `googlePendingSince`, `companyPendingSince` and the two outage flags; `acquire_lease` and
//! `release_lease` write `lease`; the polls write `*PendingSince`; detect-outages writes
//! `outageCommentSentTo*`. Every write that can race another runs in a read-write
//! transaction (retried on contention), so a read-check-write is never interleaved.
//!
//! # Indexes
//!
//! The store's queries each filter one field: `caseMappings.resolvedAt == null` (list_open),
//! `caseMappings.resolvedAt < cutoff` (cleanup) and `caseMappingKeys.mappingId == id`
//! (cleanup, in its transaction). Firestore's automatic single-field indexes serve all three:
//! **no composite index is needed**. `terraform/firestore_indexes.json` records that, and
//! exempts `caseMappings.attachmentLedger` from indexing: it is never queried, and a map
//! indexed per entry costs index writes and counts against the per-document index limit as
//! a case collects attachments.

use crate::adapters::google_errors;
use crate::domain::mapping::SCHEMA_VERSION;
use crate::domain::{CaseMapping, CompanyCaseKey, Global, GoogleCaseKey, Lease, Side};
use crate::error::{ErrorClass, PortError, PortResult};
use crate::ports::{InsertOutcome, LeaseOutcome, MappingStore};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use firestore::errors::FirestoreError;
use firestore::gcloud_sdk::google::firestore::v1::{
    ArrayValue, Document, DocumentMask, MapValue, Precondition, Value, Write, precondition,
    value::ValueType, write,
};
use firestore::gcloud_sdk::prost_types::Timestamp;
use firestore::{
    FirestoreConsistencySelector, FirestoreDb, FirestoreDbOptions, FirestoreResult,
    FirestoreTransactionMode, FirestoreTransactionOps, FirestoreTransactionOptions, FirestoreValue,
};
use futures::future::BoxFuture;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::time::Duration;

pub const MAPPINGS_COLLECTION: &str = "caseMappings";
pub const KEYS_COLLECTION: &str = "caseMappingKeys";
pub const GLOBAL_COLLECTION: &str = "casesyncGlobal";
pub const GLOBAL_DOCUMENT: &str = "global";

/// The database casesync uses when the configuration names none.
pub const DEFAULT_DATABASE_ID: &str = "casesync";

/// The fields other writers than a sync own (see the module doc); `save_synced` never
/// writes them.
const LEASE: &str = "lease";
const GOOGLE_PENDING: &str = "googlePendingSince";
const COMPANY_PENDING: &str = "companyPendingSince";
const OUTAGE_GOOGLE: &str = "outageCommentSentToGoogle";
const OUTAGE_COMPANY: &str = "outageCommentSentToCompany";
const NOT_SYNC_OWNED: [&str; 5] = [
    LEASE,
    GOOGLE_PENDING,
    COMPANY_PENDING,
    OUTAGE_GOOGLE,
    OUTAGE_COMPANY,
];
const RESOLVED_AT: &str = "resolvedAt";
const SCHEMA_VERSION_FIELD: &str = "schemaVersion";
const MAPPING_ID_FIELD: &str = "mappingId";

/// The top-level `CaseMapping` fields that hold a time (checked against the type by a test,
/// so a new time field cannot silently become a string).
const MAPPING_TIME_FIELDS: [&str; 12] = [
    "newContentAt",
    RESOLVED_AT,
    "companyUpdatesSyncedAt",
    "googleUpdatesSyncedAt",
    "createdAt",
    "googleCreateIntentAt",
    "companyCreateIntentAt",
    "googleUpdateTimeSynced",
    "companyUpdateTimeSynced",
    GOOGLE_PENDING,
    COMPANY_PENDING,
    "pausedAt",
];

const GLOBAL_TIME_FIELDS: [&str; 4] = [
    "google_last_polled_at",
    "company_last_polled_at",
    "google_last_good_poll_at",
    "company_last_good_poll_at",
];

/// Attempts of one read-write transaction under contention before the caller is told to
/// retry later.
const TRANSACTION_ATTEMPTS: u32 = 10;

/// The longest one Firestore request may take; a hung call then fails as retryable instead
/// of using up the function's whole request timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirestoreConfig {
    /// The Google Cloud project holding the database.
    pub project_id: String,
    /// The named Native-mode database (docs/ARCHITECTURE.md#production-topology).
    #[serde(default = "default_database_id")]
    pub database_id: String,
    /// `host:port` of a Firestore emulator. Unset, the client uses `FIRESTORE_EMULATOR_HOST`
    /// when that is set, else production with Application Default Credentials.
    #[serde(default)]
    pub emulator_host: Option<String>,
}

fn default_database_id() -> String {
    DEFAULT_DATABASE_ID.to_string()
}

impl FirestoreConfig {
    pub fn new(project_id: &str, database_id: &str) -> Self {
        FirestoreConfig {
            project_id: project_id.to_string(),
            database_id: database_id.to_string(),
            emulator_host: None,
        }
    }

    pub fn with_emulator_host(mut self, host: &str) -> Self {
        self.emulator_host = Some(host.to_string());
        self
    }

    fn validate(&self) -> PortResult<()> {
        let bad_id =
            |id: &str| id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        // Domain-scoped projects (`example.com:project`) are legal too.
        let bad_project = |id: &str| {
            id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:".contains(c))
        };
        if bad_project(&self.project_id) {
            return Err(PortError::Config(format!(
                "firestore.project_id: `{}` is not a project id",
                self.project_id
            )));
        }
        // "(default)" is allowed by Firestore, but casesync keeps a database of its own.
        if bad_id(&self.database_id) {
            return Err(PortError::Config(format!(
                "firestore.database_id: `{}` is not a database id (a named database, e.g. `{DEFAULT_DATABASE_ID}`)",
                self.database_id
            )));
        }
        if self
            .emulator_host
            .as_deref()
            .is_some_and(|h| h.trim().is_empty())
        {
            return Err(PortError::Config(
                "firestore.emulator_host: empty (leave it unset for production)".into(),
            ));
        }
        Ok(())
    }
}

/// The Firestore `MappingStore`.
#[derive(Clone)]
pub struct FirestoreStore {
    db: FirestoreDb,
}

impl std::fmt::Debug for FirestoreStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirestoreStore")
            .field("database", self.db.get_database_path())
            .finish()
    }
}

impl FirestoreStore {
    /// Builds the client. Connects lazily: a wrong database shows at the first call, or at
    /// [`verify`](Self::verify).
    pub async fn connect(config: &FirestoreConfig) -> PortResult<Self> {
        config.validate()?;
        let options = FirestoreDbOptions::new(config.project_id.clone())
            .with_database_id(config.database_id.clone())
            .with_request_timeout(REQUEST_TIMEOUT);
        let db = match &config.emulator_host {
            Some(host) => {
                let url = if host.contains("://") {
                    host.clone()
                } else {
                    format!("http://{host}")
                };
                // The emulator checks no credentials; anonymous ones keep a developer's
                // machine from needing any.
                let credentials =
                    firestore::gcloud_sdk::google_cloud_auth::credentials::anonymous::Builder::new(
                    )
                    .build();
                FirestoreDb::with_options_auth(options.with_firebase_api_url(url), credentials)
                    .await
            }
            None => FirestoreDb::with_options(options).await,
        }
        .map_err(|e| classify("connect to Firestore", e))?;
        Ok(FirestoreStore { db })
    }

    /// Wraps a client built elsewhere.
    pub fn from_db(db: FirestoreDb) -> Self {
        FirestoreStore { db }
    }

    /// One cheap query, for start-up: a missing database, a database in Datastore mode or
    /// missing permissions show here, with the error class saying so, instead of at the
    /// first sync. (Reads of single documents cannot tell a missing database from a missing
    /// document.)
    pub async fn verify(&self) -> PortResult<()> {
        self.db
            .fluent()
            .select()
            .from(GLOBAL_COLLECTION)
            .limit(1)
            .query()
            .await
            .map(|_| ())
            .map_err(|e| classify("verify the Firestore database", e))
    }

    fn doc_name(&self, collection: &str, id: &str) -> String {
        format!("{}/{collection}/{id}", self.db.get_documents_path())
    }

    /// Runs `body` in a read-write transaction and commits the writes it returns. `body`
    /// gets a client whose reads belong to the transaction. On contention (ABORTED) the
    /// whole body runs again, after a jittered backoff.
    async fn transact<T>(
        &self,
        operation: &str,
        body: impl Fn(FirestoreDb) -> BoxFuture<'static, FirestoreResult<(T, Vec<Write>)>>,
    ) -> PortResult<T> {
        let mut mode = FirestoreTransactionMode::ReadWrite;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = self
                .db
                .begin_transaction_with_options(FirestoreTransactionOptions::new().with_mode(mode))
                .await
                .map_err(|e| classify(operation, e))?;
            let id = tx.transaction_id().clone();
            let reader =
                self.db
                    .clone_with_consistency_selector(FirestoreConsistencySelector::Transaction(
                        id.clone(),
                    ));
            let outcome = match body(reader).await {
                Ok((value, writes)) => {
                    let added = writes
                        .into_iter()
                        .try_for_each(|w| tx.add(RawWrite(w)).map(|_| ()));
                    match added {
                        Ok(()) => tx.commit().await.map(|_| value),
                        Err(e) => {
                            let _ = tx.rollback().await;
                            Err(e)
                        }
                    }
                }
                Err(e) => {
                    // Reads hold locks; release them now rather than at expiry.
                    let _ = tx.rollback().await;
                    Err(e)
                }
            };
            match outcome {
                Ok(value) => return Ok(value),
                Err(e) if is_contention(&e) && attempt < TRANSACTION_ATTEMPTS => {
                    tracing::debug!(operation, attempt, error = %e, "Firestore transaction contention: retrying");
                    mode = FirestoreTransactionMode::ReadWriteRetry(id);
                    tokio::time::sleep(contention_backoff(attempt)).await;
                }
                Err(e) => return Err(classify(operation, e)),
            }
        }
    }

    async fn load_by_key(&self, key_doc_id: &str) -> PortResult<Option<CaseMapping>> {
        let key = read_doc(&self.db, KEYS_COLLECTION, key_doc_id)
            .await
            .map_err(|e| classify("look up a mapping key", e))?;
        let Some(mapping_id) = key.as_ref().and_then(key_owner) else {
            return Ok(None);
        };
        self.get(&mapping_id).await
    }
}

/// A write built here, handed to the crate's transaction as is.
struct RawWrite(Write);

impl TryFrom<RawWrite> for Write {
    type Error = FirestoreError;

    fn try_from(w: RawWrite) -> Result<Write, FirestoreError> {
        Ok(w.0)
    }
}

fn contention_backoff(attempt: u32) -> Duration {
    let base = 25u64.saturating_mul(1 << attempt.min(5));
    Duration::from_millis(base + rand::random::<u64>() % base.max(1))
}

/// Contention: another transaction won the race, or created a document this one meant to
/// create. Running the body again sees the winner's write.
fn is_contention(e: &FirestoreError) -> bool {
    match e {
        FirestoreError::DatabaseError(d) => d.public.code == "Aborted",
        FirestoreError::DataConflictError(_) => true,
        _ => false,
    }
}

async fn read_doc(
    db: &FirestoreDb,
    collection: &str,
    id: &str,
) -> FirestoreResult<Option<Document>> {
    db.fluent().select().by_id_in(collection).one(id).await
}

fn key_owner(doc: &Document) -> Option<String> {
    match doc.fields.get(MAPPING_ID_FIELD)?.value_type.as_ref()? {
        ValueType::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

/// The holder of the lease a mapping document carries, if any.
fn lease_holder(doc: &Document) -> Option<&str> {
    let Some(ValueType::MapValue(lease)) = doc.fields.get(LEASE)?.value_type.as_ref() else {
        return None;
    };
    match lease.fields.get("holder")?.value_type.as_ref()? {
        ValueType::StringValue(h) => Some(h.as_str()),
        _ => None,
    }
}

fn key_doc_id_google(key: &GoogleCaseKey) -> String {
    // The same derivation as a mapping's id: `google-{number}`, `company-{sanitised id}`.
    CaseMapping::id_for_google(key)
}

fn key_doc_id_company(key: &CompanyCaseKey) -> String {
    CaseMapping::id_for_company(key)
}

/// The key documents a mapping's keys need: (document id, side, key).
fn key_docs(m: &CaseMapping) -> Vec<(String, Side, String)> {
    let mut out = Vec::new();
    if let Some(k) = m.google_key() {
        out.push((key_doc_id_google(&k), Side::Google, k.as_str().to_string()));
    }
    if let Some(k) = m.company_key() {
        out.push((
            key_doc_id_company(&k),
            Side::Company,
            k.as_str().to_string(),
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Writes

fn update_write(
    name: String,
    fields: HashMap<String, Value>,
    mask: Option<Vec<String>>,
    exists: Option<bool>,
) -> Write {
    Write {
        update_mask: mask.map(|field_paths| DocumentMask { field_paths }),
        update_transforms: vec![],
        current_document: exists.map(|e| Precondition {
            condition_type: Some(precondition::ConditionType::Exists(e)),
        }),
        operation: Some(write::Operation::Update(Document {
            name,
            fields,
            create_time: None,
            update_time: None,
        })),
    }
}

/// Writes one field of an existing document, leaving the rest alone.
fn field_write(name: String, field: &str, value: Value) -> Write {
    update_write(
        name,
        HashMap::from([(field.to_string(), value)]),
        Some(vec![field.to_string()]),
        Some(true),
    )
}

fn delete_write(name: String) -> Write {
    Write {
        update_mask: None,
        update_transforms: vec![],
        current_document: None,
        operation: Some(write::Operation::Delete(name)),
    }
}

fn key_write(name: String, side: Side, key: &str, mapping_id: &str) -> Write {
    let fields = HashMap::from([
        (MAPPING_ID_FIELD.to_string(), string_value(mapping_id)),
        ("side".to_string(), string_value(side.as_str())),
        ("key".to_string(), string_value(key)),
        (
            SCHEMA_VERSION_FIELD.to_string(),
            integer_value(SCHEMA_VERSION.into()),
        ),
    ]);
    update_write(name, fields, None, Some(false))
}

/// Why a mapping cannot have its keys.
enum KeyClash {
    /// Another mapping holds one of them.
    Owner(String),
    /// A key document names no mapping: refuse rather than guess.
    Corrupt(PortError),
}

/// Reads a mapping's key documents in the transaction and returns the writes for those
/// missing, or why it cannot have them (nothing to write then).
async fn claim_keys(
    db: &FirestoreDb,
    docs_path: &str,
    m: &CaseMapping,
) -> FirestoreResult<Result<Vec<Write>, KeyClash>> {
    let mut writes = Vec::new();
    for (doc_id, side, key) in key_docs(m) {
        match read_doc(db, KEYS_COLLECTION, &doc_id).await? {
            Some(doc) => match key_owner(&doc) {
                Some(owner) if owner == m.id => {}
                Some(owner) => return Ok(Err(KeyClash::Owner(owner))),
                None => {
                    return Ok(Err(KeyClash::Corrupt(PortError::permanent(
                        "look up a mapping key",
                        format!("key document {doc_id} names no mapping"),
                    ))));
                }
            },
            None => writes.push(key_write(
                format!("{docs_path}/{KEYS_COLLECTION}/{doc_id}"),
                side,
                &key,
                &m.id,
            )),
        }
    }
    Ok(Ok(writes))
}

// ---------------------------------------------------------------------------------------
// Conversion between JSON (the serde form of the domain types) and Firestore values

fn string_value(s: &str) -> Value {
    Value {
        value_type: Some(ValueType::StringValue(s.to_string())),
    }
}

fn integer_value(i: i64) -> Value {
    Value {
        value_type: Some(ValueType::IntegerValue(i)),
    }
}

fn null_value() -> Value {
    Value {
        value_type: Some(ValueType::NullValue(0)),
    }
}

fn bool_value(b: bool) -> Value {
    Value {
        value_type: Some(ValueType::BooleanValue(b)),
    }
}

fn timestamp_value(t: DateTime<Utc>) -> Value {
    Value {
        value_type: Some(ValueType::TimestampValue(Timestamp {
            seconds: t.timestamp(),
            // Below one second: always < 1e9, so the cast is exact.
            nanos: t.timestamp_subsec_nanos() as i32,
        })),
    }
}

fn timestamp_of(v: &Value) -> Option<DateTime<Utc>> {
    match v.value_type.as_ref()? {
        ValueType::TimestampValue(ts) => {
            DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?)
        }
        _ => None,
    }
}

fn is_mapping_time(path: &[&str]) -> bool {
    match path {
        [field] => MAPPING_TIME_FIELDS.contains(field),
        ["lease", "until"] => true,
        ["attachmentLedger", _, "attemptedAt"] => true,
        ["refusedItems", _, "at"] => true,
        ["parked", "at" | "sourceUpdateTime"] => true,
        ["syncState", "since"] => true,
        _ => false,
    }
}

fn is_global_time(path: &[&str]) -> bool {
    matches!(path, [field] if GLOBAL_TIME_FIELDS.contains(field))
}

fn encode_error(what: &str, e: impl std::fmt::Display) -> PortError {
    PortError::permanent(format!("encode {what} for Firestore"), e.to_string())
}

/// A JSON value as a Firestore value; strings at the paths `is_time` names become
/// timestamps.
fn to_value<'p>(
    json: &'p Json,
    path: &mut Vec<&'p str>,
    is_time: fn(&[&str]) -> bool,
) -> PortResult<Value> {
    let value_type = match json {
        Json::Null => ValueType::NullValue(0),
        Json::Bool(b) => ValueType::BooleanValue(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => ValueType::IntegerValue(i),
            None => ValueType::DoubleValue(
                n.as_f64()
                    .ok_or_else(|| encode_error(&path.join("."), "number out of range"))?,
            ),
        },
        Json::String(s) if is_time(path) => {
            let t = DateTime::parse_from_rfc3339(s)
                .map_err(|e| encode_error(&path.join("."), e))?
                .with_timezone(&Utc);
            return Ok(timestamp_value(t));
        }
        Json::String(s) => ValueType::StringValue(s.clone()),
        Json::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                values.push(to_value(item, path, is_time)?);
            }
            ValueType::ArrayValue(ArrayValue { values })
        }
        Json::Object(map) => {
            let mut fields = HashMap::with_capacity(map.len());
            for (k, v) in map {
                path.push(k);
                let value = to_value(v, path, is_time);
                path.pop();
                fields.insert(k.clone(), value?);
            }
            ValueType::MapValue(MapValue { fields })
        }
    };
    Ok(Value {
        value_type: Some(value_type),
    })
}

/// The fields of a document for a serialisable object, with `schemaVersion`.
fn to_fields<T: serde::Serialize>(
    what: &str,
    obj: &T,
    is_time: fn(&[&str]) -> bool,
) -> PortResult<HashMap<String, Value>> {
    let json = serde_json::to_value(obj).map_err(|e| encode_error(what, e))?;
    let Json::Object(map) = json else {
        return Err(encode_error(what, "not a JSON object"));
    };
    let mut fields = HashMap::with_capacity(map.len() + 1);
    for (k, v) in &map {
        let mut path = vec![k.as_str()];
        fields.insert(k.clone(), to_value(v, &mut path, is_time)?);
    }
    fields
        .entry(SCHEMA_VERSION_FIELD.to_string())
        .or_insert_with(|| integer_value(SCHEMA_VERSION.into()));
    Ok(fields)
}

fn to_json(v: &Value) -> Result<Json, String> {
    Ok(match v.value_type.as_ref() {
        None | Some(ValueType::NullValue(_)) => Json::Null,
        Some(ValueType::BooleanValue(b)) => Json::Bool(*b),
        Some(ValueType::IntegerValue(i)) => Json::from(*i),
        Some(ValueType::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        Some(ValueType::StringValue(s)) => Json::String(s.clone()),
        Some(ValueType::TimestampValue(_)) => {
            let t = timestamp_of(v).ok_or("timestamp out of range")?;
            Json::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        }
        Some(ValueType::ArrayValue(a)) => {
            Json::Array(a.values.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Some(ValueType::MapValue(m)) => Json::Object(
            m.fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        Some(other) => return Err(format!("unexpected value {other:?}")),
    })
}

fn from_fields<T: serde::de::DeserializeOwned>(
    fields: &HashMap<String, Value>,
) -> Result<T, String> {
    let map = fields
        .iter()
        .map(|(k, v)| Ok((k.clone(), to_json(v)?)))
        .collect::<Result<serde_json::Map<_, _>, String>>()?;
    serde_json::from_value(Json::Object(map)).map_err(|e| e.to_string())
}

fn decode_mapping(doc: &Document) -> PortResult<CaseMapping> {
    from_fields(&doc.fields).map_err(|e| {
        PortError::permanent(
            "read a mapping",
            format!("mapping document {} is corrupt: {e}", doc.name),
        )
    })
}

fn decode_global(doc: Option<&Document>) -> PortResult<Global> {
    match doc {
        None => Ok(Global::default()),
        Some(d) => from_fields(&d.fields)
            .map_err(|e| PortError::permanent("read Global", format!("Global is corrupt: {e}"))),
    }
}

/// A mapping's document as `insert_new` writes it: what the SQLite store keeps in its row
/// at insert (the sync's fields and the pending marks; no lease, flags unset).
fn insert_fields(m: &CaseMapping) -> PortResult<HashMap<String, Value>> {
    let mut doc = m.clone();
    doc.lease = None;
    doc.outage_comment_sent_to_google = false;
    doc.outage_comment_sent_to_company = false;
    to_fields("a mapping", &doc, is_mapping_time)
}

/// The sync-owned fields of a mapping and the mask that writes exactly them.
fn sync_owned_fields(m: &CaseMapping) -> PortResult<(HashMap<String, Value>, Vec<String>)> {
    let mut fields = to_fields("a mapping", m, is_mapping_time)?;
    for f in NOT_SYNC_OWNED {
        fields.remove(f);
    }
    let mut mask: Vec<String> = fields.keys().cloned().collect();
    mask.sort();
    Ok((fields, mask))
}

fn lease_value(lease: Option<&Lease>) -> PortResult<Value> {
    let json = serde_json::to_value(lease).map_err(|e| encode_error("a lease", e))?;
    let mut path = vec![LEASE];
    to_value(&json, &mut path, is_mapping_time)
}

fn pending_field(side: Side) -> &'static str {
    match side {
        Side::Google => GOOGLE_PENDING,
        Side::Company => COMPANY_PENDING,
    }
}

fn outage_field(side: Side) -> &'static str {
    match side {
        Side::Google => OUTAGE_GOOGLE,
        Side::Company => OUTAGE_COMPANY,
    }
}

// ---------------------------------------------------------------------------------------
// Error classification (docs/FAILURES.md#failure-classes)

fn failed(operation: &str, class: ErrorClass, message: String) -> PortError {
    PortError::Failed {
        operation: operation.to_string(),
        class,
        status: None,
        message,
        retry_after: None,
    }
}

/// The canonical number of a gRPC code as the crate names it
/// (`format!("{:?}", tonic::Code)`); `None` for the crate's own codes.
fn code_number(name: &str) -> Option<i32> {
    use firestore::gcloud_sdk::tonic::Code;
    (0..=16).find(|n| format!("{:?}", Code::from_i32(*n)) == name)
}

/// The class of a code the crate reports: a gRPC code by the shared mapping
/// ([`google_errors::class_of_code_number`]) with this store's exception, the crate's own
/// connection codes as transport errors.
fn class_of_code(code: &str) -> ErrorClass {
    match code {
        // Exception: FAILED_PRECONDITION reaches a caller of this store only as a
        // configuration problem (a database in Datastore mode, a missing index): not the
        // message's fault, and every message would meet it. Systemic, not permanent.
        "FailedPrecondition" => ErrorClass::Systemic,
        "CONNECTION_CLOSED" | "CONNECTION_TIMEOUT" | "CONNECTION_ERROR" => ErrorClass::Retryable,
        _ => match code_number(code) {
            Some(number) => google_errors::class_of_code_number(number),
            // A refusal of the crate's own (an unsupported consistency selector): the same
            // call fails the same way.
            None => ErrorClass::Permanent,
        },
    }
}

/// Classifies a Firestore failure: contention and outages are retryable, credentials and
/// configuration systemic, the rest (bad input, undecodable documents) permanent. gRPC
/// codes go by the shared Google mapping; this store's exceptions are written at each arm.
pub fn classify(operation: &str, e: FirestoreError) -> PortError {
    match e {
        FirestoreError::DatabaseError(d) => {
            // Exception: the crate's `retry_possible` (ABORTED, CANCELLED, UNAVAILABLE,
            // RESOURCE_EXHAUSTED, its own timeouts and dropped connections, a read's
            // DEADLINE_EXCEEDED) is retryable whatever the code: it knows the call.
            let class = if d.retry_possible {
                ErrorClass::Retryable
            } else {
                class_of_code(&d.public.code)
            };
            failed(operation, class, d.to_string())
        }
        // Exception: ALREADY_EXISTS (the crate's conflict) is retryable, not permanent:
        // someone created the document first, and a retry reads it.
        FirestoreError::DataConflictError(d) => {
            failed(operation, ErrorClass::Retryable, d.to_string())
        }
        // Exception: NOT_FOUND is systemic, not `NotFound`: single-document reads turn it
        // into "absent", so one that reaches here names the database itself.
        FirestoreError::DataNotFoundError(d) => failed(
            operation,
            ErrorClass::Systemic,
            format!("{d} (does the database exist? see firestore.database_id)"),
        ),
        FirestoreError::NetworkError(n) => failed(operation, ErrorClass::Retryable, n.to_string()),
        FirestoreError::CacheError(c) => failed(operation, ErrorClass::Retryable, c.to_string()),
        // Credentials or TLS could not be set up.
        FirestoreError::SystemError(s) => failed(operation, ErrorClass::Systemic, s.to_string()),
        FirestoreError::ErrorInTransaction(t) => match t.source.downcast::<FirestoreError>() {
            Ok(inner) => classify(operation, *inner),
            Err(other) => failed(operation, ErrorClass::Permanent, other.to_string()),
        },
        e @ (FirestoreError::InvalidParametersError(_)
        | FirestoreError::SerializeError(_)
        | FirestoreError::DeserializeError(_)) => {
            failed(operation, ErrorClass::Permanent, e.to_string())
        }
    }
}

// ---------------------------------------------------------------------------------------
// The port

/// What a transaction that may refuse found.
enum Checked<T> {
    Done(T),
    Refused(PortError),
}

#[async_trait]
impl MappingStore for FirestoreStore {
    async fn find_by_google(&self, key: &GoogleCaseKey) -> PortResult<Option<CaseMapping>> {
        self.load_by_key(&key_doc_id_google(key)).await
    }

    async fn find_by_company(&self, key: &CompanyCaseKey) -> PortResult<Option<CaseMapping>> {
        self.load_by_key(&key_doc_id_company(key)).await
    }

    async fn get(&self, id: &str) -> PortResult<Option<CaseMapping>> {
        read_doc(&self.db, MAPPINGS_COLLECTION, id)
            .await
            .map_err(|e| classify("read a mapping", e))?
            .as_ref()
            .map(decode_mapping)
            .transpose()
    }

    async fn insert_new(&self, mapping: &CaseMapping) -> PortResult<InsertOutcome> {
        let fields = insert_fields(mapping)?;
        let docs_path = self.db.get_documents_path().clone();
        let name = self.doc_name(MAPPINGS_COLLECTION, &mapping.id);
        let outcome = self
            .transact("insert a mapping", |db| {
                let (m, fields, docs_path, name) = (
                    mapping.clone(),
                    fields.clone(),
                    docs_path.clone(),
                    name.clone(),
                );
                Box::pin(async move {
                    if read_doc(&db, MAPPINGS_COLLECTION, &m.id).await?.is_some() {
                        let outcome = InsertOutcome::AlreadyMapped(m.id.clone());
                        return Ok((Checked::Done(outcome), vec![]));
                    }
                    let mut writes = match claim_keys(&db, &docs_path, &m).await? {
                        Ok(writes) => writes,
                        Err(KeyClash::Owner(owner)) => {
                            return Ok((
                                Checked::Done(InsertOutcome::AlreadyMapped(owner)),
                                vec![],
                            ));
                        }
                        Err(KeyClash::Corrupt(e)) => return Ok((Checked::Refused(e), vec![])),
                    };
                    writes.push(update_write(name, fields, None, Some(false)));
                    Ok((Checked::Done(InsertOutcome::Created), writes))
                })
            })
            .await?;
        match outcome {
            Checked::Done(o) => Ok(o),
            Checked::Refused(e) => Err(e),
        }
    }

    async fn acquire_lease(
        &self,
        id: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<LeaseOutcome> {
        let lease = Lease {
            holder: holder.to_string(),
            until,
        };
        let value = lease_value(Some(&lease))?;
        let name = self.doc_name(MAPPINGS_COLLECTION, id);
        let outcome = self
            .transact("take a lease", |db| {
                let (id, lease, value, name) =
                    (id.to_string(), lease.clone(), value.clone(), name.clone());
                Box::pin(async move {
                    let Some(doc) = read_doc(&db, MAPPINGS_COLLECTION, &id).await? else {
                        return Ok((Checked::Done(LeaseOutcome::Missing), vec![]));
                    };
                    let mut m = match decode_mapping(&doc) {
                        Ok(m) => m,
                        Err(e) => return Ok((Checked::Refused(e), vec![])),
                    };
                    if let Some(current) = &m.lease
                        && current.holder != lease.holder
                        && current.until > now
                    {
                        let held = PortError::LeaseHeld {
                            mapping_id: id,
                            until: current.until.to_rfc3339(),
                        };
                        return Ok((Checked::Refused(held), vec![]));
                    }
                    m.lease = Some(lease);
                    let write = field_write(name, LEASE, value);
                    Ok((
                        Checked::Done(LeaseOutcome::Acquired(Box::new(m))),
                        vec![write],
                    ))
                })
            })
            .await?;
        match outcome {
            Checked::Done(o) => Ok(o),
            Checked::Refused(e) => Err(e),
        }
    }

    async fn save_synced(&self, mapping: &CaseMapping, holder: &str) -> PortResult<()> {
        let (fields, mask) = sync_owned_fields(mapping)?;
        let docs_path = self.db.get_documents_path().clone();
        let name = self.doc_name(MAPPINGS_COLLECTION, &mapping.id);
        let outcome = self
            .transact("save a mapping", |db| {
                let (m, fields, mask, docs_path, name, holder) = (
                    mapping.clone(),
                    fields.clone(),
                    mask.clone(),
                    docs_path.clone(),
                    name.clone(),
                    holder.to_string(),
                );
                Box::pin(async move {
                    let lost = || {
                        Checked::Refused(PortError::LeaseLost {
                            mapping_id: m.id.clone(),
                        })
                    };
                    let Some(doc) = read_doc(&db, MAPPINGS_COLLECTION, &m.id).await? else {
                        return Ok((lost(), vec![]));
                    };
                    if lease_holder(&doc) != Some(holder.as_str()) {
                        return Ok((lost(), vec![]));
                    }
                    let mut writes = match claim_keys(&db, &docs_path, &m).await? {
                        Ok(writes) => writes,
                        Err(KeyClash::Corrupt(e)) => return Ok((Checked::Refused(e), vec![])),
                        Err(KeyClash::Owner(owner)) => {
                            let clash = PortError::permanent(
                                "link a mapping",
                                format!(
                                    "mapping {} cannot take a key that mapping {owner} already holds",
                                    m.id
                                ),
                            );
                            return Ok((Checked::Refused(clash), vec![]));
                        }
                    };
                    writes.push(update_write(name, fields, Some(mask), Some(true)));
                    Ok((Checked::Done(()), writes))
                })
            })
            .await?;
        match outcome {
            Checked::Done(()) => Ok(()),
            Checked::Refused(e) => Err(e),
        }
    }

    async fn renew_lease(&self, id: &str, holder: &str, until: DateTime<Utc>) -> PortResult<()> {
        let lease = Lease {
            holder: holder.to_string(),
            until,
        };
        let value = lease_value(Some(&lease))?;
        let name = self.doc_name(MAPPINGS_COLLECTION, id);
        let outcome = self
            .transact("renew a lease", |db| {
                let (id, holder, value, name) = (
                    id.to_string(),
                    holder.to_string(),
                    value.clone(),
                    name.clone(),
                );
                Box::pin(async move {
                    let held = match read_doc(&db, MAPPINGS_COLLECTION, &id).await? {
                        Some(doc) => lease_holder(&doc) == Some(holder.as_str()),
                        None => false,
                    };
                    if !held {
                        let lost = PortError::LeaseLost { mapping_id: id };
                        return Ok((Checked::Refused(lost), vec![]));
                    }
                    Ok((Checked::Done(()), vec![field_write(name, LEASE, value)]))
                })
            })
            .await?;
        match outcome {
            Checked::Done(()) => Ok(()),
            Checked::Refused(e) => Err(e),
        }
    }

    async fn release_lease(&self, id: &str, holder: &str) -> PortResult<()> {
        let name = self.doc_name(MAPPINGS_COLLECTION, id);
        self.transact("release a lease", |db| {
            let (id, holder, name) = (id.to_string(), holder.to_string(), name.clone());
            Box::pin(async move {
                let Some(doc) = read_doc(&db, MAPPINGS_COLLECTION, &id).await? else {
                    return Ok(((), vec![]));
                };
                let writes = if lease_holder(&doc) == Some(holder.as_str()) {
                    vec![field_write(name, LEASE, null_value())]
                } else {
                    vec![]
                };
                Ok(((), writes))
            })
        })
        .await
    }

    async fn mark_pending(&self, id: &str, side: Side, at: DateTime<Utc>) -> PortResult<()> {
        let field = pending_field(side);
        let name = self.doc_name(MAPPINGS_COLLECTION, id);
        self.transact("mark a sync pending", |db| {
            let (id, name) = (id.to_string(), name.clone());
            Box::pin(async move {
                let Some(doc) = read_doc(&db, MAPPINGS_COLLECTION, &id).await? else {
                    return Ok(((), vec![]));
                };
                let current = doc.fields.get(field).and_then(timestamp_of);
                let writes = match current {
                    Some(c) if c >= at => vec![],
                    _ => vec![field_write(name, field, timestamp_value(at))],
                };
                Ok(((), writes))
            })
        })
        .await
    }

    async fn clear_pending(
        &self,
        id: &str,
        side: Side,
        started_at: DateTime<Utc>,
    ) -> PortResult<()> {
        let field = pending_field(side);
        let name = self.doc_name(MAPPINGS_COLLECTION, id);
        self.transact("clear a pending mark", |db| {
            let (id, name) = (id.to_string(), name.clone());
            Box::pin(async move {
                let Some(doc) = read_doc(&db, MAPPINGS_COLLECTION, &id).await? else {
                    return Ok(((), vec![]));
                };
                let current = doc.fields.get(field).and_then(timestamp_of);
                let writes = match current {
                    Some(c) if c <= started_at => vec![field_write(name, field, null_value())],
                    _ => vec![],
                };
                Ok(((), writes))
            })
        })
        .await
    }

    async fn set_outage_flag(&self, id: &str, side: Side, sent: bool) -> PortResult<()> {
        let field = outage_field(side);
        let name = self.doc_name(MAPPINGS_COLLECTION, id);
        self.transact("set an outage flag", |db| {
            let (id, name) = (id.to_string(), name.clone());
            Box::pin(async move {
                // A missing mapping (cleaned up meanwhile) stays missing: the write's
                // `exists` precondition alone would fail the call instead.
                if read_doc(&db, MAPPINGS_COLLECTION, &id).await?.is_none() {
                    return Ok(((), vec![]));
                }
                Ok(((), vec![field_write(name, field, bool_value(sent))]))
            })
        })
        .await
    }

    async fn list_open(&self) -> PortResult<Vec<CaseMapping>> {
        let docs = self
            .db
            .fluent()
            .select()
            .from(MAPPINGS_COLLECTION)
            .filter(|q| q.field(RESOLVED_AT).is_null())
            .query()
            .await
            .map_err(|e| classify("list open mappings", e))?;
        let mut out = Vec::with_capacity(docs.len());
        for doc in &docs {
            match decode_mapping(doc) {
                Ok(m) => out.push(m),
                Err(e) => {
                    tracing::error!(error = %e, "skipping a corrupt mapping in the outage scan")
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn delete_resolved_before(&self, cutoff: DateTime<Utc>) -> PortResult<Vec<String>> {
        let cutoff_value = FirestoreValue {
            value: timestamp_value(cutoff),
        };
        let candidates = self
            .db
            .fluent()
            .select()
            .from(MAPPINGS_COLLECTION)
            .filter(|q| q.field(RESOLVED_AT).less_than(cutoff_value.clone()))
            .query()
            .await
            .map_err(|e| classify("delete resolved mappings", e))?;
        let docs_path = self.db.get_documents_path().clone();
        let mut deleted = Vec::new();
        for doc in candidates {
            let Some(id) = doc.name.rsplit('/').next().map(str::to_string) else {
                continue;
            };
            // One transaction per mapping: each deletion is whole, and a large backlog
            // never exceeds a transaction's write limit.
            let gone = self
                .transact("delete a resolved mapping", |db| {
                    let (id, docs_path) = (id.clone(), docs_path.clone());
                    Box::pin(async move {
                        let Some(doc) = read_doc(&db, MAPPINGS_COLLECTION, &id).await? else {
                            return Ok((false, vec![]));
                        };
                        let resolved = doc.fields.get(RESOLVED_AT).and_then(timestamp_of);
                        if resolved.is_none_or(|r| r >= cutoff) {
                            return Ok((false, vec![]));
                        }
                        let keys = db
                            .fluent()
                            .select()
                            .from(KEYS_COLLECTION)
                            .filter(|q| q.field(MAPPING_ID_FIELD).eq(id.as_str()))
                            .query()
                            .await?;
                        let mut writes: Vec<Write> =
                            keys.into_iter().map(|k| delete_write(k.name)).collect();
                        writes.push(delete_write(format!(
                            "{docs_path}/{MAPPINGS_COLLECTION}/{id}"
                        )));
                        Ok((true, writes))
                    })
                })
                .await?;
            if gone {
                deleted.push(id);
            }
        }
        Ok(deleted)
    }

    async fn global(&self) -> PortResult<Global> {
        let doc = read_doc(&self.db, GLOBAL_COLLECTION, GLOBAL_DOCUMENT)
            .await
            .map_err(|e| classify("read Global", e))?;
        decode_global(doc.as_ref())
    }

    async fn advance_poll(&self, side: Side, polled_at: DateTime<Utc>) -> PortResult<Global> {
        let name = self.doc_name(GLOBAL_COLLECTION, GLOBAL_DOCUMENT);
        let outcome = self
            .transact("advance the poll time", |db| {
                let name = name.clone();
                Box::pin(async move {
                    let doc = read_doc(&db, GLOBAL_COLLECTION, GLOBAL_DOCUMENT).await?;
                    let mut g = match decode_global(doc.as_ref()) {
                        Ok(g) => g,
                        Err(e) => return Ok((Checked::Refused(e), vec![])),
                    };
                    g.advance(side, polled_at);
                    let fields = match to_fields("Global", &g, is_global_time) {
                        Ok(f) => f,
                        Err(e) => return Ok((Checked::Refused(e), vec![])),
                    };
                    Ok((
                        Checked::Done(g),
                        vec![update_write(name, fields, None, None)],
                    ))
                })
            })
            .await?;
        match outcome {
            Checked::Done(g) => Ok(g),
            Checked::Refused(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LedgerEntry, LedgerOutcome, Priority, SyncState};
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    fn full_mapping() -> CaseMapping {
        let key = GoogleCaseKey::from_case_name("projects/p/cases/42").unwrap();
        let mut m = CaseMapping::from_google("projects/p/cases/42", &key, Priority::P1, t(0));
        m.company_case_id = Some("SUP/1".into());
        m.resolved_at = Some(t(1) + chrono::Duration::microseconds(5));
        m.google_updates_synced_at = Some(t(2));
        m.google_pending_since = Some(t(3));
        m.lease = Some(Lease {
            holder: "h".into(),
            until: t(4),
        });
        m.sync_state = SyncState::Unlinked {
            reason: "gone".into(),
        };
        m.attachment_ledger.insert(
            "google:a".into(),
            LedgerEntry {
                outcome: LedgerOutcome::Mirrored,
                target_id: Some("9".into()),
                attempted_at: t(5),
                reason: None,
            },
        );
        m
    }

    #[test]
    fn a_mapping_round_trips_through_firestore_values() {
        let m = full_mapping();
        let fields = to_fields("a mapping", &m, is_mapping_time).unwrap();
        assert_eq!(
            fields[SCHEMA_VERSION_FIELD],
            integer_value(SCHEMA_VERSION.into())
        );
        assert_eq!(fields["companyCaseID"], string_value("SUP/1"));
        assert_eq!(fields[RESOLVED_AT], timestamp_value(m.resolved_at.unwrap()));
        assert_eq!(fields["newContentAt"], timestamp_value(t(0)));
        assert_eq!(fields["companyUpdatesSyncedAt"], timestamp_value(t(0)));
        assert_eq!(fields["googleCreateIntentAt"], null_value());
        assert_eq!(fields["priority"], integer_value(1));
        let back: CaseMapping = from_fields(&fields).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn an_unset_resolved_at_is_an_explicit_null() {
        let mut m = full_mapping();
        m.resolved_at = None;
        let fields = to_fields("a mapping", &m, is_mapping_time).unwrap();
        assert_eq!(fields.get(RESOLVED_AT), Some(&null_value()));
    }

    /// Every time in a mapping is stored as a timestamp, so range queries compare times, not
    /// strings. Finds the time fields from the type itself: a field is a time if it accepts
    /// an RFC 3339 string and refuses any other string.
    #[test]
    fn every_time_field_of_a_mapping_is_stored_as_a_timestamp() {
        let m = full_mapping();
        let json = serde_json::to_value(&m).unwrap();
        let mut times = Vec::new();
        for key in json.as_object().unwrap().keys() {
            let with = |s: &str| {
                let mut j = json.clone();
                j[key] = Json::String(s.into());
                serde_json::from_value::<CaseMapping>(j).is_ok()
            };
            if with("2026-01-01T00:00:00Z") && !with("not a time") {
                times.push(key.clone());
            }
        }
        times.sort();
        let mut expected: Vec<String> = MAPPING_TIME_FIELDS.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(times, expected);

        let fields = to_fields("a mapping", &m, is_mapping_time).unwrap();
        let lease = match &fields[LEASE].value_type {
            Some(ValueType::MapValue(l)) => l.fields["until"].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(lease, timestamp_value(t(4)));
        let Some(ValueType::MapValue(ledger)) = &fields["attachmentLedger"].value_type else {
            panic!()
        };
        let Some(ValueType::MapValue(entry)) = &ledger.fields["google:a"].value_type else {
            panic!()
        };
        assert_eq!(entry.fields["attemptedAt"], timestamp_value(t(5)));
        // No string anywhere looks like a time.
        fn no_time_strings(v: &Value) {
            match &v.value_type {
                Some(ValueType::StringValue(s)) => {
                    assert!(DateTime::parse_from_rfc3339(s).is_err(), "{s}")
                }
                Some(ValueType::MapValue(m)) => m.fields.values().for_each(no_time_strings),
                Some(ValueType::ArrayValue(a)) => a.values.iter().for_each(no_time_strings),
                _ => {}
            }
        }
        fields.values().for_each(no_time_strings);
    }

    #[test]
    fn the_owned_field_names_are_the_serde_names() {
        let json = serde_json::to_value(full_mapping()).unwrap();
        for f in NOT_SYNC_OWNED.iter().chain([&RESOLVED_AT]) {
            assert!(json.get(f).is_some(), "{f} is not a CaseMapping field");
        }
        let g = serde_json::to_value(Global::default()).unwrap();
        for f in GLOBAL_TIME_FIELDS {
            assert!(g.get(f).is_some(), "{f} is not a Global field");
        }
    }

    #[test]
    fn a_save_writes_only_the_sync_owned_fields() {
        let (fields, mask) = sync_owned_fields(&full_mapping()).unwrap();
        for f in NOT_SYNC_OWNED {
            assert!(
                !fields.contains_key(f) && !mask.iter().any(|m| m == f),
                "{f}"
            );
        }
        assert!(mask.iter().any(|m| m == RESOLVED_AT));
        assert!(mask.iter().any(|m| m == "attachmentLedger"));
        assert_eq!(mask.len(), fields.len());
    }

    #[test]
    fn an_insert_writes_no_lease_and_no_flags_but_keeps_pending_marks() {
        let mut m = full_mapping();
        m.outage_comment_sent_to_google = true;
        let fields = insert_fields(&m).unwrap();
        assert_eq!(fields[LEASE], null_value());
        assert_eq!(fields[OUTAGE_GOOGLE], bool_value(false));
        assert_eq!(fields[GOOGLE_PENDING], timestamp_value(t(3)));
    }

    #[test]
    fn global_round_trips_with_timestamps() {
        let mut g = Global::default();
        g.advance(Side::Google, t(7));
        let fields = to_fields("Global", &g, is_global_time).unwrap();
        assert_eq!(fields["google_last_polled_at"], timestamp_value(t(7)));
        assert_eq!(fields["company_last_polled_at"], null_value());
        assert_eq!(
            fields[SCHEMA_VERSION_FIELD],
            integer_value(SCHEMA_VERSION.into())
        );
        let doc = Document {
            fields,
            ..Default::default()
        };
        assert_eq!(decode_global(Some(&doc)).unwrap(), g);
        assert_eq!(decode_global(None).unwrap(), Global::default());
    }

    #[test]
    fn key_document_ids_are_legal_and_distinct() {
        let a = key_doc_id_company(&CompanyCaseKey::new("SUP/1").unwrap());
        let b = key_doc_id_company(&CompanyCaseKey::new("SUP_1").unwrap());
        assert_ne!(a, b);
        assert!(!a.contains('/') && a.starts_with("company-"));
        let g =
            key_doc_id_google(&GoogleCaseKey::from_case_name("organizations/1/cases/77").unwrap());
        assert_eq!(g, "google-77");
    }

    #[test]
    fn a_corrupt_document_is_a_permanent_error_naming_it() {
        let doc = Document {
            name: "projects/p/databases/d/documents/caseMappings/google-1".into(),
            fields: HashMap::from([("priority".to_string(), string_value("high"))]),
            ..Default::default()
        };
        let e = decode_mapping(&doc).unwrap_err();
        assert_eq!(e.class(), ErrorClass::Permanent);
        assert!(e.to_string().contains("google-1"), "{e}");
    }

    #[test]
    fn errors_are_classified_as_section_11_10_says() {
        use firestore::errors::*;
        let db = |code: &str, retry: bool| {
            FirestoreError::DatabaseError(FirestoreDatabaseError::new(
                FirestoreErrorPublicGenericDetails::new(code.into()),
                "x".into(),
                retry,
            ))
        };
        for (code, class) in [
            ("Aborted", ErrorClass::Retryable),
            ("Unavailable", ErrorClass::Retryable),
            ("DeadlineExceeded", ErrorClass::Retryable),
            ("ResourceExhausted", ErrorClass::Retryable),
            ("PermissionDenied", ErrorClass::Systemic),
            ("Unauthenticated", ErrorClass::Systemic),
            ("FailedPrecondition", ErrorClass::Systemic),
            ("InvalidArgument", ErrorClass::Permanent),
            ("OutOfRange", ErrorClass::Permanent),
            // The shared mapping, where the crate did not mark a retry.
            ("Cancelled", ErrorClass::Retryable),
            ("Unknown", ErrorClass::Retryable),
            ("Internal", ErrorClass::Retryable),
            ("DataLoss", ErrorClass::Retryable),
            ("Unimplemented", ErrorClass::Systemic),
            ("CONNECTION_ERROR", ErrorClass::Retryable),
            ("Unsupported consistency selector", ErrorClass::Permanent),
        ] {
            assert_eq!(classify("op", db(code, false)).class(), class, "{code}");
        }
        assert_eq!(
            classify("op", db("InvalidArgument", true)).class(),
            ErrorClass::Retryable
        );
        let conflict = FirestoreError::DataConflictError(FirestoreDataConflictError::new(
            FirestoreErrorPublicGenericDetails::new("AlreadyExists".into()),
            "x".into(),
        ));
        assert_eq!(classify("op", conflict).class(), ErrorClass::Retryable);
        let missing = FirestoreError::DataNotFoundError(FirestoreDataNotFoundError::new(
            FirestoreErrorPublicGenericDetails::new("NotFound".into()),
            "database".into(),
        ));
        let e = classify("op", missing);
        assert_eq!(e.class(), ErrorClass::Systemic);
        assert!(e.to_string().contains("firestore.database_id"), "{e}");
        assert!(is_contention(&db("Aborted", true)));
        assert!(!is_contention(&db("Unavailable", true)));
    }

    #[test]
    fn every_grpc_code_follows_the_shared_mapping_but_failed_precondition() {
        use firestore::errors::*;
        use firestore::gcloud_sdk::tonic::Code;
        for number in 0..=16 {
            let name = format!("{:?}", Code::from_i32(number));
            assert_eq!(code_number(&name), Some(number), "{name}");
            let e = FirestoreError::DatabaseError(FirestoreDatabaseError::new(
                FirestoreErrorPublicGenericDetails::new(name.clone()),
                "x".into(),
                false,
            ));
            let expected = match name.as_str() {
                "FailedPrecondition" => ErrorClass::Systemic,
                _ => google_errors::class_of_code_number(number),
            };
            assert_eq!(classify("op", e).class(), expected, "{name}");
        }
        // What the crate's own conversion makes of a status, exceptions included.
        let from = |code: Code| classify("op", FirestoreError::from(tonic_status(code)));
        assert_eq!(from(Code::Cancelled).class(), ErrorClass::Retryable);
        assert_eq!(from(Code::AlreadyExists).class(), ErrorClass::Retryable);
        assert_eq!(from(Code::NotFound).class(), ErrorClass::Systemic);
        assert_eq!(from(Code::FailedPrecondition).class(), ErrorClass::Systemic);
        assert_eq!(from(Code::InvalidArgument).class(), ErrorClass::Permanent);
        assert_eq!(from(Code::PermissionDenied).class(), ErrorClass::Systemic);
    }

    fn tonic_status(
        code: firestore::gcloud_sdk::tonic::Code,
    ) -> firestore::gcloud_sdk::tonic::Status {
        firestore::gcloud_sdk::tonic::Status::new(code, "x")
    }

    #[test]
    fn bad_configuration_names_the_key() {
        let e = FirestoreConfig::new("", "casesync").validate().unwrap_err();
        assert!(e.to_string().contains("firestore.project_id"), "{e}");
        let e = FirestoreConfig::new("p", "a/b").validate().unwrap_err();
        assert!(e.to_string().contains("firestore.database_id"), "{e}");
        assert!(FirestoreConfig::new("p", "casesync").validate().is_ok());
        let parsed: FirestoreConfig = toml::from_str("project_id = \"p\"").unwrap();
        assert_eq!(parsed.database_id, DEFAULT_DATABASE_ID);
    }
}
