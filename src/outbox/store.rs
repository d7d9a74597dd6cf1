//! The storage interface of the outbox: what the writer, the relay and the status
//! API need from an engine, and nothing about how it is done.

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
    /// What became of it.
    pub settled: Settled,
}

/// The fate of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Kafka acknowledged it here.
    Sent(Placement),
    /// The send failed; the row stays owed to Kafka.
    Failed {
        /// Why.
        error: String,
        /// `retriable`, `permanent` or `unknown`.
        class: &'static str,
        /// Whether it counts toward the dead-letter limit (`retry_count`).
        counts: bool,
        /// When it may be sent again, for failures of the record's own.
        next_attempt_at_ms: Option<i64>,
    },
    /// Its copy reached the dead-letter topic.
    DeadLettered,
}

/// A client's promise that a repeat of this request is the same record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The client's key (`Idempotency-Key`, or `message_id` in the body).
    pub key: String,
    /// Hash of topic, key and value: a repeat must carry the same.
    pub fingerprint: String,
}

/// One record to append, with its idempotency key if the client gave one.
#[derive(Debug, Clone, Copy)]
pub struct Append<'a> {
    /// The record.
    pub record: &'a Record,
    /// Its idempotency key and fingerprint.
    pub idempotency: Option<&'a Idempotency>,
}

/// What happened to one append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored as a new row with this id.
    Stored(i64),
    /// The key was seen within the window: nothing stored, here is the first row.
    Repeat(Box<RowView>),
}

/// The result of one group commit.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Commit {
    /// One entry per append, in order.
    pub appended: Vec<Appended>,
    /// Rows that stopped being owed to Kafka (sent or dead-lettered).
    pub settled: u64,
}

/// A change an operator asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Send one record again now, whatever its state but `sent`.
    Retry {
        /// The record's message id.
        message_id: String,
    },
    /// Send dead-lettered records again, optionally only some.
    Replay(ReplayFilter),
    /// Hold records back behind an earlier record of the same key that failed.
    Defer {
        /// Their row ids.
        ids: Vec<i64>,
    },
}

/// Which dead-lettered records a replay takes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayFilter {
    /// Only this topic.
    pub topic: Option<String>,
    /// Only records that arrived at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only records that arrived before this time (ms since the epoch).
    pub until_ms: Option<i64>,
    /// At most this many records (the oldest first); `None` for all at once.
    pub limit: Option<usize>,
}

/// Records replayed per writer turn, so that a large replay never holds up
/// ingestion for long.
pub const REPLAY_BATCH: usize = 10_000;

/// Everything the status API shows about one record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowView {
    /// Outbox row id.
    pub id: i64,
    /// The id returned to the client.
    pub message_id: String,
    /// Target topic.
    pub topic: String,
    /// Record key.
    #[serde(flatten)]
    pub key: Option<KeyView>,
    /// `pending`, `sent`, `failed` or `dlq`.
    pub status: String,
    /// Sends that failed, of any kind.
    pub attempts: i64,
    /// Failures that count toward the dead-letter limit.
    pub retry_count: i64,
    /// The latest failure.
    pub last_error: Option<String>,
    /// The class of the latest failure: `retriable`, `permanent` or `unknown`.
    pub failure_class: Option<String>,
    /// Arrival time, ms since the epoch.
    pub created_at: i64,
    /// When Kafka acknowledged it.
    pub sent_at: Option<i64>,
    /// When its copy reached the dead-letter topic.
    pub dead_lettered_at: Option<i64>,
    /// When it will be sent again, if a retry is scheduled.
    pub next_attempt_at: Option<i64>,
    /// Partition Kafka assigned.
    pub partition: Option<i32>,
    /// Offset Kafka assigned.
    pub offset: Option<i64>,
    /// Fingerprint of the request, when it carried an idempotency key.
    #[serde(skip)]
    pub fingerprint: Option<String>,
}

/// A record key as the status API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum KeyView {
    /// A UTF-8 key, as text.
    #[serde(rename = "key")]
    Text(String),
    /// Any other key, in base64.
    #[serde(rename = "key_base64")]
    Binary(String),
}

impl std::fmt::Display for KeyView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyView::Text(text) => f.write_str(text),
            KeyView::Binary(base64) => write!(f, "base64:{base64}"),
        }
    }
}

impl RowView {
    /// Where Kafka put the record, once it did.
    pub fn placement(&self) -> Option<Placement> {
        match (self.status.as_str(), self.partition, self.offset) {
            ("sent", Some(partition), Some(offset)) => Some(Placement { partition, offset }),
            _ => None,
        }
    }
}

