//! The durable outbox: a record is written here, and fsynced, before its client
//! hears anything, so that nothing acknowledged is ever lost.
//!
//! # Record states
//!
//! The `status` column holds one of:
//!
//! - `pending`: stored, not yet acknowledged by Kafka;
//! - `sent`: Kafka acknowledged it with `acks=all`; `sent_at`, `kafka_partition`
//!   and `kafka_offset` say when and where;
//! - `failed`: the last send failed; `retry_count` counts the failures and
//!   `last_error` holds the latest reason. The row is still owed to Kafka and is
//!   sent again, like a pending one;
//! - `dlq`: given up on and moved to the dead-letter topic.
//!
//! # What is durable when
//!
//! One writer thread owns the only write connection. It takes every request that
//! arrived while its previous commit ran and writes them all in one transaction,
//! ended by one fsync (group commit), so throughput grows with load instead of
//! being capped at one fsync per request. SQLite runs with `journal_mode=WAL` and
//! `synchronous=FULL`, both set and then read back at startup, so a commit returns
//! only once the write-ahead log is on disk. Only then does the client get an
//! answer: a `200`, a `202` or an error always comes after the record is durable,
//! and a `5xx` means it was not stored.
//!
//! Delivery reports from Kafka are written by the same writer, batched into the
//! same group commits. A crash between Kafka's acknowledgement and that commit
//! leaves the row `pending`, and it is sent again after restart: the window in
//! which a record can reach Kafka twice is one commit long.
//!
//! # Ordering
//!
//! Row ids grow in commit order, which is also the order in which clients were
//! answered. The relay hands rows to the producer strictly in id order, straight
//! from memory after each commit, and falls back to reading the outbox when it has
//! fallen behind (see [`crate::relay`]). The producer is idempotent, so librdkafka
//! keeps that order within each partition across its own retries; records with the
//! same key share a partition and so reach Kafka in the order ponte accepted them.
//!
//! # Crash recovery
//!
//! Nothing lives only in memory between the commit and Kafka's acknowledgement:
//! after a crash, the relay starts by reading every `pending` and `failed` row, in
//! id order and in pages (never the whole backlog at once), and sends them before
//! anything newer. Rows set back to `pending` by hand in `sqlite3` (the replay
//! runbook) are picked up the same way at the next start.
//!
//! # Storage engines
//!
//! The writer and the relay see storage only through [`Store`] and [`Backlog`],
//! so that a PostgreSQL outbox shared by several ponte instances can sit behind
//! the same interface. [`sqlite`] is the engine ponte ships with.

pub mod sqlite;
mod store;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::record::{DeliveryWaiter, Record};

pub use store::{
    Append, Appended, Backlog, Change, Commit, Idempotency, ListFilter, Outcome, ReplayFilter,
    RowView, Settled, Store, StoreError,
};
pub use writer::{Committed, WriterLimits, spawn_writer};

/// How many commands may wait for the writer before `append` waits too.
const QUEUE_CAPACITY: usize = 16 * 1024;

/// Why a record could not be stored. Every variant means: not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboxError {
    /// The commit failed (disk full, I/O error, database locked).
    #[error("outbox write failed: {0}")]
    Write(String),
    /// The outbox holds as many undelivered records as it may.
    #[error("the outbox holds {limit} undelivered records, its limit")]
    Full {
        /// The configured limit, `outbox_max_unsent`.
        limit: u64,
    },
    /// ponte is shutting down and takes no new records.
    #[error("ponte is shutting down")]
    ShuttingDown,
}

/// A request to the writer thread.
#[derive(Debug)]
pub enum Command {
    /// Store a record; `answer` hears what became of it once that is durable.
    Append {
        /// The record to store.
        record: Record,
        /// The client's idempotency key, if it gave one.
        idempotency: Option<Idempotency>,
        /// Who waits for Kafka's report on this record, if anyone.
        waiter: Option<DeliveryWaiter>,
        /// Answered once the record is durable (or could not be stored).
        answer: oneshot::Sender<Result<Appended, OutboxError>>,
    },
    /// Write down what Kafka said about a stored record, then run `then`.
    Outcome {
        /// The outcome.
        outcome: Outcome,
        /// Runs once the outcome is durable (and before records committed with it
        /// are handed to the relay), so that whoever it tells sees the outbox
        /// already in its new state.
        then: Option<AfterCommit>,
    },
    /// Apply an operator's change.
    Change {
        /// The change.
        change: Change,
        /// Answered with the number of rows it touched.
        answer: oneshot::Sender<Result<u64, OutboxError>>,
    },
    /// Take no more records, and let the relay finish once it has sent what it has.
    Close,
}

/// Work to run once an outcome is durable.
pub struct AfterCommit(Box<dyn FnOnce() + Send>);

impl AfterCommit {
    /// Wraps `work`.
    pub fn new(work: impl FnOnce() + Send + 'static) -> AfterCommit {
        AfterCommit(Box::new(work))
    }

    fn run(self) {
        (self.0)();
    }
}

impl std::fmt::Debug for AfterCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AfterCommit")
    }
}

/// Whether the last outbox commit succeeded.
#[derive(Debug)]
pub struct WriteHealth {
    writable: AtomicBool,
}

impl WriteHealth {
    /// True unless the latest commit failed.
    pub fn is_writable(&self) -> bool {
        self.writable.load(Ordering::Relaxed)
    }

    fn set(&self, writable: bool) {
        self.writable.store(writable, Ordering::Relaxed);
    }
}

/// The handle through which requests store records; cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    commands: mpsc::Sender<Command>,
    health: Arc<WriteHealth>,
}

impl Outbox {
    /// Creates the handle and the receiving end that [`spawn_writer`] consumes.
    pub fn channel() -> (Outbox, mpsc::Receiver<Command>) {
        let (commands, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let health = Arc::new(WriteHealth {
            writable: AtomicBool::new(true),
        });
        (Outbox { commands, health }, receiver)
    }

    /// Stores `record` durably, or finds the earlier record its idempotency key
    /// names. `waiter`, if given, later hears what Kafka said about a new record.
    pub async fn append(
        &self,
        record: Record,
        idempotency: Option<Idempotency>,
        waiter: Option<DeliveryWaiter>,
    ) -> Result<Appended, OutboxError> {
        let (answer, answered) = oneshot::channel();
        let command = Command::Append {
            record,
            idempotency,
            waiter,
            answer,
        };
        self.commands
            .send(command)
            .await
            .map_err(|_| OutboxError::ShuttingDown)?;
        answered.await.map_err(|_| OutboxError::ShuttingDown)?
    }

    /// Applies an operator's change; returns how many rows it touched.
    pub async fn change(&self, change: Change) -> Result<u64, OutboxError> {
        let (answer, answered) = oneshot::channel();
        self.commands
            .send(Command::Change { change, answer })
            .await
            .map_err(|_| OutboxError::ShuttingDown)?;
        answered.await.map_err(|_| OutboxError::ShuttingDown)?
    }

    /// A sender for delivery outcomes, for the producer's delivery callback.
    pub fn outcome_sender(&self) -> mpsc::Sender<Command> {
        self.commands.clone()
    }

    /// Whether the latest commit succeeded.
    pub fn health(&self) -> &WriteHealth {
        &self.health
    }

    /// Stops taking records; those already queued are still stored.
    pub async fn close(&self) {
        // A closed channel means the writer has already stopped: nothing to do.
        let _ = self.commands.send(Command::Close).await;
    }
}
