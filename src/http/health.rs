//! `GET /health` in the old middleware's shape, telling the truth: Kafka is
//! `connected` only while a broker connection is up, and `pending` is counted in
//! the outbox at the time of the request.

use std::time::SystemTime;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

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

/// `200` with `"status": "healthy"` while Kafka is reachable and the outbox can be
/// written and read; otherwise `503` with `"status": "unhealthy"`, same body.
pub(super) async fn health(State(state): State<AppState>) -> Response {
    let connected = state.connectivity.is_connected();
    let (enabled, writable) = match &state.ingest {
        Ingest::Outbox(outbox) => (true, outbox.health().is_writable()),
        Ingest::Direct(_) => (false, true),
    };
    let pending = count_pending(&state).await;
    let healthy = connected && writable && pending.is_some();

    let body = Health {
        status: if healthy { "healthy" } else { "unhealthy" },
        timestamp: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        uptime: state.started.elapsed().as_secs(),
        kafka: KafkaHealth {
            connected,
            brokers: state.brokers.to_vec(),
            acks: "all",
        },
        outbox: OutboxHealth { enabled, pending },
        metrics: state.counters.snapshot(),
    };
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn count_pending(state: &AppState) -> Option<u64> {
    let Some(backlog) = state.backlog.clone() else {
        return Some(0);
    };
    let counted = tokio::task::spawn_blocking(move || {
        let mut backlog = backlog
            .lock()
            .map_err(|_| "outbox reader poisoned".to_owned())?;
        backlog.count_pending().map_err(|err| err.to_string())
    })
    .await;
    match counted {
        Ok(Ok(pending)) => Some(pending),
        Ok(Err(reason)) => {
            tracing::warn!(error = %reason, "counting pending records failed");
            None
        }
        Err(_) => None,
    }
}
