//! The load generator: HTTP requests to a running ponte, in a closed loop (a fixed
//! number of clients, each sending its next request when the last is answered) or
//! an open loop (requests due at fixed intervals from the start, whatever the
//! answers do).
//!
//! In the open loop a request's latency runs from the moment it was *due*, not
//! from when it could be sent: if ponte stalls, the requests that should have
//! gone out meanwhile count the stall too, instead of quietly not being sent
//! (the "coordinated omission" that makes a closed loop flatter a slow server).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use reqwest::header::{self, HeaderValue};
use tokio::sync::Semaphore;

use super::console::{Live, Progress};
use super::payload::{middleware_body, record_key, rest_proxy_body};
use super::{Api, Pace, Scenario};

/// Most open-loop requests in flight at once, each on its own connection; beyond
/// it the next request waits for a free slot, and its latency (counted from when
/// it was due) says so. Below ponte's default `max_connections` (1024), so that
/// an overloaded ponte shows as latency, not as refused connections.
const MAX_IN_FLIGHT: usize = 1000;

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Latencies are recorded in microseconds, up to this.
const HIGHEST_LATENCY_US: u64 = 120_000_000;

/// Where the requests go.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// ponte's base URL, such as `http://127.0.0.1:8081`.
    pub base_url: String,
    /// The topic to produce to.
    pub topic: String,
    /// An API key with the `produce` scope, when ponte needs one.
    pub api_key: Option<String>,
}

/// What one load run did.
#[derive(Debug)]
pub struct LoadOutcome {
    /// Record numbers handed out (`0..issued`).
    pub issued: u64,
    /// Numbers of the records ponte acknowledged (`200` or `202`).
    pub acknowledged: Vec<u64>,
    /// Requests answered `200`: Kafka acknowledged their records.
    pub confirmed: u64,
    /// Requests answered `202`: stored durably, not yet acknowledged by Kafka.
    pub stored: u64,
    /// Requests that failed (another status, or no answer).
    pub failed: u64,
    /// The first failure, as an example.
    pub first_failure: Option<String>,
    /// From the first request until the last answer.
    pub elapsed: Duration,
    /// Latency of the answered requests, in microseconds.
    pub latency: Histogram<u64>,
}

/// When request `n` of an open loop at `rate` requests per second is due,
/// counted from the start.
pub fn due(n: u64, rate: f64) -> Duration {
    Duration::from_secs_f64(n as f64 / rate)
}

/// Runs `scenario` against `endpoint`, with record keys `bench-<run>-<n>`.
pub async fn run(
    endpoint: &Endpoint,
    scenario: &Scenario,
    run: &str,
    progress: &Progress,
) -> Result<LoadOutcome, reqwest::Error> {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let shared = Arc::new(Shared::new(client, endpoint, scenario, run));
    let ticker = tokio::spawn(report_progress(Arc::clone(&shared), progress.clone()));

    let started = Instant::now();
    match scenario.pace {
        Pace::Closed { concurrency } => {
            closed_loop(&shared, concurrency, scenario.duration).await;
        }
        Pace::Open { rate } => open_loop(&shared, rate, scenario.duration).await,
    }
    let elapsed = started.elapsed();
    ticker.abort();
    Ok(shared.outcome(elapsed))
}

/// `concurrency` clients, each sending its next request once the last is answered.
async fn closed_loop(shared: &Arc<Shared>, concurrency: usize, duration: Duration) {
    let end = Instant::now() + duration;
    let clients: Vec<_> = (0..concurrency)
        .map(|_| {
            let shared = Arc::clone(shared);
            tokio::spawn(async move {
                while Instant::now() < end && !shared.enough() {
                    shared.send(Instant::now()).await;
                }
            })
        })
        .collect();
    for client in clients {
        let _ = client.await;
    }
}

