//! The producer ponte publishes with, and the callback through which librdkafka
//! reports each record's fate back to the outbox and to the waiting request.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, ClientContext};
use tokio::sync::mpsc;

use crate::kafka::{self, Connectivity};
use crate::outbox::{Command, Outcome};
use crate::record::{DeliveryReport, DeliveryWaiter, Placement, Record, now_ms};
use crate::telemetry::Counters;

/// What travels with a record through librdkafka and comes back in its report.
#[derive(Debug)]
pub struct InFlight {
    row_id: Option<i64>,
    message_id: String,
    waiter: Option<DeliveryWaiter>,
}

/// Receives librdkafka's callbacks: delivery reports, statistics, errors and logs.
#[derive(Debug)]
pub struct DeliveryContext {
    /// Where outcomes of stored records are written; `None` without an outbox.
    pub outcomes: Option<mpsc::Sender<Command>>,
    /// Broker view behind `/health`.
    pub connectivity: Arc<Connectivity>,
    /// Running totals.
    pub counters: Arc<Counters>,
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        kafka::forward_log(level, facility, message);
    }

    fn stats(&self, statistics: Statistics) {
        self.connectivity.observe(&statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.connectivity.observe_error(&error);
        tracing::warn!(error = %error, reason, "kafka client error");
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<InFlight>;

    fn delivery(&self, result: &DeliveryResult<'_>, in_flight: Box<InFlight>) {
        let report: DeliveryReport = match result {
            Ok(message) => Ok(Placement {
                partition: message.partition(),
                offset: message.offset(),
            }),
            Err((error, message)) => {
                tracing::warn!(
                    message_id = %in_flight.message_id,
                    topic = message.topic(),
                    error = %error,
                    "kafka send failed"
                );
                Err(error.to_string())
            }
        };
        self.settle(*in_flight, report);
    }
}

impl DeliveryContext {
    /// Counts the report, tells the waiting request, and queues the outcome for the
    /// outbox.
    fn settle(&self, in_flight: InFlight, report: DeliveryReport) {
        match &report {
            Ok(_) => self.counters.record_sent(),
            Err(_) => self.counters.record_failed(),
        }
        if let Some(waiter) = in_flight.waiter {
            let _ = waiter.send(report.clone());
        }
        if let (Some(id), Some(outcomes)) = (in_flight.row_id, &self.outcomes) {
            let outcome = Outcome {
                id,
                at_ms: now_ms(),
                result: report,
            };
            // The writer outlives the producer, so this fails only if it crashed;
            // the row then stays unsent and is sent again at the next start.
            let _ = outcomes.blocking_send(Command::Outcome(outcome));
        }
    }
}

/// Why the producer did not take a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Its queue is full: wait a moment and offer the record again.
    QueueFull,
    /// It refused this record (too large, unknown topic...): offering it again now
    /// would not help.
    Rejected(String),
}

/// The idempotent producer, shared by everything that publishes.
#[derive(Clone)]
pub struct Publisher {
    producer: ThreadedProducer<DeliveryContext>,
    source: Arc<str>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("source", &self.source)
            .finish()
    }
}

impl Publisher {
    /// Creates the producer; it connects to the brokers in the background.
    pub fn new(
        config: &ClientConfig,
        context: DeliveryContext,
        source: &str,
    ) -> Result<Publisher, KafkaError> {
        Ok(Publisher {
            producer: config.create_with_context(context)?,
            source: Arc::from(source),
        })
    }

    /// Hands `record` to the producer. Its report goes to the outbox row `row_id`
    /// (if any) and to `waiter` (if any). On refusal the waiter comes back, so the
    /// caller can offer the record again or tell the waiter itself.
    pub fn send(
        &self,
        record: &Record,
        row_id: Option<i64>,
        waiter: Option<DeliveryWaiter>,
    ) -> Result<(), (SendError, Option<DeliveryWaiter>)> {
        let headers = OwnedHeaders::new_with_capacity(2)
            .insert(Header {
                key: "message-id",
                value: Some(record.message_id.as_str()),
            })
            .insert(Header {
                key: "source",
                value: Some(&*self.source),
            });
        let in_flight = Box::new(InFlight {
            row_id,
            message_id: record.message_id.clone(),
            waiter,
        });
        let mut outgoing = BaseRecord::with_opaque_to(&record.topic, in_flight)
            .payload(&record.value)
            .headers(headers);
        if let Some(key) = &record.key {
            outgoing = outgoing.key(key);
        }

        self.producer.send(outgoing).map_err(|(error, returned)| {
            let reason = match error.rdkafka_error_code() {
                Some(RDKafkaErrorCode::QueueFull) => SendError::QueueFull,
                _ => SendError::Rejected(error.to_string()),
            };
            (reason, returned.delivery_opaque.waiter)
        })
    }

    /// Waits up to `timeout` for every record handed over so far to be reported.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }

    /// Records handed over whose reports have not arrived yet.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }
}
