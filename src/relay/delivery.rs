//! The producer ponte publishes with, and the callback through which librdkafka
//! reports each record's fate to the outbox, to the waiting request and to the
//! relay.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig, ThreadedProducer,
};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, ClientContext};
use tokio::sync::mpsc;

use super::backoff::Backoff;
use super::lanes::Lane;
use crate::kafka::classify::{FailureClass, classify};
use crate::kafka::{self, Connectivity};
use crate::outbox::{AfterCommit, Command, Outcome, Settled};
use crate::record::{DeliveryReport, DeliveryWaiter, Placement, Record, StoredRecord, now_ms};
use crate::telemetry::{Counters, DeadLetterLabels, Metrics, TopicLabels};

/// What the delivery callback tells the relay, beside writing the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Kafka is unavailable: stop sending for a while.
    Unavailable,
    /// A record failed for a reason of its own; its lane waits for it.
    Refused {
        /// Its row id.
        id: i64,
        /// Its key's lane.
        lane: Lane,
        /// When it is due again, ms since the epoch.
        due_ms: i64,
    },
    /// A record sent by the relay's scheduled path has its report.
    ScheduledSettled {
        /// Its row id.
        id: i64,
        /// Whether Kafka acknowledged it.
        delivered: bool,
    },
    /// A record's copy reached the dead-letter topic.
    DeadLettered {
        /// Its row id.
        id: i64,
    },
    /// Writing a record's copy to the dead-letter topic failed; try again later.
    DeadLetterFailed {
        /// Its row id.
        id: i64,
    },
}

/// What travels with a record through librdkafka and comes back in its report.
#[derive(Debug)]
pub struct InFlight {
    row_id: Option<i64>,
    message_id: String,
    retry_count: i64,
    scheduled: bool,
    /// For a dead-letter copy: the original topic and the class of its failure.
    dead_letter: Option<(String, String)>,
    handed_at: Instant,
    waiter: Option<DeliveryWaiter>,
}

/// One record handed to [`Publisher::send`].
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// The record.
    pub record: &'a Record,
    /// Its outbox row, if it is stored.
    pub row_id: Option<i64>,
    /// Its failures so far that count toward the dead-letter limit.
    pub retry_count: i64,
    /// Whether the relay's scheduled path sent it (and waits for its report).
    pub scheduled: bool,
    /// Who waits for Kafka's report.
    pub waiter: Option<DeliveryWaiter>,
}

/// How failures are retried: the backoff for scheduled retries and the limit
/// after which a record is dead-lettered.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Waits between retries of a record that failed for a reason of its own.
    pub backoff: Backoff,
    /// Counted failures before the record goes to the dead-letter topic.
    pub dead_letter_after: u32,
}

/// Receives librdkafka's callbacks: delivery reports, statistics, errors and logs.
#[derive(Debug)]
pub struct DeliveryContext {
    /// Where outcomes of stored records are written; `None` without an outbox.
    pub outcomes: Option<mpsc::Sender<Command>>,
    /// Where the relay hears about failures; `None` without an outbox.
    pub notices: Option<mpsc::UnboundedSender<Notice>>,
    /// How failed records are retried.
    pub policy: RetryPolicy,
    /// Broker view behind `/health`.
    pub connectivity: Arc<Connectivity>,
    /// Running totals.
    pub counters: Arc<Counters>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
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
        match result {
            Ok(message) => {
                let placement = Placement {
                    partition: message.partition(),
                    offset: message.offset(),
                };
                tracing::debug!(
                    message_id = %in_flight.message_id,
                    topic = message.topic(),
                    partition = placement.partition,
                    offset = placement.offset,
                    duration_ms = in_flight.handed_at.elapsed().as_millis() as u64,
                    "kafka acknowledged record"
                );
                self.measure(message.topic(), "sent", &in_flight);
                self.delivered(*in_flight, placement);
            }
            Err((error, message)) => {
                let class = classify(error);
                self.measure(message.topic(), class.as_str(), &in_flight);
                let lane = Lane::of_message(message.topic(), message.key(), &in_flight);
                self.failed(*in_flight, &error.to_string(), class, lane);
            }
        }
    }
}

impl DeliveryContext {
    /// Counts a send's result and, when it was delivered, its latency.
    fn measure(&self, topic: &str, result: &str, in_flight: &InFlight) {
        self.metrics.delivery(topic, result);
        if result == "sent" {
            let labels = TopicLabels {
                topic: topic.to_owned(),
            };
            self.metrics
                .delivery_duration
                .get_or_create(&labels)
                .observe(in_flight.handed_at.elapsed().as_secs_f64());
        }
    }

