//! The relay: takes committed records to Kafka in outbox order, and retries what
//! fails.
//!
//! # The ordinary path
//!
//! Committed records normally arrive straight from the writer, in memory. The
//! relay remembers the highest row id it has handed to the producer (its cursor);
//! whenever the next record in memory is not the row right after the cursor (at
//! startup, after a crash, or because the writer's hand-over channel was full), it
//! first reads the missing rows from the outbox, page by page, and sends those.
//! Rows it has already read that way are skipped when their in-memory copy
//! arrives. So every unsent row is sent once per process, in id order, and memory
//! stays bounded however large the backlog grows.
//!
//! # When Kafka is unavailable
//!
//! A failure that says Kafka or the network is unavailable (see
//! [`crate::kafka::classify`]) pauses the relay: it withdraws every record still
//! queued in the producer (none of them reached a broker), waits for the records
//! already in flight to be reported, and waits out the backoff. Then it starts
//! over from the oldest unsent row, in id order. The pause grows while failures
//! repeat and no attempt is counted against any record, so an outage of any
//! length dead-letters nothing; new records keep being stored meanwhile.
//!
//! # When Kafka refuses a record
//!
//! A failure of the record's own (too large, not authorised, unknown topic) counts
//! toward the dead-letter limit and schedules the record for a retry after its
//! backoff (`next_attempt_at`). The record becomes the head of its lane (its topic
//! and key, see [`lanes`]): later records of the same key are held back, and
//! scheduled behind it, until it is delivered or dead-lettered, so records of one
//! key reach Kafka in the order ponte accepted them. The scheduled path sends due
//! rows in id order, one pass at a time: a pass starts only when everything the
//! previous one sent has been reported, so nothing is sent twice. After its last
//! allowed failure the record's copy goes to the dead-letter topic, retried until
//! it is written; only then is the row marked `dlq` and its lane released. A
//! dead-lettered record leaves the stream: the records behind it go on, and a
//! later replay publishes it after them.
//!
//! # Where order and once-only end
//!
//! Records already handed to the producer when a failure is reported cannot be
//! called back: a later record of the same key that was in flight beside the
//! refused one may reach Kafka before its retry. And a send that timed out while
//! in flight may have been written by the broker without ponte hearing back; it
//! is sent again, so Kafka may then hold it twice. The pause (for outages) is
//! global: while one broker is away, records for partitions on healthy brokers
//! wait too, which keeps order simple at the cost of throughput.

pub mod backoff;
pub mod delivery;
mod engine;
pub mod lanes;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::outbox::{Backlog, Committed, Outbox};
use crate::telemetry::{Counters, Metrics};
pub use delivery::{DeliveryContext, Notice, Outgoing, Publisher, RetryPolicy, SendError};

/// Everything the relay owns.
#[derive(Debug)]
pub struct Relay<B> {
    /// Read access to the outbox.
    pub backlog: B,
    /// The producer.
    pub publisher: Publisher,
    /// Committed records from the writer.
    pub live: mpsc::Receiver<Vec<Committed>>,
    /// What the delivery callback reports beside outcomes.
    pub notices: mpsc::UnboundedReceiver<Notice>,
    /// The outbox, for holding records back behind a failed one.
    pub outbox: Outbox,
    /// How failed records are retried.
    pub policy: RetryPolicy,
    /// Topic that receives records which can never be delivered.
    pub dead_letter_topic: String,
    /// Running totals.
    pub counters: Arc<Counters>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// How long to wait for the producer's queue to drain when stopping.
    pub flush_timeout: Duration,
}

impl<B: Backlog + 'static> Relay<B> {
    /// Runs the relay on its own thread until the writer closes its channel.
    pub fn spawn(self) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("relay".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build();
                match runtime {
                    Ok(runtime) => runtime.block_on(engine::Engine::new(self).run()),
                    Err(err) => tracing::error!(error = %err, "relay could not start"),
                }
            })
    }
}
