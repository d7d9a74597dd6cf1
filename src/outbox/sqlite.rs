//! The SQLite outbox engine: one file, WAL journal, `synchronous=FULL`.
//!
//! The table keeps the old middleware's columns, names and meanings, so that
//! operators' `sqlite3` queries and its existing `outbox.db` files keep working;
//! ponte only adds an index.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::store::{Backlog, Outcome, Store, StoreError};
use crate::record::{Record, StoredRecord};

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

/// Serves the relay's search for unsent rows and the pending count.
const INDEX: &str = "CREATE INDEX IF NOT EXISTS outbox_status_id ON outbox (status, id)";

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

/// How long a statement waits for a lock held by someone else, such as an operator
/// running `sqlite3` on the live file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The write side: owned by the writer thread.
#[derive(Debug)]
pub struct SqliteStore {
    connection: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the outbox at `path`, sets and verifies its
    /// durability settings, and creates or checks the table.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        require_durability(&connection)?;
        connection.execute_batch(TABLE)?;
        require_contract_columns(&connection)?;
        connection.execute_batch(INDEX)?;
        Ok(SqliteStore {
            connection,
            path: path.to_owned(),
        })
    }

    /// Opens a read-only connection to the same file, for the relay or for `/health`.
    pub fn backlog(&self) -> Result<SqliteBacklog, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(&self.path, flags)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        Ok(SqliteBacklog { connection })
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

fn require_contract_columns(connection: &Connection) -> Result<(), StoreError> {
    let mut statement = connection.prepare("SELECT name FROM pragma_table_info('outbox')")?;
    let present = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    match CONTRACT_COLUMNS
        .iter()
        .find(|c| !present.iter().any(|p| p == *c))
    {
        Some(missing) => Err(StoreError::MissingColumn(missing)),
        None => Ok(()),
    }
}

impl Store for SqliteStore {
    fn commit(
        &mut self,
        records: &[&Record],
        outcomes: &[Outcome],
    ) -> Result<Vec<i64>, StoreError> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ids = insert_records(&transaction, records)?;
        write_outcomes(&transaction, outcomes)?;
        transaction.commit()?;
        Ok(ids)
    }
}

fn insert_records(connection: &Connection, records: &[&Record]) -> Result<Vec<i64>, StoreError> {
    let mut insert = connection.prepare_cached(
        "INSERT INTO outbox (message_id, topic, key, value, timestamp, status, retry_count,
                             created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?5)",
    )?;
    let mut ids = Vec::with_capacity(records.len());
    for record in records {
        insert.execute(params![
            record.message_id,
            record.topic,
            record.key,
            record.value,
            record.timestamp_ms,
        ])?;
        ids.push(connection.last_insert_rowid());
    }
    Ok(ids)
}

fn write_outcomes(connection: &Connection, outcomes: &[Outcome]) -> Result<(), StoreError> {
    let mut sent = connection.prepare_cached(
        "UPDATE outbox SET status = 'sent', sent_at = ?2, kafka_partition = ?3,
                           kafka_offset = ?4, last_error = NULL
         WHERE id = ?1",
    )?;
    let mut failed = connection.prepare_cached(
        "UPDATE outbox SET status = 'failed', retry_count = coalesce(retry_count, 0) + 1,
                           last_error = ?2
         WHERE id = ?1 AND status IN ('pending', 'failed')",
    )?;
    for outcome in outcomes {
        match &outcome.result {
            Ok(placement) => sent.execute(params![
                outcome.id,
                outcome.at_ms,
                placement.partition,
                placement.offset.to_string(),
            ])?,
            Err(reason) => failed.execute(params![outcome.id, reason])?,
        };
    }
    Ok(())
}

/// A read-only connection for finding unsent rows and counting them.
#[derive(Debug)]
pub struct SqliteBacklog {
    connection: Connection,
}

impl Backlog for SqliteBacklog {
    fn unsent(
        &mut self,
        after: i64,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let Some(first) = self.first_unsent_after(after)? else {
            return Ok(Vec::new());
        };
        // The unary `+` keeps SQLite from using the status index here: a scan along
        // the primary key from `first` returns rows already in id order, where the
        // index would have to merge two status ranges for every page.
        let mut select = self.connection.prepare_cached(
            "SELECT id, message_id, topic, key, value, timestamp, coalesce(retry_count, 0)
             FROM outbox
             WHERE id >= ?1 AND id < ?2 AND +status IN ('pending', 'failed')
             ORDER BY id LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = select.query_map(params![first, before.unwrap_or(i64::MAX), limit], |row| {
            Ok(StoredRecord {
                id: row.get(0)?,
                record: Record {
                    message_id: row.get(1)?,
                    topic: row.get(2)?,
                    key: row.get(3)?,
                    value: row.get(4)?,
                    timestamp_ms: row.get(5)?,
                },
                retry_count: row.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn count_pending(&mut self) -> Result<u64, StoreError> {
        let count: i64 = self.connection.query_row(
            "SELECT count(*) FROM outbox WHERE status = 'pending'",
            [],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

impl SqliteBacklog {
    /// The smallest unsent id above `after`, found through the status index.
    fn first_unsent_after(&self, after: i64) -> Result<Option<i64>, StoreError> {
        let mut smallest = self
            .connection
            .prepare_cached("SELECT min(id) FROM outbox WHERE status = ?1 AND id > ?2")?;
        let mut first: Option<i64> = None;
        for status in ["pending", "failed"] {
            let found: Option<i64> = smallest
                .query_row(params![status, after], |row| row.get(0))
                .optional()?
                .flatten();
            first = match (first, found) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(first)
    }
}

#[cfg(test)]
mod tests;