/// How many rows the outbox holds in each state, and how old its oldest unsent
/// record is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StatusCounts {
    /// Rows with status `pending`.
    pub pending: u64,
    /// Rows with status `sent`.
    pub sent: u64,
    /// Rows with status `failed`.
    pub failed: u64,
    /// Rows with status `dlq`.
    pub dlq: u64,
    /// Arrival time (ms since the epoch) of the oldest `pending` or `failed` row.
    pub oldest_unsent_ms: Option<i64>,
}

impl StatusCounts {
    /// All rows.
    pub fn total(&self) -> u64 {
        self.pending + self.sent + self.failed + self.dlq
    }
}

/// One administrative action, kept in the outbox database for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// Who: the API key's name, `anonymous`, or `cli:` and the operator's user.
    pub actor: String,
    /// What: `topic.create`, `topic.delete`, `record.retry`, `records.replay`,
    /// `records.purge`.
    pub action: String,
    /// On what: a topic, a message id, or a filter.
    pub target: String,
}

impl AuditEntry {
    /// An entry made now, also logged (target `audit`).
    pub fn now(actor: &str, action: &str, target: String) -> AuditEntry {
        tracing::info!(target: "audit", actor, action, target = %target, "administrative action");
        AuditEntry {
            at_ms: crate::record::now_ms(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target,
        }
    }
}

/// Which rows a purge deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeFilter {
    /// Only rows with this status (`sent`, `dlq`, `failed` or `pending`).
    pub status: String,
    /// Only rows for this topic.
    pub topic: Option<String>,
    /// Only rows whose last change (sent, dead-lettered or arrived) is older.
    pub before_ms: i64,
}

/// Which records a listing shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFilter {
    /// Only this status.
    pub status: Option<String>,
    /// Only this topic.
    pub topic: Option<String>,
    /// Only records that arrived at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only records that arrived before this time (ms since the epoch).
    pub until_ms: Option<i64>,
    /// Only records with a larger row id (the previous page's `next`).
    pub after_id: i64,
    /// Most records in the page.
    pub limit: usize,
}

/// The write side of an outbox engine, owned by the single writer thread.
pub trait Store: Send {
    /// Durably appends records (or finds their idempotent repeats) and writes
    /// `outcomes`, all in one transaction. When this returns `Ok`, everything in it
    /// survives a crash or a power loss.
    fn commit(
        &mut self,
        appends: &[Append<'_>],
        outcomes: &[Outcome],
    ) -> Result<Commit, StoreError>;

    /// Applies an operator's change durably; returns how many rows it touched.
    fn change(&mut self, change: &Change) -> Result<u64, StoreError>;

    /// Rows still owed to Kafka (`pending` or `failed`).
    fn count_unsent(&mut self) -> Result<u64, StoreError>;

    /// Deletes at most `limit` rows matching `filter`, oldest first; returns how many.
    fn purge(&mut self, filter: &PurgeFilter, limit: usize) -> Result<u64, StoreError>;

    /// Forgets at most `limit` idempotency keys of rows that arrived before
    /// `before_ms`; returns how many.
    fn expire_keys(&mut self, before_ms: i64, limit: usize) -> Result<u64, StoreError>;

    /// Gives up to `pages` free pages back to the file system (`u32::MAX`: all).
    fn reclaim(&mut self, pages: u32) -> Result<(), StoreError>;

    /// Keeps an administrative action in the audit trail.
    fn audit(&mut self, entry: &AuditEntry) -> Result<(), StoreError>;
}

/// The read side of an outbox engine: separate connections that never block the
/// writer.
pub trait Backlog: Send {
    /// Unscheduled rows still owed to Kafka (`pending` or `failed`, no
    /// `next_attempt_at`) with `after < id < before`, in id order, at most `limit`.
    fn unsent(
        &mut self,
        after: i64,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError>;

    /// Scheduled rows owed to Kafka whose time has come (`next_attempt_at <=
    /// now_ms`), with `id > after`, in id order, at most `limit`.
    fn scheduled(
        &mut self,
        after: i64,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError>;

    /// The earliest `next_attempt_at` among scheduled rows owed to Kafka.
    fn next_scheduled_at(&mut self) -> Result<Option<i64>, StoreError>;

    /// Rows that failed for a reason of their own and wait for a retry, in id order.
    fn failing(&mut self) -> Result<Vec<StoredRecord>, StoreError>;

    /// One row by id.
    fn get(&mut self, id: i64) -> Result<Option<StoredRecord>, StoreError>;

    /// One row by message id.
    fn find(&mut self, message_id: &str) -> Result<Option<RowView>, StoreError>;

    /// A page of rows, in id order.
    fn list(&mut self, filter: &ListFilter) -> Result<Vec<RowView>, StoreError>;

    /// Rows per status and the age of the oldest unsent one.
    fn counts(&mut self) -> Result<StatusCounts, StoreError>;
}
