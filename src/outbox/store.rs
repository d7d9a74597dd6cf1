//! The storage interface of the outbox: what the writer and the relay need from an
//! engine, and nothing about how it is done.

use crate::record::{Placement, Record, StoredRecord};

/// A storage engine failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// The database does not give the durability ponte promises.
    #[error("outbox durability check failed: {0}")]
    Durability(String),
    /// An existing outbox table lacks a column of the compatibility contract.
    #[error("outbox table has no column {0}; it was not made by ponte or the middleware")]
    MissingColumn(&'static str),
}

/// What Kafka said about one stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Outbox row id of the record.
    pub id: i64,
    /// When the report arrived, ms since the Unix epoch.
    pub at_ms: i64,
    /// Where Kafka put it, or why the send failed.
    pub result: Result<Placement, String>,
}

/// The write side of an outbox engine, owned by the single writer thread.
pub trait Store: Send {
    /// Durably appends `records` (returning their row ids, in order) and writes
    /// `outcomes`, all in one transaction. When this returns `Ok`, everything in it
    /// survives a crash or a power loss.
    fn commit(&mut self, records: &[&Record], outcomes: &[Outcome])
    -> Result<Vec<i64>, StoreError>;
}

/// The read side of an outbox engine: a separate connection that never blocks the
/// writer.
pub trait Backlog: Send {
    /// Rows still owed to Kafka (`pending` or `failed`) with `after < id < before`,
    /// in id order, at most `limit` of them.
    fn unsent(
        &mut self,
        after: i64,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError>;

    /// Number of rows with status `pending`.
    fn count_pending(&mut self) -> Result<u64, StoreError>;
}
