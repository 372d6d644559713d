//! Implementations of the ports: the embedded SQLite store and queue used by the local
//! runner (and by tests), and the real API clients.

#[cfg(any(
    feature = "csapi",
    feature = "jira",
    feature = "rt",
    feature = "pubsub"
))]
pub mod body_cap;
#[cfg(feature = "csapi")]
pub mod csapi;
#[cfg(feature = "firestore")]
pub mod firestore_store;
#[cfg(any(feature = "csapi", feature = "firestore", feature = "pubsub"))]
pub mod google_errors;
#[cfg(any(feature = "jira", feature = "rt"))]
pub mod http_support;
#[cfg(feature = "jira")]
pub mod jira;
#[cfg(feature = "pubsub")]
pub mod pubsub;
pub mod registry;
#[cfg(feature = "rt")]
pub mod rt;
pub mod sqlite_queue;
pub mod sqlite_store;

pub(crate) fn to_millis(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Opens a SQLite file the way both embedded adapters want it: WAL so the store and the
/// queue can share the file, a busy timeout so concurrent writers wait instead of failing,
/// and full sync so an acknowledged write survives a crash.
pub(crate) fn open_sqlite(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}
