//! Wiring: starts the outbox writer, the producer, the relay and the HTTP listener
//! in dependency order, and stops them in reverse order so that nothing accepted is
//! dropped on the way out.

mod listener;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::admin::Admin;
use crate::auth::KeyRing;
use crate::config::Settings;
use crate::http::{self, AppState, Ingest};
use crate::kafka::{self, Connectivity};
use crate::outbox::sqlite::SqliteStore;
use crate::outbox::{self, Backlog, Outbox, Retention, StoreError, WriterLimits};
use crate::record::now_ms;
use crate::relay::backoff::Backoff;
use crate::relay::{DeliveryContext, Publisher, Relay, RetryPolicy};
use crate::telemetry::{Counters, Metrics};
use crate::validate::BodyLimits;
use crate::validate::schemas::Schemas;
use governor::{Quota, RateLimiter};
use listener::ConnectionLimits;
use tls::{Tls, TlsError, TlsPaths};

/// Pause between cleanup batches while expired rows remain.
const CLEANUP_BUSY: Duration = Duration::from_millis(100);

/// Pause between cleanup rounds once nothing expired is left.
const CLEANUP_IDLE: Duration = Duration::from_secs(10);

/// Committed batches that may wait for the relay before the writer stops handing
/// them over in memory (the relay then reads them from the outbox).
const RELAY_QUEUE_BATCHES: usize = 256;

/// Why ponte could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The outbox could not be opened.
    #[error("cannot open the outbox at {path}: {source}")]
    Outbox {
        /// The configured path.
        path: String,
        /// What went wrong.
        source: StoreError,
    },
    /// The producer could not be created (usually a bad librdkafka property).
    #[error("cannot create the kafka producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The listener could not bind.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The configured address.
        address: SocketAddr,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A topic schema could not be read or compiled.
    #[error(transparent)]
    Schema(#[from] crate::validate::schemas::SchemaError),
    /// A worker thread could not be started.
    #[error("cannot start a worker thread: {0}")]
    Thread(std::io::Error),
    /// Listening beyond loopback without API keys, and anonymous access not allowed.
    #[error(
        "refusing to listen on {address} without API keys: add [[api_keys]] (ponte keys \
         generate NAME --scope ...), listen on 127.0.0.1, or set allow_anonymous = true"
    )]
    Anonymous {
        /// The configured address.
        address: SocketAddr,
    },
    /// The HTTPS certificate, key or client CA could not be loaded.
    #[error("cannot set up https: {0}")]
    Tls(#[from] TlsError),
    /// The API keys are not usable.
    #[error("invalid api_keys: {0}")]
    Keys(String),
}

/// Runs ponte until `shutdown` completes, then stops it cleanly.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let started = Instant::now();
    let address = SocketAddr::new(settings.bind_address, settings.port);
    let keys = Arc::new(KeyRing::new(&settings.api_keys).map_err(ServerError::Keys)?);
    require_keys_beyond_loopback(&settings, &keys, address)?;
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| ServerError::Bind { address, source })?;
    let address = listener.local_addr().unwrap_or(address);

    let metrics = Arc::new(Metrics::new());
    let counters = Arc::new(metrics.counters.clone());
    let connectivity = Arc::new(Connectivity::default());
    let shared = Shared {
        counters: Arc::clone(&counters),
        metrics: Arc::clone(&metrics),
        connectivity: Arc::clone(&connectivity),
    };
    let pipeline = Pipeline::start(&settings, &shared)?;
    let state = AppState {
        ingest: pipeline.ingest.clone(),
        backlog: pipeline.backlog.clone(),
        admin: Admin::new(&settings)?,
        keys,
        connectivity,
        counters,
        metrics,
        brokers: settings.broker_list().into(),
        max_body_bytes: settings.max_body_bytes,
        body_limits: BodyLimits {
            max_key_bytes: settings.max_key_bytes,
            max_json_depth: settings.max_json_depth,
        },
        rate_limiter: NonZeroU32::new(settings.rate_limit_per_key)
            .map(|rate| Arc::new(RateLimiter::keyed(Quota::per_second(rate)))),
        ack_timeout: Duration::from_millis(settings.ack_timeout_ms),
        started,
        tls: settings.tls_certificate_path.is_some(),
        schemas: Arc::new(Schemas::load(&settings.topic_schemas)?),
    };

    log_startup(&settings, address, started);
    probe_kafka(&state);
    let limits = ConnectionLimits {
        max_connections: settings.max_connections,
        max_headers: settings.max_headers,
        max_header_bytes: settings.max_header_bytes,
        header_timeout: Duration::from_millis(settings.header_timeout_ms),
        drain_timeout: Duration::from_millis(settings.shutdown_timeout_ms),
    };
    let body_timeout = Duration::from_millis(settings.body_timeout_ms);
    let tls = start_tls(&settings)?;
    listener::serve(
        listener,
        http::router(state, body_timeout),
        tls.as_ref().map(|(tls, _)| Arc::clone(tls)),
        limits,
        shutdown,
    )
    .await;
    if let Some((_, watcher)) = tls {
        watcher.abort();
    }

    tracing::info!("http listener closed, draining");
    pipeline
        .stop(Duration::from_millis(settings.shutdown_timeout_ms))
        .await;
    tracing::info!("ponte stopped");
    Ok(())
}

