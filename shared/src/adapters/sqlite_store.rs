//! The embedded `MappingStore`: mappings and the poll bookkeeping in a SQLite file, for the
//! local runner. Transactions give the same guarantees the Firestore store gets from its
//! transactions: one mapping per key, one lease holder, fields owned by their writers.

use super::{from_millis, open_sqlite, to_millis};
use crate::domain::{CaseMapping, CompanyCaseKey, Global, GoogleCaseKey, Lease, Side};
use crate::error::{PortError, PortResult};
use crate::ports::{InsertOutcome, LeaseOutcome, MappingStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS mappings (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    resolved_at INTEGER,
    lease_holder TEXT,
    lease_until INTEGER,
    google_pending_since INTEGER,
    company_pending_since INTEGER,
    outage_google INTEGER NOT NULL DEFAULT 0,
    outage_company INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS mappings_by_resolved_at ON mappings(resolved_at);
CREATE TABLE IF NOT EXISTS mapping_keys (
    key TEXT PRIMARY KEY,
    mapping_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mapping_keys_by_mapping ON mapping_keys(mapping_id);
CREATE TABLE IF NOT EXISTS global (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    doc TEXT NOT NULL
);
";

pub struct SqliteStore {
    conn: Mutex<Connection>,
    writes: AtomicU64,
}

fn google_key_entry(key: &GoogleCaseKey) -> String {
    format!("google:{key}")
}

fn company_key_entry(key: &CompanyCaseKey) -> String {
    format!("company:{key}")
}

fn db_err(operation: &str) -> impl Fn(rusqlite::Error) -> PortError + '_ {
    move |e| PortError::store(operation, e)
}

impl SqliteStore {
    pub fn open(path: &Path) -> PortResult<Self> {
        let conn = open_sqlite(path).map_err(db_err("open the mapping store"))?;
        conn.execute_batch(SCHEMA)
            .map_err(db_err("create the mapping tables"))?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            writes: AtomicU64::new(0),
        })
    }

    /// Write transactions committed since opening: lets tests prove a poll's cost is
    /// bounded (invariant 7).
    pub fn write_count(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    fn with_tx<T>(
        &self,
        operation: &str,
        f: impl FnOnce(&Transaction<'_>) -> PortResult<T>,
    ) -> PortResult<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db_err(operation))?;
        let out = f(&tx)?;
        tx.commit().map_err(db_err(operation))?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(out)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> PortResult<T>) -> PortResult<T> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&conn)
    }
}

const MAPPING_COLUMNS: &str = "doc, lease_holder, lease_until, google_pending_since, company_pending_since, outage_google, outage_company";

fn mapping_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<CaseMapping, String>> {
    let doc: String = row.get(0)?;
    let holder: Option<String> = row.get(1)?;
    let until: Option<i64> = row.get(2)?;
    let google_pending: Option<i64> = row.get(3)?;
    let company_pending: Option<i64> = row.get(4)?;
    let outage_google: bool = row.get(5)?;
    let outage_company: bool = row.get(6)?;
    Ok(serde_json::from_str::<CaseMapping>(&doc)
        .map(|mut m| {
            m.lease = match (holder, until) {
                (Some(holder), Some(until)) => Some(Lease {
                    holder,
                    until: from_millis(until),
                }),
                _ => None,
            };
            m.google_pending_since = google_pending.map(from_millis);
            m.company_pending_since = company_pending.map(from_millis);
            m.outage_comment_sent_to_google = outage_google;
            m.outage_comment_sent_to_company = outage_company;
            m
        })
        .map_err(|e| e.to_string()))
}

fn load(conn: &Connection, id: &str) -> PortResult<Option<CaseMapping>> {
    let row = conn
        .query_row(
            &format!("SELECT {MAPPING_COLUMNS} FROM mappings WHERE id = ?1"),
            params![id],
            mapping_from_row,
        )
        .optional()
        .map_err(db_err("read a mapping"))?;
    match row {
        None => Ok(None),
        Some(Ok(m)) => Ok(Some(m)),
        Some(Err(e)) => Err(PortError::permanent(
            "read a mapping",
            format!("mapping {id} is corrupt: {e}"),
        )),
    }
}

fn load_by_key(conn: &Connection, key: &str) -> PortResult<Option<CaseMapping>> {
    let id: Option<String> = conn
        .query_row(
            "SELECT mapping_id FROM mapping_keys WHERE key = ?1",
            params![key],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err("look up a mapping key"))?;
    match id {
        Some(id) => load(conn, &id),
        None => Ok(None),
    }
}

/// The document as stored: the sync-owned fields only. Lease, pending marks and outage
/// flags live in their own columns, written by their own operations.
fn sync_owned_doc(m: &CaseMapping) -> PortResult<String> {
    let mut doc = m.clone();
    doc.lease = None;
    doc.google_pending_since = None;
    doc.company_pending_since = None;
    doc.outage_comment_sent_to_google = false;
    doc.outage_comment_sent_to_company = false;
    serde_json::to_string(&doc).map_err(|e| PortError::permanent("encode a mapping", e.to_string()))
}

