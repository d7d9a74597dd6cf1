//! Telemetry: log output and the counters behind `/health`.
//!
//! Logs follow one rule: a constant message with structured fields, `info` for
//! lifecycle events only, `warn` for a degraded dependency, `error` for a durable
//! write that failed. Nothing is logged at `info` per request.

mod metrics;

use std::io::IsTerminal;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

use serde::Serialize;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogLevel};

pub use metrics::{
    BrokerLabels, DeadLetterLabels, Metrics, ResultLabels, RouteLabels, RouteTimeLabels,
    StatusLabels, TopicLabels,
};

/// Installs the global log subscriber. `RUST_LOG`, when set, wins over `level`, so
/// that one module can be turned up without touching the others.
pub fn init_logging(level: LogLevel, format: LogFormat) {
    let default = match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);

    // A second initialisation (tests, or a library user with its own subscriber)
    // keeps the first one, which is what both want.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// A memory figure (such as `VmRSS`) of process `pid` (`"self"` for this one), in
/// bytes, from `/proc/PID/status`; 0 where it cannot be read.
pub fn process_memory(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Running totals since start, in the old middleware's names. Cheap to clone:
/// clones share the same totals.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    received: Counter,
    sent: Counter,
    failed: Counter,
    retries: Counter,
    dead_lettered: Counter,
}

/// A copy of the counters at one moment, serialised as the middleware did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterSnapshot {
    /// Records accepted (stored, or handed to Kafka when the outbox is off).
    pub total_received: u64,
    /// Records Kafka acknowledged.
    pub total_sent: u64,
    /// Sends that failed.
    pub total_failed: u64,
    /// Records sent again after a failure or a restart.
    pub total_retries: u64,
    /// Records moved to the dead-letter topic.
    #[serde(rename = "totalDLQ")]
    pub total_dlq: u64,
}

impl Counters {
    fn register(&self, registry: &mut Registry) {
        let totals = [
            ("records_received", "Records accepted", &self.received),
            ("records_sent", "Records Kafka acknowledged", &self.sent),
            (
                "send_failures",
                "Sends that failed, of any kind",
                &self.failed,
            ),
            (
                "records_retried",
                "Records sent again after a failure or a restart",
                &self.retries,
            ),
            (
                "records_dead_lettered",
                "Records moved to the dead-letter topic",
                &self.dead_lettered,
            ),
        ];
        for (name, help, counter) in totals {
            registry.register(name, help, counter.clone());
        }
    }

    /// A record was accepted.
    pub fn record_received(&self) {
        self.received.inc();
    }

    /// Kafka acknowledged a record.
    pub fn record_sent(&self) {
        self.sent.inc();
    }

    /// A send failed.
    pub fn record_failed(&self) {
        self.failed.inc();
    }

    /// A record is being sent again.
    pub fn record_retry(&self) {
        self.retries.inc();
    }

    /// A record's copy reached the dead-letter topic.
    pub fn record_dead_lettered(&self) {
        self.dead_lettered.inc();
    }

    /// Records Kafka acknowledged so far.
    pub fn sent(&self) -> u64 {
        self.sent.get()
    }

    /// The current totals.
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            total_received: self.received.get(),
            total_sent: self.sent.get(),
            total_failed: self.failed.get(),
            total_retries: self.retries.get(),
            total_dlq: self.dead_lettered.get(),
        }
    }
}