/// The HTTPS configuration and the task that reloads it.
type WatchedTls = (Arc<Tls>, tokio::task::JoinHandle<()>);

/// Loads the HTTPS certificate, if one is configured, and starts watching it.
fn start_tls(settings: &Settings) -> Result<Option<WatchedTls>, ServerError> {
    let (Some(certificate), Some(key)) = (&settings.tls_certificate_path, &settings.tls_key_path)
    else {
        return Ok(None);
    };
    let paths = TlsPaths {
        certificate: certificate.clone(),
        key: key.clone(),
        client_ca: settings.tls_client_ca_path.clone(),
    };
    let tls = Arc::new(Tls::load(paths)?);
    let watcher = tokio::spawn(Arc::clone(&tls).watch());
    Ok(Some((tls, watcher)))
}

/// Anyone who can reach a non-loopback address could publish: that needs keys, or
/// an explicit `allow_anonymous`, which is then warned about at every start.
fn require_keys_beyond_loopback(
    settings: &Settings,
    keys: &KeyRing,
    address: SocketAddr,
) -> Result<(), ServerError> {
    if !keys.is_empty() || settings.bind_address.is_loopback() {
        return Ok(());
    }
    if !settings.allow_anonymous {
        return Err(ServerError::Anonymous { address });
    }
    tracing::warn!(
        %address,
        "anonymous access allowed: anyone who can reach this address can publish and administer"
    );
    Ok(())
}

fn log_startup(settings: &Settings, address: SocketAddr, started: Instant) {
    tracing::info!(
        %address,
        brokers = %settings.kafka_brokers,
        acks = "all",
        idempotence = true,
        outbox = if settings.enable_outbox { "durable" } else { "off" },
        outbox_path = %settings.outbox_path.display(),
        journal_mode = "wal",
        synchronous = "full",
        startup_ms = started.elapsed().as_millis() as u64,
        "ponte listening"
    );
}

/// Asks Kafka for its brokers once, so that ponte is ready as soon as Kafka
/// answers rather than when librdkafka's first statistics report comes (a
/// `kafka_statistics_interval_ms` after startup). Later reports keep the view
/// current either way.
fn probe_kafka(state: &AppState) {
    let admin = state.admin.clone();
    let connectivity = Arc::clone(&state.connectivity);
    tokio::spawn(async move {
        if admin
            .brokers()
            .await
            .is_ok_and(|brokers| !brokers.is_empty())
        {
            connectivity.observe_reachable();
        }
    });
}

/// What every part of the pipeline reports into.
struct Shared {
    counters: Arc<Counters>,
    metrics: Arc<Metrics>,
    connectivity: Arc<Connectivity>,
}

/// The worker threads and tasks behind the HTTP routes.
struct Pipeline {
    ingest: Ingest,
    backlog: Option<Arc<Mutex<dyn Backlog>>>,
    threads: Vec<JoinHandle<()>>,
    cleanup: Option<tokio::task::JoinHandle<()>>,
}

