//! The group-commit writer: one thread, one write connection, one transaction and
//! one fsync for everything that arrived while the previous commit ran.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::store::{Outcome, Store};
use super::{Command, OutboxError, WriteHealth};
use crate::record::{DeliveryWaiter, Record, StoredRecord};

/// Most delivery outcomes written in one commit, beside the appended records.
const MAX_OUTCOMES_PER_COMMIT: usize = 8 * 1024;

/// A record that is now durable, on its way to the relay.
#[derive(Debug)]
pub struct Committed {
    /// The stored row.
    pub stored: StoredRecord,
    /// Who waits for Kafka's report on it.
    pub waiter: Option<DeliveryWaiter>,
}

struct Append {
    record: Record,
    waiter: Option<DeliveryWaiter>,
    committed: oneshot::Sender<Result<i64, OutboxError>>,
}

struct Writer<S> {
    store: S,
    commands: mpsc::Receiver<Command>,
    relay: Option<mpsc::Sender<Vec<Committed>>>,
    health: Arc<WriteHealth>,
    max_batch: usize,
    /// Outcomes whose commit failed; they go into the next one.
    unsaved: Vec<Outcome>,
}

/// Starts the writer thread. It stores what `commands` brings, hands each committed
/// batch to `relay`, and ends once every sender of `commands` is gone.
pub fn spawn_writer<S: Store + 'static>(
    store: S,
    outbox: &super::Outbox,
    commands: mpsc::Receiver<Command>,
    relay: mpsc::Sender<Vec<Committed>>,
    max_batch: usize,
) -> std::io::Result<JoinHandle<()>> {
    let writer = Writer {
        store,
        commands,
        relay: Some(relay),
        health: Arc::clone(&outbox.health),
        max_batch,
        unsaved: Vec::new(),
    };
    std::thread::Builder::new()
        .name("outbox-writer".to_owned())
        .spawn(move || writer.run())
}

impl<S: Store> Writer<S> {
    fn run(mut self) {
        while let Some(first) = self.commands.blocking_recv() {
            let mut appends = Vec::new();
            let mut outcomes = std::mem::take(&mut self.unsaved);
            self.take(first, &mut appends, &mut outcomes);
            while appends.len() < self.max_batch && outcomes.len() < MAX_OUTCOMES_PER_COMMIT {
                let Ok(next) = self.commands.try_recv() else {
                    break;
                };
                self.take(next, &mut appends, &mut outcomes);
            }
            self.commit(appends, outcomes);
        }
        tracing::debug!("outbox writer stopped");
    }

    fn take(&mut self, command: Command, appends: &mut Vec<Append>, outcomes: &mut Vec<Outcome>) {
        match command {
            Command::Append {
                record,
                waiter,
                committed,
            } if self.relay.is_some() => appends.push(Append {
                record,
                waiter,
                committed,
            }),
            Command::Append { committed, .. } => {
                let _ = committed.send(Err(OutboxError::ShuttingDown));
            }
            Command::Outcome(outcome) => outcomes.push(outcome),
            // Dropping the relay's channel lets the relay finish what it holds and
            // stop; outcomes still arrive until the producer is gone.
            Command::Close => self.relay = None,
        }
    }

    fn commit(&mut self, appends: Vec<Append>, outcomes: Vec<Outcome>) {
        if appends.is_empty() && outcomes.is_empty() {
            return;
        }
        let records: Vec<&Record> = appends.iter().map(|a| &a.record).collect();
        match self.store.commit(&records, &outcomes) {
            Ok(ids) => {
                self.health.set(true);
                self.hand_over(appends, ids);
            }
            Err(err) if appends.len() > 1 => {
                // One bad record must not fail its neighbours: retry them alone.
                tracing::warn!(error = %err, records = appends.len(), "group commit failed, retrying records one by one");
                self.commit(Vec::new(), outcomes);
                for append in appends {
                    self.commit(vec![append], Vec::new());
                }
            }
            Err(err) => {
                self.health.set(false);
                tracing::error!(error = %err, "outbox commit failed");
                let failure = OutboxError::Write(err.to_string());
                for append in appends {
                    let _ = append.committed.send(Err(failure.clone()));
                }
                self.unsaved.extend(outcomes);
            }
        }
    }

    /// Answers each client and passes the records on to the relay, in id order.
    fn hand_over(&mut self, appends: Vec<Append>, ids: Vec<i64>) {
        let mut batch = Vec::with_capacity(appends.len());
        for (append, id) in appends.into_iter().zip(ids) {
            let _ = append.committed.send(Ok(id));
            batch.push(Committed {
                stored: StoredRecord {
                    id,
                    record: append.record,
                    retry_count: 0,
                },
                waiter: append.waiter,
            });
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
}

#[cfg(test)]
mod tests;