fn key_entries(m: &CaseMapping) -> Vec<String> {
    let mut entries = Vec::new();
    if let Some(k) = m.google_key() {
        entries.push(google_key_entry(&k));
    }
    if let Some(k) = m.company_key() {
        entries.push(company_key_entry(&k));
    }
    entries
}

/// Claims the key entries of a mapping's keys, all or none: returns the other mapping that
/// already holds one of them, if any, without writing.
fn claim_keys(tx: &Transaction<'_>, m: &CaseMapping) -> PortResult<Option<String>> {
    let entries = key_entries(m);
    let mut missing = Vec::new();
    for entry in entries {
        let owner: Option<String> = tx
            .query_row(
                "SELECT mapping_id FROM mapping_keys WHERE key = ?1",
                params![entry],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err("look up a mapping key"))?;
        match owner {
            Some(owner) if owner != m.id => return Ok(Some(owner)),
            Some(_) => {}
            None => missing.push(entry),
        }
    }
    for entry in missing {
        tx.execute(
            "INSERT INTO mapping_keys (key, mapping_id) VALUES (?1, ?2)",
            params![entry, m.id],
        )
        .map_err(db_err("write a mapping key"))?;
    }
    Ok(None)
}

#[async_trait]
impl MappingStore for SqliteStore {
    async fn find_by_google(&self, key: &GoogleCaseKey) -> PortResult<Option<CaseMapping>> {
        self.read(|c| load_by_key(c, &google_key_entry(key)))
    }

    async fn find_by_company(&self, key: &CompanyCaseKey) -> PortResult<Option<CaseMapping>> {
        self.read(|c| load_by_key(c, &company_key_entry(key)))
    }

    async fn get(&self, id: &str) -> PortResult<Option<CaseMapping>> {
        self.read(|c| load(c, id))
    }