impl Pipeline {
    fn start(settings: &Settings, shared: &Shared) -> Result<Pipeline, ServerError> {
        let producer_config = kafka::producer_config(settings);
        let policy = RetryPolicy {
            backoff: Backoff::from_settings(settings),
            dead_letter_after: settings.dead_letter_after_failures,
        };
        let context = |outcomes, notices| DeliveryContext {
            outcomes,
            notices,
            policy,
            connectivity: Arc::clone(&shared.connectivity),
            counters: Arc::clone(&shared.counters),
            metrics: Arc::clone(&shared.metrics),
        };

        if !settings.enable_outbox {
            let context = context(None, None);
            let publisher = Publisher::new(&producer_config, context, &settings.record_source)?;
            return Ok(Pipeline {
                ingest: Ingest::Direct(publisher),
                backlog: None,
                threads: Vec::new(),
                cleanup: None,
            });
        }

        let unusable = |source| ServerError::Outbox {
            path: settings.outbox_path.display().to_string(),
            source,
        };
        let window = Duration::from_millis(settings.idempotency_window_ms);
        let store = SqliteStore::open(&settings.outbox_path)
            .map_err(unusable)?
            .with_idempotency_window(window);
        let relay_backlog = store.backlog().map_err(unusable)?;
        let api_backlog = store.backlog().map_err(unusable)?;

        let (outbox, commands) = Outbox::channel();
        let (notice_sender, notices) = mpsc::unbounded_channel();
        let context = context(Some(outbox.outcome_sender()), Some(notice_sender));
        let publisher = Publisher::new(&producer_config, context, &settings.record_source)?;
        let (live_sender, live) = mpsc::channel(RELAY_QUEUE_BATCHES);

        let limits = WriterLimits {
            max_batch: settings.outbox_max_batch,
            max_unsent: settings.outbox_max_unsent,
        };
        let metrics = Arc::clone(&shared.metrics);
        let writer = outbox::spawn_writer(store, &outbox, commands, live_sender, limits, metrics)
            .map_err(ServerError::Thread)?;
        let relay = Relay {
            backlog: relay_backlog,
            publisher,
            live,
            notices,
            outbox: outbox.clone(),
            policy,
            dead_letter_topic: settings.dlq_topic.clone(),
            counters: Arc::clone(&shared.counters),
            metrics: Arc::clone(&shared.metrics),
            flush_timeout: Duration::from_millis(settings.shutdown_timeout_ms),
        }
        .spawn()
        .map_err(ServerError::Thread)?;

        let cleanup = tokio::spawn(clean_periodically(outbox.clone(), settings.clone()));
        Ok(Pipeline {
            ingest: Ingest::Outbox(outbox),
            backlog: Some(Arc::new(Mutex::new(api_backlog))),
            threads: vec![relay, writer],
            cleanup: Some(cleanup),
        })
    }

    /// Closes the outbox to new records, lets the relay hand over what it holds and
    /// drain the producer within `timeout`, then waits for the writer to record the
    /// last delivery reports.
    async fn stop(self, timeout: Duration) {
        if let Some(cleanup) = &self.cleanup {
            cleanup.abort();
        }
        match &self.ingest {
            Ingest::Outbox(outbox) => outbox.close().await,
            Ingest::Direct(publisher) => {
                if let Err(err) = publisher.flush(timeout) {
                    tracing::warn!(error = %err, "producer not drained before shutdown");
                }
            }
        }
        drop(self.ingest);
        drop(self.backlog);

        let threads = self.threads;
        let joined = tokio::task::spawn_blocking(move || {
            threads.into_iter().all(|thread| thread.join().is_ok())
        })
        .await;
        if !matches!(joined, Ok(true)) {
            tracing::error!("a worker thread panicked during shutdown");
        }
    }
}

/// Deletes expired `sent` rows and idempotency keys, one small batch at a time
/// through the writer, so that ingestion never waits long behind it.
async fn clean_periodically(outbox: Outbox, settings: Settings) {
    let retention = Duration::from_millis(settings.retention_sent_ms);
    let window = Duration::from_millis(settings.idempotency_window_ms);
    loop {
        let now = now_ms();
        let expired = Retention {
            sent_before_ms: now - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX),
            keys_before_ms: now - i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
        };
        let Ok(more) = outbox.maintain(expired).await else {
            return;
        };
        let pause = if more { CLEANUP_BUSY } else { CLEANUP_IDLE };
        tokio::time::sleep(pause).await;
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested");
}
