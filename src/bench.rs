//! `ponte bench`: measures ponte against the limits of the machine and the broker
//! it runs on, and proves every measured record arrived exactly once.
//!
//! The pieces, in the order a run uses them:
//!
//! - [`payload`]: the record values (the Protheus invoice, or generated values of
//!   200 B, 2 KB, 100 KB) and the request bodies of both APIs;
//! - [`load`]: the load generator, a closed loop (fixed concurrency) or an open
//!   loop (fixed offered rate, latency counted from each request's due time);
//! - [`verify`]: reads the topic back and counts acknowledged records that are
//!   missing and records that arrived twice;
//! - [`limits`]: the disk's fsync rate and a native idempotent producer's rate
//!   into the same broker, the two ceilings ponte is compared with;
//! - [`target`]: the ponte under test, from outside: readiness, outbox depth,
//!   commit counters, memory;
//! - [`suite`]: every scenario of the report in one run; [`report`] and [`plot`]
//!   write `docs/benchmarks.md` and its SVG plots from the results;
//! - [`console`]: the live progress line.
//!
//! A run whose acknowledged records are not all in Kafka exactly once, or whose
//! requests failed, is reported as failed whatever its speed.

pub mod broker;
pub mod console;
pub mod limits;
pub mod load;
pub mod machine;
pub mod payload;
pub mod plot;
pub mod report;
pub mod suite;
pub mod target;
pub mod verify;

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use broker::Cluster;
use console::Progress;
use load::{Endpoint, LoadOutcome};
use payload::Payload;
use target::{CommitTotals, Probe};
use verify::{Tally, Verdict};

/// How long a run's records may take to reach Kafka after the load stops.
const DRAIN_PATIENCE: Duration = Duration::from_secs(300);

/// How long reading a run's topic back may take.
const VERIFY_PATIENCE: Duration = Duration::from_secs(300);

/// Why a benchmark could not run (as opposed to ran and failed its checks).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    /// Kafka refused a request.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A file or process could not be handled.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        source: std::io::Error,
    },
    /// ponte did not become ready in time.
    #[error("ponte did not answer 200 on /health/ready within {0:?}; see its log in {1}")]
    NotReady(Duration, String),
}

impl BenchError {
    /// An I/O failure while doing `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Io { what, source }
    }
}

/// Which of ponte's produce APIs a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Api {
    /// `POST /topics/{topic}` with the old middleware's `{"key", "data"}`.
    Middleware,
    /// `POST /topics/{topic}` with a Confluent REST Proxy v2 JSON batch.
    RestProxy {
        /// Records per request.
        batch: u64,
    },
}

impl Api {
    /// Records in one request.
    pub fn records_per_request(self) -> u64 {
        match self {
            Api::Middleware => 1,
            Api::RestProxy { batch } => batch.max(1),
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Api::Middleware => f.write_str("middleware"),
            Api::RestProxy { batch } => write!(f, "REST Proxy ×{batch}"),
        }
    }
}

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Pace {
    /// This many clients, each waiting for its answer before the next request.
    Closed {
        /// Clients.
        concurrency: usize,
    },
    /// Requests due at a fixed rate, answered or not.
    Open {
        /// Requests per second.
        rate: f64,
    },
}

impl fmt::Display for Pace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pace::Closed { concurrency } => write!(f, "{concurrency} clients"),
            Pace::Open { rate } => write!(f, "{rate:.0} req/s offered"),
        }
    }
}

/// One benchmark run's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// A short name for tables and the progress line.
    pub name: String,
    /// Which API.
    pub api: Api,
    /// Closed or open loop.
    pub pace: Pace,
    /// How long requests are sent.
    #[serde(serialize_with = "seconds", deserialize_with = "from_seconds")]
    pub duration: Duration,
    /// The record value.
    pub payload: Payload,
    /// Ask for `202` right after the durable commit (`Prefer: respond-async`)
    /// instead of waiting for Kafka's acknowledgement.
    pub respond_async: bool,
    /// Send an `Idempotency-Key` header with every request.
    pub idempotency: bool,
    /// Stop a closed loop after about this many records, even before `duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
}

fn seconds<S: serde::Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(duration.as_secs_f64())
}

