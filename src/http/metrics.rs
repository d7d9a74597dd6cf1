//! `GET /metrics`: the old middleware's JSON for plain clients (`curl`, `jq`), and
//! the Prometheus text format for a Prometheus scraper (asked for by `Accept`),
//! which is also always at `/metrics/prometheus`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;
use crate::outbox::StatusCounts;
use crate::telemetry::{BrokerLabels, CounterSnapshot, StatusLabels, process_memory};

/// Content type of the Prometheus text format, version 0.0.4.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// JSON or Prometheus text, by the `Accept` header.
pub(super) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if wants_prometheus(&headers) {
        prometheus(State(state)).await
    } else {
        json(&state).await.into_response()
    }
}

/// Prometheus sends `Accept: application/openmetrics-text...` or `text/plain`;
/// `curl` sends `*/*` and gets the middleware's JSON.
fn wants_prometheus(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains("openmetrics") || accept.contains("text/plain"))
}

/// Every metric in the Prometheus text format.
pub(super) async fn prometheus(State(state): State<AppState>) -> Response {
    refresh_gauges(&state).await;
    let mut response = state.metrics.encode().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROMETHEUS_TEXT),
    );
    response
}

/// Sets the gauges that are read, not counted: outbox depth and librdkafka's view.
async fn refresh_gauges(state: &AppState) {
    let metrics = &state.metrics;
    let ready = super::health::is_ready(state).await;
    metrics.ready.set(i64::from(ready));
    if let Ok(counts) = state.counts().await {
        let by_status = [
            ("pending", counts.pending),
            ("sent", counts.sent),
            ("failed", counts.failed),
            ("dlq", counts.dlq),
        ];
        for (status, rows) in by_status {
            let labels = StatusLabels {
                status: status.to_owned(),
            };
            metrics.outbox_rows.get_or_create(&labels).set(gauge(rows));
        }
        metrics.oldest_unsent_age.set(oldest_age_seconds(&counts));
    }
    let connectivity = &state.connectivity;
    metrics
        .producer_queue
        .set(gauge(connectivity.queued_messages()));
    metrics
        .kafka_connected
        .set(i64::from(connectivity.is_connected()));
    for (broker, rtt) in connectivity.round_trips() {
        metrics
            .broker_rtt
            .get_or_create(&BrokerLabels { broker })
            .set(rtt);
    }
}

fn gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn oldest_age_seconds(counts: &StatusCounts) -> f64 {
    let Some(oldest) = counts.oldest_unsent_ms else {
        return 0.0;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(oldest);
    (now - oldest).max(0) as f64 / 1000.0
}

#[derive(Serialize)]
struct MetricsJson {
    middleware: Process,
    metrics: CounterSnapshot,
    outbox: OutboxJson,
    kafka: KafkaJson,
}

#[derive(Serialize)]
struct Process {
    uptime: u64,
    memory: Memory,
    connected: bool,
}

/// The middleware reported Node's heap; ponte reports its resident and virtual
/// memory under the same names, so existing dashboards keep a meaningful line.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Memory {
    heap_used: u64,
    heap_total: u64,
}

#[derive(Serialize)]
struct OutboxJson {
    total: u64,
    pending: u64,
    sent: u64,
    failed: u64,
    dlq: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KafkaJson {
    cluster_id: Option<String>,
    brokers: Vec<String>,
    /// Not available through librdkafka's API: always `null`.
    controller: Option<i32>,
}

async fn json(state: &AppState) -> Json<MetricsJson> {
    let counts = state.counts().await.unwrap_or_default();
    let cluster_id = if state.connectivity.is_connected() {
        state.admin.cluster_id().await
    } else {
        None
    };
    Json(MetricsJson {
        middleware: Process {
            uptime: state.started.elapsed().as_secs(),
            memory: memory(),
            connected: state.connectivity.is_connected(),
        },
        metrics: state.counters.snapshot(),
        outbox: OutboxJson {
            total: counts.total(),
            pending: counts.pending,
            sent: counts.sent,
            failed: counts.failed,
            dlq: counts.dlq,
        },
        kafka: KafkaJson {
            cluster_id,
            brokers: state.connectivity.brokers_up(),
            controller: None,
        },
    })
}

/// Resident and virtual memory of this process.
fn memory() -> Memory {
    Memory {
        heap_used: process_memory("self", "VmRSS"),
        heap_total: process_memory("self", "VmSize"),
    }
}
