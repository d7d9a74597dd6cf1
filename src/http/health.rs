//! Health: `GET /health` in the old middleware's shape, telling the truth, plus
//! `/health/live` and `/health/ready` for load balancers and Kubernetes probes.

use std::time::SystemTime;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::{AppState, Ingest};
use crate::telemetry::CounterSnapshot;

#[derive(Serialize)]
struct Health {
    status: &'static str,
    timestamp: String,
    uptime: u64,
    kafka: KafkaHealth,
    outbox: OutboxHealth,
    metrics: CounterSnapshot,
}

#[derive(Serialize)]
struct KafkaHealth {
    connected: bool,
    brokers: Vec<String>,
    acks: &'static str,
}

#[derive(Serialize)]
struct OutboxHealth {
    enabled: bool,
    /// `None` (JSON `null`) when the outbox could not be read.
    pending: Option<u64>,
}

/// What readiness depends on, looked at once.
struct Readiness {
    kafka_connected: bool,
    outbox_enabled: bool,
    outbox_writable: bool,
    pending: Option<u64>,
}

impl Readiness {
    async fn of(state: &AppState) -> Readiness {
        let (outbox_enabled, outbox_writable) = match &state.ingest {
            Ingest::Outbox(outbox) => (true, outbox.health().is_writable()),
            Ingest::Direct(_) => (false, true),
        };
        let counts = state.counts().await;
        if let Err(reason) = &counts {
            tracing::warn!(error = %reason, "reading outbox counts failed");
        }
        Readiness {
            kafka_connected: state.connectivity.is_connected(),
            outbox_enabled,
            outbox_writable,
            pending: counts.ok().map(|c| c.pending),
        }
    }

    /// Why ponte is not ready, if it is not.
    fn reasons(&self) -> Vec<&'static str> {
        let mut reasons = Vec::new();
        if !self.kafka_connected {
            reasons.push("kafka is unreachable");
        }
        if !self.outbox_writable {
            reasons.push("the outbox cannot be written");
        }
        if self.pending.is_none() {
            reasons.push("the outbox cannot be read");
        }
        reasons
    }
}

fn status_code(healthy: bool) -> StatusCode {
    if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// `200` with `"status": "healthy"` while Kafka is reachable and the outbox can be
/// written and read; otherwise `503` with `"status": "unhealthy"`, same body.
pub(super) async fn health(State(state): State<AppState>) -> Response {
    let readiness = Readiness::of(&state).await;
    let healthy = readiness.reasons().is_empty();
    let body = Health {
        status: if healthy { "healthy" } else { "unhealthy" },
        timestamp: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        uptime: state.started.elapsed().as_secs(),
        kafka: KafkaHealth {
            connected: readiness.kafka_connected,
            brokers: state.brokers.to_vec(),
            acks: "all",
        },
        outbox: OutboxHealth {
            enabled: readiness.outbox_enabled,
            pending: readiness.pending,
        },
        metrics: state.counters.snapshot(),
    };
    (status_code(healthy), Json(body)).into_response()
}

/// Whether ponte can take and deliver records now.
pub(super) async fn is_ready(state: &AppState) -> bool {
    Readiness::of(state).await.reasons().is_empty()
}

/// `200` while the process serves requests at all.
pub(super) async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "alive" }))
}

/// `200` when ponte can take and deliver records; `503` with the reasons when
/// Kafka is unreachable or the outbox cannot be written or read.
pub(super) async fn ready(State(state): State<AppState>) -> Response {
    let reasons = Readiness::of(&state).await.reasons();
    let body = if reasons.is_empty() {
        json!({ "status": "ready" })
    } else {
        json!({ "status": "not ready", "reasons": reasons })
    };
    (status_code(reasons.is_empty()), Json(body)).into_response()
}
