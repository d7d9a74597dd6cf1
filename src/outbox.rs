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
//! - `failed`: the last send failed and `last_error` says why. The row is still
//!   owed to Kafka and is sent again. `attempts` counts every failed send;
//!   `retry_count` counts only failures of the record's own (too large, not
//!   authorised...), which lead to the dead-letter topic; Kafka being unavailable
//!   never counts. `next_attempt_at` is set when a retry of the record's own is
//!   scheduled;
//! - `dlq`: its copy was written to the dead-letter topic (`dead_lettered_at`).
//!   It stays until an operator replays it (back to `pending`) or purges it.
//!
//! Besides its own failures, `next_attempt_at` also marks rows that wait behind an
//! earlier failed record of the same key, and rows an operator retried or
//! replayed (set to 0: due now). Rows without it travel the ordinary path.
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
//! leaves the row unsent, and it is sent again after restart: the window in which
//! a record can reach Kafka twice is one commit long. What the relay is told about
//! a report, it is told only once the report is durable, so it never acts on a
//! row older than the outbox.
//!
//! # Idempotency keys
//!
//! A record may carry the client's idempotency key and a fingerprint of its topic,
//! key and value. The writer, being the only writer, looks the key up in the same
//! transaction that would store the record: a key seen within
//! `idempotency_window_ms` (or a client message id seen at all) returns the
//! earlier row instead of storing a second one. Concurrent repeats are serialised
//! by the writer, and keys live in the outbox, so repeats are recognised across
//! restarts too.
//!
//! # Ordering
//!
//! Row ids grow in commit order, which is also the order in which clients were
//! answered. The relay hands rows to the producer in id order and the producer is
//! idempotent, so librdkafka keeps that order within each partition across its
//! own retries; records with the same key share a partition and so reach Kafka in
//! the order ponte accepted them. How order survives ponte's retries, and what
//! happens to it when a record is dead-lettered, is described in [`crate::relay`].
//!
//! # Crash recovery
//!
//! Nothing lives only in memory between the commit and Kafka's acknowledgement:
//! after a crash, the relay starts by reading every unsent row in id order, in
//! pages (never the whole backlog at once), and sends them before anything newer;
//! scheduled rows wait for their time. Rows set back to `pending` by hand in
//! `sqlite3` (the replay runbook) are picked up the same way at the next start;
//! those retried or replayed through ponte (HTTP or `ponte messages`) within a
//! second, without a restart.
//!
//! # Storage engines
//!
//! The writer, the relay and the status API see storage only through [`Store`]
//! and [`Backlog`], so that a PostgreSQL outbox shared by several ponte instances
//! can sit behind the same interface. [`sqlite`] is the engine ponte ships with.
//!
//! # Cost per record
//!
//! With batched requests the writer thread is ponte's ceiling in records per
//! second, and with one record per request the wait for its commit is a large
//! part of each request's time (see `docs/benchmarks.md`): each record is a table
//! row, entries in up to four indexes and two updates of `outbox_counts` (stored,
//! then acknowledged).
// TODO(outbox): a commit writes several times its records' size: the page of
// each row Kafka acknowledged is written again for its outcome, every index entry
// and the counts cost pages of their own, and each synchronous request waits for
// that commit before its record leaves for Kafka. Fewer pages per commit (fewer
// indexes, counts kept by the writer instead of triggers, outcomes that need not
// rewrite the row) would shorten every request; so would a second writer on a
// PostgreSQL outbox. Deferring outcomes alone gained nothing measurable.

pub mod sqlite;
mod store;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::record::{DeliveryWaiter, Record};

pub use store::{
    Append, Appended, AuditEntry, Backlog, Change, Commit, Idempotency, KeyView, ListFilter,
    Outcome, PurgeFilter, REPLAY_BATCH, ReplayFilter, RowView, Settled, StatusCounts, Store,
    StoreError,
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
    /// Store records, all in one transaction: all are stored or none is.
    Append(Vec<NewRecord>),
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
    /// Delete a batch of expired rows and idempotency keys; `answer` hears whether
    /// more are left.
    Maintain {
        /// What has expired.
        retention: Retention,
        /// Answered `true` while a full batch was deleted (more may be left).
        answer: oneshot::Sender<bool>,
    },
    /// Keep an administrative action in the audit trail.
    Audit(AuditEntry),
    /// Take no more records, and let the relay finish once it has sent what it has.
    Close,
}

/// One record to store, and who hears about it.
#[derive(Debug)]
pub struct NewRecord {
    /// The record to store.
    pub record: Record,
    /// The client's idempotency key, if it gave one.
    pub idempotency: Option<Idempotency>,
    /// Who waits for Kafka's report on this record, if anyone.
    pub waiter: Option<DeliveryWaiter>,
    /// Answered once the record is durable (or could not be stored).
    pub answer: oneshot::Sender<Result<Appended, OutboxError>>,
}

/// What the periodic cleanup removes: `sent` rows acknowledged before
/// `sent_before_ms`, and idempotency keys of rows that arrived before
/// `keys_before_ms`. `dlq` rows stay until replayed or purged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Cut-off for `sent` rows, ms since the epoch.
    pub sent_before_ms: i64,
    /// Cut-off for idempotency keys, ms since the epoch.
    pub keys_before_ms: i64,
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
        self.ask(|answer| {
            Command::Append(vec![NewRecord {
                record,
                idempotency,
                waiter,
                answer,
            }])
        })
        .await?
    }

    /// Stores several records in one transaction: all of them durably, or none
    /// (then the error says why). Each is stored, or found to repeat an earlier
    /// record, as [`Outbox::append`] does.
    pub async fn append_all(
        &self,
        records: Vec<(Record, Option<Idempotency>, Option<DeliveryWaiter>)>,
    ) -> Result<Vec<Appended>, OutboxError> {
        let mut answers = Vec::with_capacity(records.len());
        let group = records
            .into_iter()
            .map(|(record, idempotency, waiter)| {
                let (answer, answered) = oneshot::channel();
                answers.push(answered);
                NewRecord {
                    record,
                    idempotency,
                    waiter,
                    answer,
                }
            })
            .collect();
        self.commands
            .send(Command::Append(group))
            .await
            .map_err(|_| OutboxError::ShuttingDown)?;
        let mut appended = Vec::with_capacity(answers.len());
        for answered in answers {
            appended.push(answered.await.map_err(|_| OutboxError::ShuttingDown)??);
        }
        Ok(appended)
    }

    /// Applies an operator's change; returns how many rows it touched.
    pub async fn change(&self, change: Change) -> Result<u64, OutboxError> {
        self.ask(|answer| Command::Change { change, answer })
            .await?
    }

    /// Runs one batch of cleanup; returns whether more is left.
    pub async fn maintain(&self, retention: Retention) -> Result<bool, OutboxError> {
        self.ask(|answer| Command::Maintain { retention, answer })
            .await
    }

    /// Sends the writer the command `make` builds around an answer channel, and
    /// waits for the answer. A writer that is gone means ponte is shutting down.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, OutboxError> {
        let (answer, answered) = oneshot::channel();
        self.commands
            .send(make(answer))
            .await
            .map_err(|_| OutboxError::ShuttingDown)?;
        answered.await.map_err(|_| OutboxError::ShuttingDown)
    }

    /// Keeps an administrative action in the audit trail (written with the next
    /// commit; lost only if ponte stops before that).
    pub async fn audit(&self, entry: AuditEntry) {
        let _ = self.commands.send(Command::Audit(entry)).await;
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
