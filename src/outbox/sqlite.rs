//! The SQLite outbox engine: one file, WAL journal, `synchronous=FULL`.
//!
//! The table keeps the old middleware's columns, names and meanings, so that
//! operators' `sqlite3` queries and its existing `outbox.db` files keep working.
//! ponte adds columns of its own (retry schedule, attempts, idempotency keys) and
//! indexes; it adds them to an existing table when it first opens it.

mod read;
mod write;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::store::StoreError;
pub use read::SqliteBacklog;

const TABLE: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id      TEXT UNIQUE NOT NULL,
    topic           TEXT NOT NULL,
    key             TEXT,
    value           TEXT NOT NULL,
    timestamp       INTEGER NOT NULL,
    status          TEXT DEFAULT 'pending',
    retry_count     INTEGER DEFAULT 0,
    last_error      TEXT,
    created_at      INTEGER,
    sent_at         INTEGER,
    kafka_offset    TEXT,
    kafka_partition INTEGER
)";

/// The compatibility contract's columns; an existing table must have them all.
const CONTRACT_COLUMNS: [&str; 13] = [
    "id",
    "message_id",
    "topic",
    "key",
    "value",
    "timestamp",
    "status",
    "retry_count",
    "last_error",
    "created_at",
    "sent_at",
    "kafka_offset",
    "kafka_partition",
];

/// Columns ponte adds, with their definitions.
const PONTE_COLUMNS: [(&str, &str); 10] = [
    // When a record that failed for a reason of its own is due again (ms); also
    // set (to 0) by operators' retries and replays. NULL for the ordinary path.
    ("next_attempt_at", "INTEGER"),
    // Sends that failed, of any kind (retry_count counts only the kinds that lead
    // to the dead-letter topic).
    ("attempts", "INTEGER DEFAULT 0"),
    // The class of the latest failure: retriable, permanent or unknown.
    ("failure_class", "TEXT"),
    ("dead_lettered_at", "INTEGER"),
    ("idempotency_key", "TEXT"),
    ("fingerprint", "TEXT"),
    // The client's Kafka headers, as a JSON array of {"name", "value" (base64)};
    // NULL without any.
    ("headers", "TEXT"),
    // The partition the client asked for; NULL lets the partitioner choose.
    ("target_partition", "INTEGER"),
    // The Kafka record timestamp the client asked for (ms); NULL for send time.
    ("record_timestamp", "INTEGER"),
    // 1 for a record whose Kafka value is null (a tombstone); `value` is then ''.
    // Keys and values that are not UTF-8 are stored as BLOBs in `key` and `value`.
    ("null_value", "INTEGER"),
];

const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS outbox_status_id ON outbox (status, id);
CREATE INDEX IF NOT EXISTS outbox_scheduled ON outbox (id) WHERE next_attempt_at IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS outbox_idempotency_key ON outbox (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_sent_at ON outbox (sent_at) WHERE status = 'sent';
";

/// Row counts per status, kept exact by triggers in the same transactions as the
/// changes (operators' edits in `sqlite3` included), so that `/health` and
/// `/metrics` never have to count millions of rows.
const COUNTS: &str = "
CREATE TABLE outbox_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO outbox_counts (status, n)
    SELECT coalesce(status, 'pending'), count(*) FROM outbox GROUP BY 1;
CREATE TRIGGER outbox_counts_insert AFTER INSERT ON outbox BEGIN
    INSERT INTO outbox_counts (status, n) VALUES (coalesce(NEW.status, 'pending'), 1)
        ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER outbox_counts_update AFTER UPDATE OF status ON outbox
    WHEN coalesce(OLD.status, 'pending') IS NOT coalesce(NEW.status, 'pending') BEGIN
    UPDATE outbox_counts SET n = n - 1 WHERE status = coalesce(OLD.status, 'pending');
    INSERT INTO outbox_counts (status, n) VALUES (coalesce(NEW.status, 'pending'), 1)
        ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER outbox_counts_delete AFTER DELETE ON outbox BEGIN
    UPDATE outbox_counts SET n = n - 1 WHERE status = coalesce(OLD.status, 'pending');
END;
";

/// The audit trail of administrative actions (topics, retries, replays, purges).
const AUDIT: &str = "
CREATE TABLE IF NOT EXISTS audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL
)";

/// How long a statement waits for a lock held by someone else, such as an operator
/// running `sqlite3` on the live file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The write side: owned by the writer thread.
#[derive(Debug)]
pub struct SqliteStore {
    connection: Connection,
    path: PathBuf,
    idempotency_window_ms: i64,
}

impl SqliteStore {
    /// Opens (creating if needed) the outbox at `path`, sets and verifies its
    /// durability settings, and creates, checks or completes the table.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        // Takes effect only on a new file (before its first table): deleted rows'
        // pages can then be given back to the file system by `reclaim`.
        connection.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")?;
        require_durability(&connection)?;
        connection.execute_batch(TABLE)?;
        add_missing_columns(&connection)?;
        connection.execute_batch(INDEXES)?;
        add_counts(&connection)?;
        connection.execute_batch(AUDIT)?;
        Ok(SqliteStore {
            connection,
            path: path.to_owned(),
            idempotency_window_ms: i64::MAX,
        })
    }

    /// Sets how long idempotency keys are remembered.
    pub fn with_idempotency_window(mut self, window: Duration) -> SqliteStore {
        self.idempotency_window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        self
    }

    /// Opens a read-only connection to the same file, for the relay or the API.
    pub fn backlog(&self) -> Result<SqliteBacklog, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(&self.path, flags)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        Ok(SqliteBacklog::new(connection))
    }
}

/// Sets WAL and `synchronous=FULL`, then reads both back: a file system or build
/// that silently refuses either would break the promise made to clients.
fn require_durability(connection: &Connection) -> Result<(), StoreError> {
    let journal: String = connection.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !journal.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Durability(format!(
            "journal_mode is {journal}, WAL was requested"
        )));
    }

    connection.execute_batch("PRAGMA synchronous = FULL")?;
    let synchronous: i64 = connection.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    const FULL: i64 = 2;
    if synchronous != FULL {
        return Err(StoreError::Durability(format!(
            "synchronous is {synchronous}, FULL (2) was requested"
        )));
    }
    Ok(())
}

fn add_missing_columns(connection: &Connection) -> Result<(), StoreError> {
    let mut statement = connection.prepare("SELECT name FROM pragma_table_info('outbox')")?;
    let present = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(missing) = CONTRACT_COLUMNS
        .iter()
        .find(|c| !present.iter().any(|p| p == *c))
    {
        return Err(StoreError::MissingColumn(missing));
    }
    for (name, definition) in PONTE_COLUMNS {
        if !present.iter().any(|p| p == name) {
            connection.execute_batch(&format!(
                "ALTER TABLE outbox ADD COLUMN {name} {definition}"
            ))?;
        }
    }
    Ok(())
}

/// Creates the per-status counts, counting the existing rows once, unless they
/// exist already.
fn add_counts(connection: &Connection) -> Result<(), StoreError> {
    let exists: bool = connection.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'outbox_counts'",
        [],
        |row| row.get(0),
    )?;
    if !exists {
        connection.execute_batch(&format!("BEGIN IMMEDIATE; {COUNTS} COMMIT;"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