/// Requests due every `1/rate` seconds for `duration`. The schedule is kept by
/// a thread of its own, which sleeps to the microsecond; tokio's timers tick in
/// milliseconds, which would add up to a millisecond to every latency.
async fn open_loop(shared: &Arc<Shared>, rate: f64, duration: Duration) {
    let runtime = tokio::runtime::Handle::current();
    let shared = Arc::clone(shared);
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let scheduler = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        for n in 0.. {
            let offset = due(n, rate);
            if offset >= duration {
                break;
            }
            let due_at = start + offset;
            std::thread::sleep(due_at.saturating_duration_since(Instant::now()));
            let Ok(slot) = runtime.block_on(Arc::clone(&slots).acquire_owned()) else {
                break;
            };
            let shared = Arc::clone(&shared);
            runtime.spawn(async move {
                shared.send(due_at).await;
                drop(slot);
            });
        }
        // Every slot back means every request has been answered.
        let all = u32::try_from(MAX_IN_FLIGHT).expect("MAX_IN_FLIGHT fits in u32");
        let _ = runtime.block_on(slots.acquire_many(all));
    });
    let _ = scheduler.await;
}

/// Refreshes the progress line four times a second.
async fn report_progress(shared: Arc<Shared>, progress: Progress) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        progress.update(&shared.live());
    }
}

/// What the request tasks share.
#[derive(Debug)]
struct Shared {
    client: reqwest::Client,
    url: String,
    api: Api,
    run: String,
    value: Arc<str>,
    respond_async: bool,
    idempotency: bool,
    api_key: Option<String>,
    record_limit: Option<u64>,
    started: Instant,
    next_record: AtomicU64,
    confirmed: AtomicU64,
    stored: AtomicU64,
    failed: AtomicU64,
    acknowledged: Mutex<Vec<u64>>,
    latency: Mutex<Histogram<u64>>,
    first_failure: Mutex<Option<String>>,
}

impl Shared {
    fn new(client: reqwest::Client, endpoint: &Endpoint, scenario: &Scenario, run: &str) -> Self {
        let latency = Histogram::new_with_bounds(1, HIGHEST_LATENCY_US, 3)
            .expect("constant histogram bounds are valid");
        Shared {
            client,
            url: format!("{}/topics/{}", endpoint.base_url, endpoint.topic),
            api: scenario.api,
            run: run.to_owned(),
            value: scenario.payload.value(),
            respond_async: scenario.respond_async,
            idempotency: scenario.idempotency,
            api_key: endpoint.api_key.clone(),
            record_limit: scenario.records,
            started: Instant::now(),
            next_record: AtomicU64::new(0),
            confirmed: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            acknowledged: Mutex::new(Vec::new()),
            latency: Mutex::new(latency),
            first_failure: Mutex::new(None),
        }
    }

    /// The run's record limit is reached (a closed loop may overshoot it by a
    /// request per client).
    fn enough(&self) -> bool {
        let issued = self.next_record.load(Ordering::Relaxed);
        self.record_limit.is_some_and(|limit| issued >= limit)
    }

    /// Sends one request that was due at `due_at` and records its answer.
    async fn send(&self, due_at: Instant) {
        let count = self.api.records_per_request();
        let first = self.next_record.fetch_add(count, Ordering::Relaxed);
        let keys: Vec<String> = (first..first + count)
            .map(|n| record_key(&self.run, n))
            .collect();

        match self.request(&keys).await {
            Ok((status, body)) => {
                let acked = acknowledged(self.api, status, &body, keys.len());
                self.record_answer(status, first, &acked, due_at.elapsed());
                if !matches!(status, 200 | 202) {
                    let body = String::from_utf8_lossy(&body);
                    self.record_failure(format!("status {status}: {body}"));
                }
            }
            Err(err) => self.record_failure(format!("{err:#}")),
        }
    }

    async fn request(&self, keys: &[String]) -> Result<(u16, Vec<u8>), reqwest::Error> {
        let (content_type, body) = match self.api {
            Api::Middleware => ("application/json", middleware_body(&keys[0], &self.value)),
            Api::RestProxy { .. } => (
                "application/vnd.kafka.json.v2+json",
                rest_proxy_body(keys, &self.value),
            ),
        };
        let mut request = self
            .client
            .post(&self.url)
            .header(header::CONTENT_TYPE, content_type)
            .body(body);
        if let Api::RestProxy { .. } = self.api {
            request = request.header(header::ACCEPT, "application/vnd.kafka.v2+json");
        }
        if self.respond_async {
            request = request.header("Prefer", HeaderValue::from_static("respond-async"));
        }
        if self.idempotency {
            request = request.header("Idempotency-Key", &keys[0]);
        }
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.bytes().await?;
        Ok((status, body.to_vec()))
    }

