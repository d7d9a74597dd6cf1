//! The HTTP listener: accepts connections up to a limit and serves them with
//! hyper, with time and size limits on request headers, and stops gracefully.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::tls::{Tls, fingerprint};
use crate::http::ClientCertificate;

/// Limits on connections and request headers.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConnectionLimits {
    /// Most connections served at once.
    pub(super) max_connections: usize,
    /// Most headers in one request.
    pub(super) max_headers: usize,
    /// Most bytes of request line and headers.
    pub(super) max_header_bytes: usize,
    /// Time a client has to send its headers.
    pub(super) header_timeout: Duration,
    /// Longest wait for open connections to finish when stopping.
    pub(super) drain_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in
/// flight finish (up to `drain_timeout`).
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<Tls>>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let builder = builder(&limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(err) => {
                // Out of file descriptors, say: wait a little instead of spinning.
                tracing::warn!(error = %err, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(
                max_connections = limits.max_connections,
                "connection refused: at the limit"
            );
            continue;
        };
        let connection = Connection {
            builder: builder.clone(),
            app: app.clone(),
            graceful: &graceful,
        };
        match tls.as_ref().and_then(|tls| tls.acceptor()) {
            Some(acceptor) => connection.spawn_tls(stream, acceptor, limits.header_timeout, slot),
            None => connection.spawn(TokioIo::new(stream), None, slot),
        }
    }

    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown timeout; closing them");
    }
}

/// What serving one connection needs.
struct Connection<'a> {
    builder: Builder<TokioExecutor>,
    app: Router,
    graceful: &'a GracefulShutdown,
}

impl Connection<'_> {
    /// Serves `io`, telling the routes which client certificate it showed.
    fn spawn<I>(self, io: I, client_certificate: Option<String>, slot: OwnedSemaphorePermit)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let app = self
            .app
            .layer(Extension(ClientCertificate(client_certificate)));
        let service = TowerToHyperService::new(app);
        let connection = self
            .builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        let connection = self.graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            drop(slot);
        });
    }

    /// Completes the TLS handshake (within `timeout`) off the accept loop, then serves.
    fn spawn_tls(
        self,
        stream: TcpStream,
        acceptor: TlsAcceptor,
        timeout: Duration,
        slot: OwnedSemaphorePermit,
    ) {
        let Connection {
            builder,
            app,
            graceful,
        } = self;
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "tls handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("tls handshake timed out");
                    return;
                }
            };
            let certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(fingerprint);
            let app = app.layer(Extension(ClientCertificate(certificate)));
            let service = TowerToHyperService::new(app);
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            if let Err(err) = watcher.watch(connection).await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            drop(slot);
        });
    }
}

fn builder(limits: &ConnectionLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}
