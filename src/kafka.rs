//! Kafka: the producer's configuration, the broker connectivity view behind
//! `/health`, and the embedded cluster of `ponte serve --dev`.
//!
//! The producer always runs with `enable.idempotence=true` and `acks=all`; the
//! settings that shape it (compression, linger, message timeout) come from
//! [`crate::config::Settings`], and anything else librdkafka understands can be
//! passed through `kafka_properties`.

pub mod classify;
pub mod dev;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rdkafka::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;

use crate::config::Settings;

/// Room for the record's headers and batch overhead above the largest body ponte
/// accepts, so that librdkafka never refuses a record the HTTP layer let in.
const MESSAGE_OVERHEAD_BYTES: usize = 64 * 1024;

/// Bounds of the producer's queue, unless the configuration sets them.
const QUEUE_LIMITS: [(&str, &str); 2] = [
    ("queue.buffering.max.messages", "20000"),
    ("queue.buffering.max.kbytes", "16384"),
];

/// The producer configuration ponte runs with; see the module documentation.
pub fn producer_config(settings: &Settings) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (name, value) in &settings.kafka_properties {
        config.set(name, value);
    }
    if !settings.kafka_properties.contains_key("message.max.bytes") {
        let largest = settings.max_body_bytes + MESSAGE_OVERHEAD_BYTES;
        config.set("message.max.bytes", largest.to_string());
    }
    // librdkafka's own queue limits (100,000 records, 1 GiB) would let a long
    // outage fill memory; the outbox is the buffer, so the producer's stays small.
    for (name, value) in QUEUE_LIMITS {
        if !settings.kafka_properties.contains_key(name) {
            config.set(name, value);
        }
    }
    if !settings.kafka_properties.contains_key("partitioner") {
        // The Java client and KafkaJS hash keys with murmur2; using it too keeps
        // every key on the partition it had before ponte replaced them.
        config.set("partitioner", "murmur2_random");
    }
    config
        .set("bootstrap.servers", settings.broker_list().join(","))
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", settings.kafka_compression.as_str())
        .set("linger.ms", settings.kafka_linger_ms.to_string())
        .set(
            "message.timeout.ms",
            settings.kafka_message_timeout_ms.to_string(),
        )
        .set(
            "statistics.interval.ms",
            settings.kafka_statistics_interval_ms.to_string(),
        )
        .set_log_level(log_level(settings));
    config
}

/// Checks every librdkafka property by building a native configuration, which
/// needs no broker: an unknown name or a bad value is reported here, at startup.
pub fn check_producer_config(settings: &Settings) -> Result<(), KafkaError> {
    producer_config(settings).create_native_config().map(drop)
}

fn log_level(settings: &Settings) -> RDKafkaLogLevel {
    use crate::config::LogLevel;
    match settings.log_level {
        LogLevel::Error => RDKafkaLogLevel::Error,
        LogLevel::Warn | LogLevel::Info => RDKafkaLogLevel::Warning,
        LogLevel::Debug | LogLevel::Trace => RDKafkaLogLevel::Info,
    }
}

/// What ponte knows about its brokers right now, kept current by librdkafka's
/// statistics and error callbacks.
#[derive(Debug, Default)]
pub struct Connectivity {
    connected: AtomicBool,
    queued_messages: AtomicU64,
    brokers_up: Mutex<Vec<String>>,
    round_trips: Mutex<Vec<(String, f64)>>,
}

impl Connectivity {
    /// True while at least one broker connection is up.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Records waiting in the producer's queue or in flight to a broker.
    pub fn queued_messages(&self) -> u64 {
        self.queued_messages.load(Ordering::Relaxed)
    }

    /// Names (`host:port/id`) of the brokers whose connection is up.
    pub fn brokers_up(&self) -> Vec<String> {
        self.brokers_up
            .lock()
            .map(|brokers| brokers.clone())
            .unwrap_or_default()
    }

    /// Average round-trip time in seconds of each broker that reported one.
    pub fn round_trips(&self) -> Vec<(String, f64)> {
        self.round_trips
            .lock()
            .map(|rtts| rtts.clone())
            .unwrap_or_default()
    }

    /// Takes in one statistics report from librdkafka.
    pub fn observe(&self, statistics: &Statistics) {
        let rtts: Vec<(String, f64)> = statistics
            .brokers
            .values()
            .filter(|broker| broker.nodeid >= 0)
            .filter_map(|broker| {
                let window = broker.rtt.as_ref()?;
                Some((broker.name.clone(), window.avg as f64 / 1_000_000.0))
            })
            .collect();
        if let Ok(mut round_trips) = self.round_trips.lock() {
            *round_trips = rtts;
        }
        let up: Vec<String> = statistics
            .brokers
            .values()
            .filter(|broker| broker.state == "UP")
            .map(|broker| broker.name.clone())
            .collect();

        self.connected.store(!up.is_empty(), Ordering::Relaxed);
        self.queued_messages
            .store(statistics.msg_cnt, Ordering::Relaxed);
        if let Ok(mut brokers) = self.brokers_up.lock() {
            *brokers = up;
        }
    }

    /// A record was delivered, or Kafka answered a metadata request: a broker is
    /// reachable, whatever the last statistics report (which comes only every
    /// `kafka_statistics_interval_ms`) said.
    pub fn observe_reachable(&self) {
        self.connected.store(true, Ordering::Relaxed);
    }

    /// Takes in an error librdkafka reported outside any single record.
    pub fn observe_error(&self, error: &KafkaError) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.connected.store(false, Ordering::Relaxed);
        }
    }
}

/// Forwards one librdkafka log line to `tracing`, at the matching level.
pub fn forward_log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", facility, message, "librdkafka error");
        }
        RDKafkaLogLevel::Warning => {
            tracing::warn!(target: "librdkafka", facility, message, "librdkafka warning");
        }
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", facility, message, "librdkafka notice");
        }
        RDKafkaLogLevel::Debug => {
            tracing::debug!(target: "librdkafka", facility, message, "librdkafka debug");
        }
    }
}