    fn record_answer(&self, status: u16, first: u64, acked: &[bool], latency: Duration) {
        let counter = match status {
            200 => &self.confirmed,
            202 => &self.stored,
            _ => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let numbers = (first..).zip(acked).filter(|(_, ok)| **ok).map(|(n, _)| n);
        if let Ok(mut acknowledged) = self.acknowledged.lock() {
            acknowledged.extend(numbers);
        }
        if matches!(status, 200 | 202)
            && let Ok(mut histogram) = self.latency.lock()
        {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            histogram.saturating_record(micros.max(1));
        }
    }

    fn record_failure(&self, reason: String) {
        if let Ok(mut first) = self.first_failure.lock() {
            first.get_or_insert(reason);
        }
    }

    /// The counts so far, for the progress line.
    fn live(&self) -> Live {
        let p99_ms = self
            .latency
            .lock()
            .map(|h| h.value_at_quantile(0.99) as f64 / 1000.0)
            .unwrap_or_default();
        let failed = self.failed.load(Ordering::Relaxed);
        Live {
            elapsed: self.started.elapsed(),
            answered: self.confirmed.load(Ordering::Relaxed)
                + self.stored.load(Ordering::Relaxed)
                + failed,
            failed,
            p99_ms,
        }
    }

    fn outcome(&self, elapsed: Duration) -> LoadOutcome {
        let acknowledged = self
            .acknowledged
            .lock()
            .map(|mut numbers| std::mem::take(&mut *numbers))
            .unwrap_or_default();
        let latency = self.latency.lock().map(|h| h.clone());
        LoadOutcome {
            issued: self.next_record.load(Ordering::Relaxed),
            acknowledged,
            confirmed: self.confirmed.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            first_failure: self.first_failure.lock().ok().and_then(|f| f.clone()),
            elapsed,
            latency: latency.unwrap_or_else(|_| Histogram::new(3).expect("3 digits is valid")),
        }
    }
}

/// Which of a request's `records` ponte acknowledged, from its answer: all of
/// them for a `200` or `202` of the middleware API; for the REST Proxy API, the
/// ones whose `offsets` entry carries no error.
pub fn acknowledged(api: Api, status: u16, body: &[u8], records: usize) -> Vec<bool> {
    if !matches!(status, 200 | 202) {
        return vec![false; records];
    }
    if let Api::Middleware = api {
        return vec![true; records];
    }
    let answer: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    match answer["offsets"].as_array() {
        Some(offsets) if offsets.len() == records => offsets
            .iter()
            .map(|entry| entry["error_code"].is_null() && entry["error"].is_null())
            .collect(),
        // A success status without one entry per record: the status is the promise.
        _ => vec![true; records],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_requests_are_due_at_even_intervals_from_the_start() {
        assert_eq!(due(0, 1000.0), Duration::ZERO);
        assert_eq!(due(1, 1000.0), Duration::from_millis(1));
        assert_eq!(due(2_500, 1000.0), Duration::from_millis(2_500));
        assert_eq!(due(3, 4.0), Duration::from_millis(750));
    }

    #[test]
    fn a_ten_second_open_loop_at_1000_per_second_sends_ten_thousand_requests() {
        let sent = (0..).take_while(|&n| due(n, 1000.0) < Duration::from_secs(10));
        assert_eq!(sent.count(), 10_000);
    }

    #[test]
    fn a_middleware_answer_acknowledges_its_record_on_200_and_202_only() {
        assert_eq!(acknowledged(Api::Middleware, 200, b"{}", 1), [true]);
        assert_eq!(acknowledged(Api::Middleware, 202, b"{}", 1), [true]);
        assert_eq!(acknowledged(Api::Middleware, 503, b"{}", 1), [false]);
    }

    #[test]
    fn a_rest_proxy_answer_acknowledges_the_records_without_an_error() {
        let api = Api::RestProxy { batch: 3 };
        let body = br#"{"key_schema_id":null,"value_schema_id":null,"offsets":[
            {"partition":0,"offset":12,"error_code":null,"error":null},
            {"partition":null,"offset":null,"error_code":50002,"error":"not stored"},
            {"partition":1,"offset":4,"error_code":null,"error":null}]}"#;
        assert_eq!(acknowledged(api, 200, body, 3), [true, false, true]);
        assert_eq!(acknowledged(api, 500, body, 3), [false, false, false]);
    }
}