    async fn insert_new(&self, mapping: &CaseMapping) -> PortResult<InsertOutcome> {
        let doc = sync_owned_doc(mapping)?;
        self.with_tx("insert a mapping", |tx| {
            if load(tx, &mapping.id)?.is_some() {
                return Ok(InsertOutcome::AlreadyMapped(mapping.id.clone()));
            }
            if let Some(owner) = claim_keys(tx, mapping)? {
                return Ok(InsertOutcome::AlreadyMapped(owner));
            }
            tx.execute(
                "INSERT INTO mappings (id, doc, resolved_at, google_pending_since, company_pending_since) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    mapping.id,
                    doc,
                    mapping.resolved_at.map(to_millis),
                    mapping.google_pending_since.map(to_millis),
                    mapping.company_pending_since.map(to_millis)
                ],
            )
            .map_err(db_err("insert a mapping"))?;
            Ok(InsertOutcome::Created)
        })
    }

    async fn acquire_lease(
        &self,
        id: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<LeaseOutcome> {
        self.with_tx("take a lease", |tx| {
            let Some(mut m) = load(tx, id)? else {
                return Ok(LeaseOutcome::Missing);
            };
            if let Some(lease) = &m.lease
                && lease.holder != holder
                && lease.until > now
            {
                return Err(PortError::LeaseHeld {
                    mapping_id: id.to_string(),
                    until: lease.until.to_rfc3339(),
                });
            }
            tx.execute(
                "UPDATE mappings SET lease_holder = ?2, lease_until = ?3 WHERE id = ?1",
                params![id, holder, to_millis(until)],
            )
            .map_err(db_err("take a lease"))?;
            m.lease = Some(Lease {
                holder: holder.to_string(),
                until,
            });
            Ok(LeaseOutcome::Acquired(Box::new(m)))
        })
    }

    async fn save_synced(&self, mapping: &CaseMapping, holder: &str) -> PortResult<()> {
        let doc = sync_owned_doc(mapping)?;
        self.with_tx("save a mapping", |tx| {
            let current: Option<Option<String>> = tx
                .query_row(
                    "SELECT lease_holder FROM mappings WHERE id = ?1",
                    params![mapping.id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err("save a mapping"))?;
            if current.flatten().as_deref() != Some(holder) {
                return Err(PortError::LeaseLost {
                    mapping_id: mapping.id.clone(),
                });
            }
            if let Some(owner) = claim_keys(tx, mapping)? {
                return Err(PortError::permanent(
                    "link a mapping",
                    format!(
                        "mapping {} cannot take a key that mapping {owner} already holds",
                        mapping.id
                    ),
                ));
            }
            tx.execute(
                "UPDATE mappings SET doc = ?2, resolved_at = ?3 WHERE id = ?1",
                params![mapping.id, doc, mapping.resolved_at.map(to_millis)],
            )
            .map_err(db_err("save a mapping"))?;
            Ok(())
        })
    }

    async fn renew_lease(&self, id: &str, holder: &str, until: DateTime<Utc>) -> PortResult<()> {
        self.with_tx("renew a lease", |tx| {
            let changed = tx
                .execute(
                    "UPDATE mappings SET lease_until = ?3 WHERE id = ?1 AND lease_holder = ?2",
                    params![id, holder, to_millis(until)],
                )
                .map_err(db_err("renew a lease"))?;
            if changed == 0 {
                return Err(PortError::LeaseLost {
                    mapping_id: id.to_string(),
                });
            }
            Ok(())
        })
    }

    async fn release_lease(&self, id: &str, holder: &str) -> PortResult<()> {
        self.with_tx("release a lease", |tx| {
            tx.execute(
                "UPDATE mappings SET lease_holder = NULL, lease_until = NULL WHERE id = ?1 AND lease_holder = ?2",
                params![id, holder],
            )
            .map_err(db_err("release a lease"))?;
            Ok(())
        })
    }

    async fn mark_pending(&self, id: &str, side: Side, at: DateTime<Utc>) -> PortResult<()> {
        let column = pending_column(side);
        self.with_tx("mark a sync pending", |tx| {
            tx.execute(
                &format!(
                    "UPDATE mappings SET {column} = MAX(COALESCE({column}, ?2), ?2) WHERE id = ?1"
                ),
                params![id, to_millis(at)],
            )
            .map_err(db_err("mark a sync pending"))?;
            Ok(())
        })
    }

    async fn clear_pending(
        &self,
        id: &str,
        side: Side,
        started_at: DateTime<Utc>,
    ) -> PortResult<()> {
        let column = pending_column(side);
        self.with_tx("clear a pending mark", |tx| {
            tx.execute(
                &format!("UPDATE mappings SET {column} = NULL WHERE id = ?1 AND {column} <= ?2"),
                params![id, to_millis(started_at)],
            )
            .map_err(db_err("clear a pending mark"))?;
            Ok(())
        })
    }

    async fn set_outage_flag(&self, id: &str, side: Side, sent: bool) -> PortResult<()> {
        let column = match side {
            Side::Google => "outage_google",
            Side::Company => "outage_company",
        };
        self.with_tx("set an outage flag", |tx| {
            tx.execute(
                &format!("UPDATE mappings SET {column} = ?2 WHERE id = ?1"),
                params![id, sent],
            )
            .map_err(db_err("set an outage flag"))?;
            Ok(())
        })
    }

    async fn list_open(&self) -> PortResult<Vec<CaseMapping>> {
        self.read(|c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {MAPPING_COLUMNS} FROM mappings WHERE resolved_at IS NULL ORDER BY id"
                ))
                .map_err(db_err("list open mappings"))?;
            let rows = stmt
                .query_map([], mapping_from_row)
                .map_err(db_err("list open mappings"))?;
            let mut out = Vec::new();
            for row in rows {
                match row.map_err(db_err("list open mappings"))? {
                    Ok(m) => out.push(m),
                    Err(e) => {
                        tracing::error!(error = %e, "skipping a corrupt mapping in the outage scan")
                    }
                }
            }
            Ok(out)
        })
    }

    async fn delete_resolved_before(&self, cutoff: DateTime<Utc>) -> PortResult<Vec<String>> {
        self.with_tx("delete resolved mappings", |tx| {
            let ids: Vec<String> = {
                let mut stmt = tx
                    .prepare("SELECT id FROM mappings WHERE resolved_at IS NOT NULL AND resolved_at < ?1")
                    .map_err(db_err("delete resolved mappings"))?;
                let rows = stmt
                    .query_map(params![to_millis(cutoff)], |r| r.get::<_, String>(0))
                    .map_err(db_err("delete resolved mappings"))?;
                rows.collect::<Result<_, _>>().map_err(db_err("delete resolved mappings"))?
            };
            for id in &ids {
                tx.execute("DELETE FROM mapping_keys WHERE mapping_id = ?1", params![id])
                    .map_err(db_err("delete resolved mappings"))?;
                tx.execute("DELETE FROM mappings WHERE id = ?1", params![id])
                    .map_err(db_err("delete resolved mappings"))?;
            }
            Ok(ids)
        })
    }

    async fn global(&self) -> PortResult<Global> {
        self.read(read_global)
    }

    async fn advance_poll(&self, side: Side, polled_at: DateTime<Utc>) -> PortResult<Global> {
        self.with_tx("advance the poll time", |tx| {
            let mut g = read_global(tx)?;
            g.advance(side, polled_at);
            let doc = serde_json::to_string(&g).map_err(|e| PortError::permanent("encode Global", e.to_string()))?;
            tx.execute(
                "INSERT INTO global (id, doc) VALUES (1, ?1) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
                params![doc],
            )
            .map_err(db_err("advance the poll time"))?;
            Ok(g)
        })
    }
}

fn pending_column(side: Side) -> &'static str {
    match side {
        Side::Google => "google_pending_since",
        Side::Company => "company_pending_since",
    }
}

fn read_global(conn: &Connection) -> PortResult<Global> {
    let doc: Option<String> = conn
        .query_row("SELECT doc FROM global WHERE id = 1", [], |r| r.get(0))
        .optional()
        .map_err(db_err("read Global"))?;
    match doc {
        None => Ok(Global::default()),
        Some(d) => serde_json::from_str(&d)
            .map_err(|e| PortError::permanent("read Global", format!("Global is corrupt: {e}"))),
    }
}
