//! The group-commit writer: one thread, one write connection, one transaction and
//! one fsync for everything that arrived while the previous commit ran.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::store::{
    Append as StoreAppend, Appended, AuditEntry, Change, Outcome, PurgeFilter, Store,
};
use super::{AfterCommit, Command, NewRecord, OutboxError, Retention, WriteHealth};
use crate::record::{DeliveryWaiter, StoredRecord};
use crate::telemetry::Metrics;

/// Most delivery outcomes written in one commit, beside the appended records.
const MAX_OUTCOMES_PER_COMMIT: usize = 8 * 1024;

/// Rows deleted (or keys forgotten) by one cleanup batch: small enough that a
/// batch holds up the records waiting behind it for a few milliseconds only.
const CLEANUP_BATCH: usize = 1_000;

/// Free pages given back to the file system after each cleanup batch.
const RECLAIM_PAGES: u32 = 256;

/// A record that is now durable, on its way to the relay.
#[derive(Debug)]
pub struct Committed {
    /// The stored row.
    pub stored: StoredRecord,
    /// Who waits for Kafka's report on it.
    pub waiter: Option<DeliveryWaiter>,
}

/// How much the writer takes at once, and how much it holds at most.
#[derive(Debug, Clone, Copy)]
pub struct WriterLimits {
    /// Most records in one commit.
    pub max_batch: usize,
    /// Most records owed to Kafka; beyond it appends are refused.
    pub max_unsent: u64,
}

type ChangeRequest = (Change, oneshot::Sender<Result<u64, OutboxError>>);

#[derive(Default)]
struct Batch {
    appends: Vec<NewRecord>,
    /// How many of `appends` each request brought, in order: a request's records
    /// are stored together or not at all.
    groups: Vec<usize>,
    outcomes: Vec<Outcome>,
    then: Vec<AfterCommit>,
    changes: Vec<ChangeRequest>,
    cleanups: Vec<(Retention, oneshot::Sender<bool>)>,
    audits: Vec<AuditEntry>,
}

struct Writer<S> {
    store: S,
    commands: mpsc::Receiver<Command>,
    relay: Option<mpsc::Sender<Vec<Committed>>>,
    health: Arc<WriteHealth>,
    limits: WriterLimits,
    metrics: Arc<Metrics>,
    /// Rows owed to Kafka, kept current after each commit.
    unsent: u64,
    /// Outcomes whose commit failed, with their follow-ups; they go into the next.
    unsaved: (Vec<Outcome>, Vec<AfterCommit>),
}

/// Starts the writer thread. It stores what `commands` brings, hands each committed
/// batch to `relay`, and ends once every sender of `commands` is gone.
pub fn spawn_writer<S: Store + 'static>(
    mut store: S,
    outbox: &super::Outbox,
    commands: mpsc::Receiver<Command>,
    relay: mpsc::Sender<Vec<Committed>>,
    limits: WriterLimits,
    metrics: Arc<Metrics>,
) -> std::io::Result<JoinHandle<()>> {
    let unsent = store.count_unsent().unwrap_or(0);
    let writer = Writer {
        store,
        commands,
        relay: Some(relay),
        health: Arc::clone(&outbox.health),
        limits,
        metrics,
        unsent,
        unsaved: (Vec::new(), Vec::new()),
    };
    std::thread::Builder::new()
        .name("outbox-writer".to_owned())
        .spawn(move || writer.run())
}

impl<S: Store> Writer<S> {
    fn run(mut self) {
        while let Some(first) = self.commands.blocking_recv() {
            let (outcomes, then) = std::mem::take(&mut self.unsaved);
            let mut batch = Batch {
                outcomes,
                then,
                ..Batch::default()
            };
            self.take(first, &mut batch);
            while batch.appends.len() < self.limits.max_batch
                && batch.outcomes.len() < MAX_OUTCOMES_PER_COMMIT
            {
                let Ok(next) = self.commands.try_recv() else {
                    break;
                };
                self.take(next, &mut batch);
            }
            self.commit(batch.appends, &batch.groups, batch.outcomes, batch.then);
            for (change, answer) in batch.changes {
                let _ = answer.send(self.apply(&change));
            }
            for entry in batch.audits {
                if let Err(err) = self.store.audit(&entry) {
                    tracing::error!(error = %err, "writing the audit trail failed");
                }
            }
            for (retention, answer) in batch.cleanups {
                let _ = answer.send(self.clean(retention));
            }
        }
        tracing::debug!("outbox writer stopped");
    }

    fn take(&mut self, command: Command, batch: &mut Batch) {
        match command {
            Command::Append(group) => match self.admission(batch.appends.len(), group.len()) {
                Ok(()) => {
                    batch.groups.push(group.len());
                    batch.appends.extend(group);
                }
                Err(refusal) => {
                    for new in group {
                        let _ = new.answer.send(Err(refusal.clone()));
                    }
                }
            },
            Command::Outcome { outcome, then } => {
                batch.outcomes.push(outcome);
                batch.then.extend(then);
            }
            Command::Change { change, answer } => batch.changes.push((change, answer)),
            Command::Maintain { retention, answer } => batch.cleanups.push((retention, answer)),
            Command::Audit(entry) => batch.audits.push(entry),
            // Dropping the relay's channel lets the relay finish what it holds and
            // stop; outcomes still arrive until the producer is gone.
            Command::Close => self.relay = None,
        }
    }

