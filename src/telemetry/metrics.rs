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
    /// 1 while ponte can take and deliver records (as `/health/ready` says).
    pub ready: Gauge,
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
            ready: Gauge::default(),
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
        r.register(
            "ready",
            "1 while ponte can take and deliver records (as /health/ready says)",
            self.ready.clone(),
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Every `ponte_...` name in `text`, without histogram sample suffixes.
    fn used_names(text: &str) -> HashSet<String> {
        let mut names = HashSet::new();
        let mut rest = text;
        while let Some(start) = rest.find("ponte_") {
            let tail = &rest[start..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            let name = &tail[..end];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            names.insert(base.to_owned());
            rest = &tail[end..];
        }
        names
    }

    /// The names the registry declares, with one sample in every labelled family
    /// (an empty family is not printed at all).
    fn declared_names() -> HashSet<String> {
        let metrics = Metrics::new();
        let route = RouteLabels {
            route: "/r".to_owned(),
            method: "GET".to_owned(),
            status: "200".to_owned(),
        };
        let timing = RouteTimeLabels {
            route: "/r".to_owned(),
            method: "GET".to_owned(),
        };
        let topic = TopicLabels {
            topic: "t".to_owned(),
        };
        let dead = DeadLetterLabels {
            topic: "t".to_owned(),
            class: "permanent".to_owned(),
        };
        metrics.http_requests.get_or_create(&route).inc();
        metrics.http_duration.get_or_create(&timing).observe(0.1);
        metrics.delivery_duration.get_or_create(&topic).observe(0.1);
        metrics.delivery("t", "sent");
        metrics.retry("t");
        metrics.dead_letters.get_or_create(&dead).inc();
        metrics
            .outbox_rows
            .get_or_create(&StatusLabels {
                status: "sent".to_owned(),
            })
            .set(1);
        metrics
            .broker_rtt
            .get_or_create(&BrokerLabels {
                broker: "b".to_owned(),
            })
            .set(0.1);

        metrics
            .encode()
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|line| line.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_dashboard_and_alert_rules_use_only_metrics_ponte_exports() {
        let declared = declared_names();
        let files = [
            (
                "dashboard",
                include_str!("../../deploy/grafana/ponte-dashboard.json"),
            ),
            (
                "alerts",
                include_str!("../../deploy/prometheus/ponte-alerts.yml"),
            ),
        ];
        for (file, text) in files {
            let used = used_names(text);
            let unknown: Vec<&String> = used.iter().filter(|n| !declared.contains(*n)).collect();
            assert!(!used.is_empty(), "{file} uses ponte metrics");
            assert!(
                unknown.is_empty(),
                "{file} uses names ponte does not export: {unknown:?}"
            );
        }
    }

    #[test]
    fn the_dashboard_is_grafana_json_with_a_panel_for_each_concern() {
        let text = include_str!("../../deploy/grafana/ponte-dashboard.json");
        let dashboard: serde_json::Value = serde_json::from_str(text).expect("JSON");
        let panels = dashboard["panels"].as_array().expect("panels");
        assert!(panels.len() >= 10);
        assert!(
            panels
                .iter()
                .all(|p| p["targets"].as_array().is_some_and(|t| !t.is_empty()))
        );
    }
}