fn from_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let seconds = f64::deserialize(d)?;
    Duration::try_from_secs_f64(seconds).map_err(serde::de::Error::custom)
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn of(histogram: &Histogram<u64>) -> Percentiles {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Percentiles {
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
        }
    }
}

/// What one run measured and what verification found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// The settings.
    pub scenario: Scenario,
    /// Size of one record value in bytes.
    pub value_bytes: usize,
    /// Requests answered `200` (Kafka acknowledged).
    pub confirmed: u64,
    /// Requests answered `202` (stored, Kafka not yet).
    pub stored: u64,
    /// Requests that failed.
    pub failed: u64,
    /// The first failure, as an example.
    pub first_failure: Option<String>,
    /// Seconds from the first request to the last answer.
    pub seconds: f64,
    /// Answered requests per second.
    pub requests_per_second: f64,
    /// Acknowledged records per second.
    pub records_per_second: f64,
    /// Latency of the answered requests.
    pub latency_ms: Percentiles,
    /// ponte's group commits during the run and until its records were in Kafka.
    pub commits: Option<CommitTotals>,
    /// Seconds from the end of the load until the outbox held nothing unsent.
    pub drain_seconds: Option<f64>,
    /// What reading the topic back found.
    pub verdict: Option<Verdict>,
    /// Why the topic could not be read back, if it could not.
    pub verify_error: Option<String>,
}

impl RunResult {
    fn new(scenario: &Scenario, outcome: &LoadOutcome) -> RunResult {
        let seconds = outcome.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        let answered = outcome.confirmed + outcome.stored;
        RunResult {
            scenario: scenario.clone(),
            value_bytes: scenario.payload.value().len(),
            confirmed: outcome.confirmed,
            stored: outcome.stored,
            failed: outcome.failed,
            first_failure: outcome.first_failure.clone(),
            seconds,
            requests_per_second: answered as f64 / seconds,
            records_per_second: outcome.acknowledged.len() as f64 / seconds,
            latency_ms: Percentiles::of(&outcome.latency),
            commits: None,
            drain_seconds: None,
            verdict: None,
            verify_error: None,
        }
    }

    /// No request failed and every acknowledged record is in Kafka exactly once.
    pub fn passed(&self) -> bool {
        self.failed == 0 && self.verdict.is_some_and(|v| v.exactly_once())
    }

    /// Group commits per second over the run.
    pub fn commits_per_second(&self) -> Option<f64> {
        self.commits.map(|c| c.commits / self.seconds)
    }
}

/// Runs `scenario` against the ponte at `endpoint`, waits for its records to
/// reach Kafka, and reads them back from `cluster`. Record keys are
/// `bench-<run>-<n>`.
pub async fn run_scenario(
    endpoint: &Endpoint,
    cluster: &Cluster,
    scenario: &Scenario,
    run: &str,
) -> Result<RunResult, BenchError> {
    cluster.prepare_topic(&endpoint.topic).await?;
    let probe = Probe::new(&endpoint.base_url, endpoint.api_key.clone());
    let before = probe.commit_totals().await;

    let progress = Progress::start(&scenario.name, scenario.duration);
    let outcome = load::run(endpoint, scenario, run, &progress).await?;
    progress.finish();
    let mut result = RunResult::new(scenario, &outcome);

    result.drain_seconds = probe
        .wait_drained(DRAIN_PATIENCE)
        .await
        .map(|d| d.as_secs_f64());
    let after = probe.commit_totals().await;
    result.commits = before.zip(after).map(|(b, a)| b.until(a));

    let tally = Tally::new(
        payload::key_prefix(run),
        outcome.issued,
        &outcome.acknowledged,
    );
    match verify(&cluster.bootstrap, &endpoint.topic, tally).await {
        Ok(verdict) => result.verdict = Some(verdict),
        Err(err) => result.verify_error = Some(err),
    }
    Ok(result)
}

/// Reads `topic` back into `tally` on a blocking thread.
pub async fn verify(brokers: &str, topic: &str, mut tally: Tally) -> Result<Verdict, String> {
    let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        verify::read_topic(&brokers, &topic, &mut tally, VERIFY_PATIENCE)
            .map_err(|err| err.to_string())
    })
    .await
    .unwrap_or_else(|err| Err(format!("verification task failed: {err}")))
}