    /// Whether `more` records may join a batch that already has `queued` records.
    fn admission(&self, queued: usize, more: usize) -> Result<(), OutboxError> {
        if self.relay.is_none() {
            return Err(OutboxError::ShuttingDown);
        }
        let after = self.unsent.saturating_add((queued + more) as u64);
        if after > self.limits.max_unsent {
            return Err(OutboxError::Full {
                limit: self.limits.max_unsent,
            });
        }
        Ok(())
    }

    fn commit(
        &mut self,
        appends: Vec<NewRecord>,
        groups: &[usize],
        outcomes: Vec<Outcome>,
        then: Vec<AfterCommit>,
    ) {
        if appends.is_empty() && outcomes.is_empty() {
            return;
        }
        let rows: Vec<StoreAppend<'_>> = appends
            .iter()
            .map(|a| StoreAppend {
                record: &a.record,
                idempotency: a.idempotency.as_ref(),
            })
            .collect();
        let started = std::time::Instant::now();
        let committed = self.store.commit(&rows, &outcomes);
        self.metrics
            .commit_duration
            .observe(started.elapsed().as_secs_f64());
        match committed {
            Ok(commit) => {
                self.metrics.commit_records.observe(rows.len() as f64);
                self.health.set(true);
                self.unsent = self.unsent.saturating_sub(commit.settled);
                then.into_iter().for_each(AfterCommit::run);
                self.hand_over(appends, commit.appended);
            }
            Err(err) if groups.len() > 1 || (!groups.is_empty() && !outcomes.is_empty()) => {
                // One bad request must not fail its neighbours: retry each alone.
                tracing::warn!(
                    error = %err,
                    requests = groups.len(),
                    "group commit failed, retrying requests one by one"
                );
                self.commit(Vec::new(), &[], outcomes, then);
                let mut appends = appends.into_iter();
                for &size in groups {
                    let group: Vec<NewRecord> = appends.by_ref().take(size).collect();
                    self.commit(group, &[size], Vec::new(), Vec::new());
                }
            }
            Err(err) => {
                self.health.set(false);
                tracing::error!(error = %err, "outbox commit failed");
                let failure = OutboxError::Write(err.to_string());
                for append in appends {
                    let _ = append.answer.send(Err(failure.clone()));
                }
                self.unsaved.0.extend(outcomes);
                self.unsaved.1.extend(then);
            }
        }
    }

    /// Answers each client and passes new records on to the relay, in id order.
    fn hand_over(&mut self, appends: Vec<NewRecord>, appended: Vec<Appended>) {
        let mut batch = Vec::with_capacity(appends.len());
        for (append, result) in appends.into_iter().zip(appended) {
            if let Appended::Stored(id) = result {
                self.unsent += 1;
                batch.push(Committed {
                    stored: StoredRecord {
                        id,
                        record: append.record,
                        retry_count: 0,
                        next_attempt_at_ms: None,
                    },
                    waiter: append.waiter,
                });
            }
            let _ = append.answer.send(Ok(result));
        }
        if batch.is_empty() {
            return;
        }
        // A full channel means the relay is behind; it will read these rows from
        // the outbox itself, so nothing is lost by not waiting here.
        if let Some(relay) = &self.relay {
            let _ = relay.try_send(batch);
        }
    }

    /// Deletes one batch of expired `sent` rows and forgets one batch of expired
    /// idempotency keys; returns whether either batch was full.
    fn clean(&mut self, retention: Retention) -> bool {
        let expired = PurgeFilter {
            status: "sent".to_owned(),
            topic: None,
            before_ms: retention.sent_before_ms,
        };
        let cleaned = self
            .store
            .purge(&expired, CLEANUP_BATCH)
            .and_then(|purged| {
                let forgotten = self
                    .store
                    .expire_keys(retention.keys_before_ms, CLEANUP_BATCH)?;
                self.store.reclaim(RECLAIM_PAGES)?;
                Ok((purged, forgotten))
            });
        match cleaned {
            Ok((purged, forgotten)) => {
                if purged + forgotten > 0 {
                    tracing::debug!(purged, forgotten, "outbox cleanup");
                }
                purged == CLEANUP_BATCH as u64 || forgotten == CLEANUP_BATCH as u64
            }
            Err(err) => {
                tracing::warn!(error = %err, "outbox cleanup failed");
                false
            }
        }
    }

    fn apply(&mut self, change: &Change) -> Result<u64, OutboxError> {
        let changed = self
            .store
            .change(change)
            .map_err(|err| OutboxError::Write(err.to_string()))?;
        if let Ok(unsent) = self.store.count_unsent() {
            self.unsent = unsent;
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests;
