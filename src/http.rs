//! HTTP in: the routes ponte serves and the state they share.
//!
//! Every failure a route can meet is an [`error::ApiError`], and that one type
//! decides each HTTP status and error body, so clients always get
//! `{"error_code": ..., "message": "..."}` and never a bare 500.

mod answer;
pub mod auth;
pub mod error;
mod health;
pub mod messages;
mod metrics;
mod produce;
mod publish;
mod rest_proxy;
mod topics;
mod track;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::middleware;
use axum::routing::{delete, get, post};
use axum::{Extension, Router};

use crate::admin::Admin;
use crate::auth::KeyRing;
use crate::kafka::Connectivity;
use crate::outbox::{AuditEntry, Backlog, Outbox, StatusCounts, StoreError};
use crate::relay::Publisher;
use crate::telemetry::{Counters, Metrics};
use crate::validate::BodyLimits;
use crate::validate::schemas::Schemas;
use auth::Caller;

/// The SHA-256 fingerprint (hex) of the certificate the client showed over TLS,
/// verified against `tls_client_ca_path`; `None` without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate(pub Option<String>);

/// A request-rate limiter keyed by API key name.
pub type KeyedLimiter = governor::DefaultKeyedRateLimiter<String>;

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
    /// Read access to the outbox, when there is one.
    pub backlog: Option<Arc<Mutex<dyn Backlog>>>,
    /// Topics and brokers.
    pub admin: Admin,
    /// API keys; empty for anonymous access.
    pub keys: Arc<KeyRing>,
    /// Broker connectivity.
    pub connectivity: Arc<Connectivity>,
    /// Running totals.
    pub counters: Arc<Counters>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The configured bootstrap brokers, as `/health` lists them.
    pub brokers: Arc<[String]>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Key length and nesting limits of a body.
    pub body_limits: BodyLimits,
    /// Requests per second per API key, when limited.
    pub rate_limiter: Option<Arc<KeyedLimiter>>,
    /// How long a request waits for Kafka before answering `202`.
    pub ack_timeout: Duration,
    /// When ponte started.
    pub started: Instant,
    /// Whether clients reach ponte over TLS (for the links in v3 answers).
    pub tls: bool,
    /// The JSON Schemas record values of some topics must match.
    pub schemas: Arc<Schemas>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("ingest", &self.ingest)
            .field("brokers", &self.brokers)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Refuses `record` if its value does not match its topic's schema.
    fn check_schema(&self, record: &crate::record::Record) -> Result<(), error::ApiError> {
        self.schemas
            .check(&record.topic, record.value.as_deref())
            .map_err(|violations| error::ApiError::SchemaViolation {
                topic: record.topic.clone(),
                violations,
            })
    }

    /// Reads the outbox on the blocking pool; `None` without an outbox.
    async fn read_outbox<T: Send + 'static>(
        &self,
        query: impl FnOnce(&mut dyn Backlog) -> Result<T, StoreError> + Send + 'static,
    ) -> Option<Result<T, String>> {
        let backlog = self.backlog.clone()?;
        let outcome = tokio::task::spawn_blocking(move || {
            let mut backlog = backlog
                .lock()
                .map_err(|_| "outbox reader poisoned".to_owned())?;
            query(&mut *backlog).map_err(|err| err.to_string())
        })
        .await;
        Some(outcome.unwrap_or_else(|_| Err("outbox reader task failed".to_owned())))
    }

    /// Logs an administrative action and keeps it in the outbox's audit trail.
    async fn audit(&self, caller: Option<Extension<Caller>>, action: &str, target: String) {
        let actor = caller.map_or_else(|| "anonymous".to_owned(), |Extension(c)| c.0);
        let entry = AuditEntry::now(&actor, action, target);
        if let Ingest::Outbox(outbox) = &self.ingest {
            outbox.audit(entry).await;
        }
    }

    /// Rows per status: zeros without an outbox, `Err` if it cannot be read.
    async fn counts(&self) -> Result<StatusCounts, String> {
        self.read_outbox(|backlog| backlog.counts())
            .await
            .unwrap_or(Ok(StatusCounts::default()))
    }
}

/// All routes, with JSON answers for unknown paths and methods too. A client has
/// `body_timeout` to send a request body.
pub fn router(state: AppState, body_timeout: Duration) -> Router {
    let v3_topic = "/v3/clusters/{cluster_id}/topics/{topic}";
    let tracked = Router::new()
        .route("/topics", get(topics::list))
        .route(
            "/topics/{topic}",
            post(produce::produce).get(rest_proxy::v2::describe),
        )
        .route(
            "/topics/{topic}/partitions",
            get(rest_proxy::v2::partitions),
        )
        .route(
            "/topics/{topic}/partitions/{partition}",
            post(rest_proxy::v2::produce_to_partition).get(rest_proxy::v2::partition),
        )
        .route("/v3/clusters", get(rest_proxy::v3::clusters))
        .route(
            "/v3/clusters/{cluster_id}",
            get(rest_proxy::v3::get_cluster),
        )
        .route(
            "/v3/clusters/{cluster_id}/brokers",
            get(rest_proxy::v3::brokers),
        )
        .route(
            "/v3/clusters/{cluster_id}/topics",
            get(rest_proxy::v3::topics).post(rest_proxy::v3::create_topic),
        )
        .route(
            v3_topic,
            get(rest_proxy::v3::get_topic).delete(rest_proxy::v3::delete_topic),
        )
        .route(
            &format!("{v3_topic}/records"),
            post(rest_proxy::v3::produce),
        )
        .route(
            &format!("{v3_topic}/records:batch"),
            post(rest_proxy::v3::produce_batch_entries),
        )
        .route("/admin/topics", post(topics::create))
        .route("/admin/topics/{topic}", delete(topics::delete))
        .route("/brokers", get(topics::brokers))
        .route("/health", get(health::health))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(metrics::metrics))
        .route("/metrics/prometheus", get(metrics::prometheus))
        .route("/messages", get(messages::list))
        .route("/messages/replay", post(messages::replay))
        .route("/messages/{message_id}", get(messages::show))
        .route("/messages/{message_id}/retry", post(messages::retry))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            track::track,
        ))
        .route_layer(middleware::from_fn(rest_proxy::negotiate));
    tracked
        .fallback(error::unknown_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            body_timeout,
        ))
        .with_state(state)
}