    fn delivered(&self, in_flight: InFlight, placement: Placement) {
        self.connectivity.observe_reachable();
        let Some(id) = in_flight.row_id else {
            self.counters.record_sent();
            answer(in_flight.waiter, Ok(placement));
            return;
        };
        if let Some((topic, class)) = in_flight.dead_letter {
            self.counters.record_dead_lettered();
            let labels = DeadLetterLabels { topic, class };
            self.metrics.dead_letters.get_or_create(&labels).inc();
            tracing::error!(
                message_id = %in_flight.message_id,
                topic = %labels.topic,
                class = %labels.class,
                "record moved to the dead-letter topic"
            );
            self.write(id, Settled::DeadLettered, vec![Notice::DeadLettered { id }]);
            return;
        }
        self.counters.record_sent();
        let settled = scheduled_settled(&in_flight, id, true);
        answer(in_flight.waiter, Ok(placement));
        self.write(id, Settled::Sent(placement), settled.into_iter().collect());
    }

    fn failed(&self, mut in_flight: InFlight, error: &str, class: FailureClass, lane: Lane) {
        let waiter = in_flight.waiter.take();
        let Some(id) = in_flight.row_id else {
            self.counters.record_failed();
            answer(waiter, Err(error.to_owned()));
            return;
        };
        if in_flight.dead_letter.is_some() {
            tracing::warn!(
                message_id = %in_flight.message_id,
                error,
                "dead-letter write failed, will retry"
            );
            self.notify(Notice::DeadLetterFailed { id });
            if class == FailureClass::Retriable {
                self.notify(Notice::Unavailable);
            }
            return;
        }
        let settled = scheduled_settled(&in_flight, id, false);
        match class {
            // Withdrawn by ponte itself: the row is untouched and sent again later.
            FailureClass::Withdrawn => settled.into_iter().for_each(|n| self.notify(n)),
            FailureClass::Retriable => {
                self.counters.record_failed();
                tracing::warn!(
                    message_id = %in_flight.message_id,
                    error,
                    "kafka unavailable, record will be retried"
                );
                self.notify(Notice::Unavailable);
                let outcome = failure(error, class, None);
                self.write(id, outcome, settled.into_iter().collect());
            }
            FailureClass::Permanent | FailureClass::Unknown => {
                self.counters.record_failed();
                let due_ms = self.refused(&in_flight, error, class);
                let mut notices = vec![Notice::Refused { id, lane, due_ms }];
                notices.extend(settled);
                self.write(id, failure(error, class, Some(due_ms)), notices);
            }
        }
        // Last: the outcome is queued in the outbox before the client hears of the
        // failure, so the next record of the same key it may send is committed
        // after it, and the relay hears of the failure before it sees that record.
        answer(waiter, Err(error.to_owned()));
    }

    /// Logs a failure of the record's own and returns when it is due again: after
    /// its backoff, or at once when it has used up its attempts and is to be
    /// dead-lettered.
    fn refused(&self, in_flight: &InFlight, error: &str, class: FailureClass) -> i64 {
        let failures = u32::try_from(in_flight.retry_count + 1).unwrap_or(u32::MAX);
        let dead = failures >= self.policy.dead_letter_after;
        let wait = if dead {
            Duration::ZERO
        } else {
            self.policy.backoff.delay(failures)
        };
        tracing::warn!(
            message_id = %in_flight.message_id,
            error,
            class = class.as_str(),
            failures,
            retry_in_ms = wait.as_millis() as u64,
            "kafka refused record"
        );
        now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)
    }

    /// Queues the outcome for the outbox; `notices` go to the relay once the
    /// outcome is durable, so the relay never acts on a stale row.
    fn write(&self, id: i64, settled: Settled, notices: Vec<Notice>) {
        let Some(outcomes) = &self.outcomes else {
            return;
        };
        let outcome = Outcome {
            id,
            at_ms: now_ms(),
            settled,
        };
        let then = match &self.notices {
            Some(relay) if !notices.is_empty() => {
                let relay = relay.clone();
                Some(AfterCommit::new(move || {
                    for notice in notices {
                        let _ = relay.send(notice);
                    }
                }))
            }
            _ => None,
        };
        // The writer outlives the producer, so this fails only if it crashed; the
        // row then stays unsent and is sent again at the next start. Reports made
        // from the relay's own loop (records refused before leaving) cannot block.
        let command = Command::Outcome { outcome, then };
        let _ = if tokio::runtime::Handle::try_current().is_ok() {
            outcomes.try_send(command).map_err(drop)
        } else {
            outcomes.blocking_send(command).map_err(drop)
        };
    }

    fn notify(&self, notice: Notice) {
        if let Some(notices) = &self.notices {
            let _ = notices.send(notice);
        }
    }
}

fn scheduled_settled(in_flight: &InFlight, id: i64, delivered: bool) -> Option<Notice> {
    in_flight
        .scheduled
        .then_some(Notice::ScheduledSettled { id, delivered })
}

fn failure(error: &str, class: FailureClass, next_attempt_at_ms: Option<i64>) -> Settled {
    Settled::Failed {
        error: error.to_owned(),
        class: class.as_str(),
        counts: class.counts_toward_dead_letter(),
        next_attempt_at_ms,
    }
}

