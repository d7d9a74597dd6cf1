//! HTTP in: the routes ponte serves and the state they share.
//!
//! Every failure a route can meet is an [`error::ApiError`], and that one type
//! decides each HTTP status and error body, so clients always get
//! `{"error_code": ..., "message": "..."}` and never a bare 500.

mod answer;
pub mod error;
mod health;
pub mod messages;
mod produce;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};

use crate::kafka::Connectivity;
use crate::outbox::{Backlog, Outbox};
use crate::relay::Publisher;
use crate::telemetry::Counters;

/// How accepted records reach Kafka.
#[derive(Debug, Clone)]
pub enum Ingest {
    /// Stored durably first, then relayed (`ENABLE_OUTBOX=true`).
    Outbox(Outbox),
    /// Handed straight to the producer (`ENABLE_OUTBOX=false`).
    Direct(Publisher),
}

/// What the routes share.
#[derive(Clone)]
pub struct AppState {
    /// Where accepted records go.
    pub ingest: Ingest,
    /// Read access to the outbox for counting, when there is one.
    pub backlog: Option<Arc<Mutex<dyn Backlog>>>,
    /// Broker connectivity.
    pub connectivity: Arc<Connectivity>,
    /// Running totals.
    pub counters: Arc<Counters>,
    /// The configured bootstrap brokers, as `/health` lists them.
    pub brokers: Arc<[String]>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How long a request waits for Kafka before answering `202`.
    pub ack_timeout: Duration,
    /// When ponte started.
    pub started: Instant,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("ingest", &self.ingest)
            .field("brokers", &self.brokers)
            .finish_non_exhaustive()
    }
}

/// All routes, with JSON answers for unknown paths and methods too.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/topics/{topic}", post(produce::produce))
        .route("/health", get(health::health))
        .route("/messages", get(messages::list))
        .route("/messages/replay", post(messages::replay))
        .route("/messages/{message_id}", get(messages::show))
        .route("/messages/{message_id}/retry", post(messages::retry))
        .fallback(error::unknown_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
}
