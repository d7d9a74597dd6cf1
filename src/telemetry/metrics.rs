//! Prometheus metrics: every series ponte exports, in one registry.
//!
//! Names start with `ponte_`; labels are bounded (route templates, methods,
//! statuses, topics, broker names, failure classes), never keys or message ids.
//! The Grafana dashboard and the alert rules in `deploy/` use exactly these names.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::Counters;

/// An HTTP request, by route template.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route template, such as `/topics/{topic}`, or `unmatched`.
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// HTTP status code.
    pub status: String,
}

/// An HTTP request's duration, by route template.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteTimeLabels {
    /// Route template.
    pub route: String,
    /// HTTP method.
    pub method: String,
}

/// Something that happened to records of one topic.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    /// The topic.
    pub topic: String,
}

/// A send's result, by topic.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// The topic.
    pub topic: String,
    /// `sent`, `retriable`, `permanent`, `unknown` or `withdrawn`.
    pub result: String,
}

/// A dead-lettered record, by topic and the class of its last failure.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadLetterLabels {
    /// The record's original topic.
    pub topic: String,
    /// `permanent` or `unknown`.
    pub class: String,
}

/// Outbox rows in one state.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// `pending`, `sent`, `failed` or `dlq`.
    pub status: String,
}

/// One broker.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BrokerLabels {
    /// The broker's name as librdkafka reports it (`host:port/id`).
    pub broker: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

fn size_histogram() -> Histogram {
    // 1 to 4096 records.
    Histogram::new(exponential_buckets(1.0, 2.0, 13))
}

/// All of ponte's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// The old middleware's totals, also exported.
    pub counters: Counters,
    /// HTTP requests.
    pub http_requests: Family<RouteLabels, Counter>,
    /// HTTP request durations.
    pub http_duration: Histograms<RouteTimeLabels>,
    /// Duration of one outbox group commit, fsync included.
    pub commit_duration: Histogram,
    /// Records written by one group commit.
    pub commit_records: Histogram,
    /// Time from handing a record to the producer until Kafka's report.
    pub delivery_duration: Histograms<TopicLabels>,
    /// Send results.
    pub deliveries: Family<ResultLabels, Counter>,
    /// Records sent again.
    pub retries: Family<TopicLabels, Counter>,
    /// Records moved to the dead-letter topic.
    pub dead_letters: Family<DeadLetterLabels, Counter>,
    /// Outbox rows by status (set at scrape time).
    pub outbox_rows: Family<StatusLabels, Gauge>,
    /// Age of the oldest unsent record (set at scrape time).
    pub oldest_unsent_age: Gauge<f64, AtomicU64>,
    /// Records in the producer's queue or in flight (librdkafka statistics).
    pub producer_queue: Gauge,
    /// Average broker round-trip time (librdkafka statistics).
    pub broker_rtt: Family<BrokerLabels, Gauge<f64, AtomicU64>>,
    /// 1 while a broker connection is up.
    pub kafka_connected: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("ponte"),
            counters: Counters::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            commit_duration: latency_histogram(),
            commit_records: size_histogram(),
            delivery_duration: Family::new_with_constructor(latency_histogram),
            deliveries: Family::default(),
            retries: Family::default(),
            dead_letters: Family::default(),
            outbox_rows: Family::default(),
            oldest_unsent_age: Gauge::default(),
            producer_queue: Gauge::default(),
            broker_rtt: Family::default(),
            kafka_connected: Gauge::default(),
        };
        metrics.register();
        metrics
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        self.counters.register(r);
        r.register(
            "http_requests",
            "HTTP requests by route, method and status",
            self.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "HTTP request duration by route and method",
            self.http_duration.clone(),
        );
        r.register(
            "outbox_commit_duration_seconds",
            "Duration of one outbox group commit, fsync included",
            self.commit_duration.clone(),
        );
        r.register(
            "outbox_commit_records",
            "Records written by one outbox group commit",
            self.commit_records.clone(),
        );
        r.register(
            "kafka_delivery_duration_seconds",
            "Time from handing a record to the producer until Kafka's report",
            self.delivery_duration.clone(),
        );
        r.register(
            "kafka_deliveries",
            "Send results by topic and result (sent, retriable, permanent, unknown, withdrawn)",
            self.deliveries.clone(),
        );
        r.register(
            "kafka_retries",
            "Records sent again after a failure or a restart, by topic",
            self.retries.clone(),
        );
        r.register(
            "dead_letters",
            "Records moved to the dead-letter topic by original topic and failure class",
            self.dead_letters.clone(),
        );
        r.register(
            "outbox_records",
            "Outbox rows by status",
            self.outbox_rows.clone(),
        );
        r.register(
            "outbox_oldest_unsent_age_seconds",
            "Age of the oldest record Kafka has not acknowledged yet",
            self.oldest_unsent_age.clone(),
        );
        r.register(
            "kafka_producer_queue_messages",
            "Records in the producer's queue or in flight",
            self.producer_queue.clone(),
        );
        r.register(
            "kafka_broker_rtt_seconds",
            "Average broker round-trip time",
            self.broker_rtt.clone(),
        );
        r.register(
            "kafka_connected",
            "1 while at least one broker connection is up",
            self.kafka_connected.clone(),
        );
    }

    /// Every metric in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }

    /// Counts a send's result for `topic`.
    pub fn delivery(&self, topic: &str, result: &str) {
        let labels = ResultLabels {
            topic: topic.to_owned(),
            result: result.to_owned(),
        };
        self.deliveries.get_or_create(&labels).inc();
    }

    /// Counts a record sent again for `topic`.
    pub fn retry(&self, topic: &str) {
        let labels = TopicLabels {
            topic: topic.to_owned(),
        };
        self.retries.get_or_create(&labels).inc();
    }
}