fn answer(waiter: Option<DeliveryWaiter>, report: DeliveryReport) {
    if let Some(waiter) = waiter {
        let _ = waiter.send(report);
    }
}

/// Why the producer did not take a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Its queue is full: wait a moment and offer the record again.
    QueueFull,
    /// It refused this record outright (too large, unknown topic...).
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

    /// Hands a record to the producer; its report goes to the outbox row (if any),
    /// the waiter (if any) and the relay. On refusal the waiter comes back, so the
    /// caller can offer the record again or answer the waiter itself.
    pub fn send(&self, outgoing: Outgoing<'_>) -> Result<(), (SendError, Option<DeliveryWaiter>)> {
        let record = outgoing.record;
        let in_flight = InFlight {
            row_id: outgoing.row_id,
            message_id: record.message_id.clone(),
            retry_count: outgoing.retry_count,
            scheduled: outgoing.scheduled,
            dead_letter: None,
            handed_at: Instant::now(),
            waiter: outgoing.waiter,
        };
        self.produce(&record.topic, record, self.headers(record), in_flight)
    }

    /// Writes a copy of a stored record to `dead_letter_topic`: its key, value and
    /// headers, plus `original-topic`, `error` and `retry-count`. `class` is the
    /// class of its last failure, for metrics.
    pub fn send_dead_letter(
        &self,
        dead_letter_topic: &str,
        row_id: i64,
        record: &Record,
        (error, class): (&str, &str),
        retry_count: i64,
    ) -> Result<(), SendError> {
        let retries = retry_count.to_string();
        let headers = self
            .headers(record)
            .insert(text_header("original-topic", &record.topic))
            .insert(text_header("error", error))
            .insert(text_header("retry-count", &retries));
        let in_flight = InFlight {
            row_id: Some(row_id),
            message_id: record.message_id.clone(),
            retry_count,
            scheduled: false,
            dead_letter: Some((record.topic.clone(), class.to_owned())),
            handed_at: Instant::now(),
            waiter: None,
        };
        self.produce(dead_letter_topic, record, headers, in_flight)
            .map_err(|(reason, _)| reason)
    }

    /// The client's headers, then ponte's: `message-id` and `source`.
    fn headers(&self, record: &Record) -> OwnedHeaders {
        let own = record.headers.iter().fold(
            OwnedHeaders::new_with_capacity(record.headers.len() + 5),
            |headers, header| {
                headers.insert(Header {
                    key: &header.name,
                    value: header.value.as_deref(),
                })
            },
        );
        own.insert(text_header("message-id", &record.message_id))
            .insert(text_header("source", &self.source))
    }

    fn produce(
        &self,
        topic: &str,
        record: &Record,
        headers: OwnedHeaders,
        in_flight: InFlight,
    ) -> Result<(), (SendError, Option<DeliveryWaiter>)> {
        let mut outgoing = BaseRecord::<[u8], [u8], _>::with_opaque_to(topic, Box::new(in_flight))
            .headers(headers);
        if let Some(value) = &record.value {
            outgoing = outgoing.payload(value.as_slice());
        }
        if let Some(key) = &record.key {
            outgoing = outgoing.key(key.as_slice());
        }
        // A dead-letter copy goes wherever the dead-letter topic's partitioner
        // puts it: the original partition may not exist there.
        if let Some(partition) = record.partition.filter(|_| topic == record.topic) {
            outgoing = outgoing.partition(partition);
        }
        if let Some(timestamp) = record.kafka_timestamp_ms {
            outgoing = outgoing.timestamp(timestamp);
        }
        self.producer.send(outgoing).map_err(|(error, returned)| {
            let reason = match error.rdkafka_error_code() {
                Some(RDKafkaErrorCode::QueueFull) => SendError::QueueFull,
                _ => SendError::Rejected(error.to_string()),
            };
            (reason, returned.delivery_opaque.waiter)
        })
    }

    /// Reports a stored record the producer refused outright (too large for it,
    /// say) exactly as if Kafka had refused it.
    pub fn refused_locally(&self, stored: &StoredRecord, scheduled: bool, error: &str) {
        let record = &stored.record;
        let in_flight = InFlight {
            row_id: Some(stored.id),
            message_id: record.message_id.clone(),
            retry_count: stored.retry_count,
            scheduled,
            dead_letter: None,
            handed_at: Instant::now(),
            waiter: None,
        };
        let lane = Lane::of(&record.topic, record.key.as_deref(), stored.id);
        self.producer
            .context()
            .failed(in_flight, error, FailureClass::Permanent, lane);
    }

    /// Withdraws every record still queued (not yet sent to a broker); each is
    /// reported as withdrawn and stays in the outbox.
    pub fn withdraw_queued(&self) {
        self.producer.purge(PurgeConfig::default().queue());
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

fn text_header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

impl Lane {
    fn of_message(topic: &str, key: Option<&[u8]>, in_flight: &InFlight) -> Lane {
        Lane::of(topic, key, in_flight.row_id.unwrap_or_default())
    }
}
