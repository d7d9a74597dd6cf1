//! The relay: takes committed records to Kafka, strictly in outbox order.
//!
//! Committed records normally arrive straight from the writer, in memory. The
//! relay remembers the highest row id it has handed to the producer (its cursor);
//! whenever the next record in memory is not the row right after the cursor (at
//! startup, after a crash, or because the writer's hand-over channel was full),
//! it first reads the missing rows from the outbox, page by page, and sends those.
//! Rows it has already read that way are skipped when their in-memory copy
//! arrives. So every unsent row is sent once per process, in id order, and memory
//! stays bounded however large the backlog grows.

pub mod backoff;
pub mod delivery;

use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::outbox::{Backlog, Command, Committed, Outcome};
use crate::record::{DeliveryWaiter, StoredRecord, now_ms};
use crate::telemetry::Counters;
pub use delivery::{DeliveryContext, Publisher, SendError};

/// Rows read from the outbox at a time while catching up.
const PAGE_SIZE: usize = 1_000;

/// How long to wait before offering a record again to a full producer queue.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(5);

/// How long to wait before reading the outbox again after a read failed.
const READ_FAILURE_PAUSE: Duration = Duration::from_secs(1);

/// Everything the relay thread owns.
#[derive(Debug)]
pub struct Relay<B> {
    /// Read access to the outbox, for catching up.
    pub backlog: B,
    /// The producer.
    pub publisher: Publisher,
    /// Committed records from the writer.
    pub live: mpsc::Receiver<Vec<Committed>>,
    /// Where outcomes of records the producer refused outright are written.
    pub outcomes: mpsc::Sender<Command>,
    /// Running totals.
    pub counters: std::sync::Arc<Counters>,
    /// How long to wait for the producer's queue to drain when stopping.
    pub flush_timeout: Duration,
}

impl<B: Backlog + 'static> Relay<B> {
    /// Runs the relay on its own thread until the writer closes its channel.
    pub fn spawn(self) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("relay".to_owned())
            .spawn(move || Cursor::new(self).run())
    }
}

struct Cursor<B> {
    relay: Relay<B>,
    /// Highest row id handed to the producer.
    last_sent: i64,
}

impl<B: Backlog> Cursor<B> {
    fn new(relay: Relay<B>) -> Self {
        Cursor {
            relay,
            last_sent: 0,
        }
    }

    fn run(mut self) {
        self.catch_up(None);
        while let Some(batch) = self.relay.live.blocking_recv() {
            for committed in batch {
                self.deliver(committed);
            }
        }
        self.finish();
    }

    fn deliver(&mut self, committed: Committed) {
        let id = committed.stored.id;
        if id <= self.last_sent {
            // Already read from the outbox and sent; its waiter, dropped here, lets
            // the request answer 202 instead of waiting for nothing.
            return;
        }
        if id > self.last_sent + 1 {
            self.catch_up(Some(id));
        }
        self.publish(&committed.stored, committed.waiter);
        self.last_sent = id;
    }

    /// Sends every unsent row after the cursor and before `before`, in id order.
    fn catch_up(&mut self, before: Option<i64>) {
        loop {
            let page = match self.relay.backlog.unsent(self.last_sent, before, PAGE_SIZE) {
                Ok(page) => page,
                Err(err) => {
                    tracing::error!(error = %err, "reading unsent records failed, retrying");
                    std::thread::sleep(READ_FAILURE_PAUSE);
                    continue;
                }
            };
            let full_page = page.len() == PAGE_SIZE;
            for stored in page {
                self.relay.counters.record_retry();
                self.publish(&stored, None);
                self.last_sent = stored.id;
            }
            if !full_page {
                break;
            }
        }
        if let Some(before) = before {
            self.last_sent = self.last_sent.max(before - 1);
        }
    }

    fn publish(&self, stored: &StoredRecord, mut waiter: Option<DeliveryWaiter>) {
        loop {
            match self
                .relay
                .publisher
                .send(&stored.record, Some(stored.id), waiter)
            {
                Ok(()) => return,
                Err((SendError::QueueFull, returned)) => {
                    waiter = returned;
                    std::thread::sleep(QUEUE_FULL_PAUSE);
                }
                Err((SendError::Rejected(reason), returned)) => {
                    self.refused(stored, reason, returned);
                    return;
                }
            }
        }
    }

    fn refused(&self, stored: &StoredRecord, reason: String, waiter: Option<DeliveryWaiter>) {
        tracing::warn!(
            message_id = %stored.record.message_id,
            topic = %stored.record.topic,
            error = %reason,
            "kafka producer refused record"
        );
        self.relay.counters.record_failed();
        if let Some(waiter) = waiter {
            let _ = waiter.send(Err(reason.clone()));
        }
        let outcome = Outcome {
            id: stored.id,
            at_ms: now_ms(),
            result: Err(reason),
        };
        let _ = self.relay.outcomes.blocking_send(Command::Outcome(outcome));
    }

    fn finish(self) {
        let publisher = &self.relay.publisher;
        if let Err(err) = publisher.flush(self.relay.flush_timeout) {
            tracing::warn!(
                error = %err,
                unreported = publisher.in_flight(),
                "producer not drained before shutdown; unsent records stay pending for the next start"
            );
        }
    }
}
