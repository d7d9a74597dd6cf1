//! HTTPS on the listener: certificates from PEM files, reloaded on SIGHUP or when
//! the files change, and optional client certificates (mutual TLS).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

/// How often the certificate files are checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// Why the TLS configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {problem}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// rustls refused the certificate, key or client CA.
    #[error("tls configuration: {0}")]
    Config(String),
}

/// Where the certificate, its key and the client CA live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    /// The server's certificate chain (PEM).
    pub certificate: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// CA certificates that sign client certificates (PEM); `None`: no mTLS.
    pub client_ca: Option<PathBuf>,
}

/// The current TLS acceptor, swapped in place on reload.
pub struct Tls {
    paths: TlsPaths,
    acceptor: RwLock<TlsAcceptor>,
    loaded_at: RwLock<Option<SystemTime>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads the files; any problem stops startup.
    pub fn load(paths: TlsPaths) -> Result<Tls, TlsError> {
        let acceptor = TlsAcceptor::from(Arc::new(server_config(&paths)?));
        let loaded_at = newest_change(&paths);
        Ok(Tls {
            paths,
            acceptor: RwLock::new(acceptor),
            loaded_at: RwLock::new(loaded_at),
        })
    }

    /// The acceptor for the next connection.
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        self.acceptor.read().ok().map(|a| a.clone())
    }

    /// Loads the files again; on failure the previous certificate stays in use.
    pub fn reload(&self) {
        match server_config(&self.paths) {
            Ok(config) => {
                if let Ok(mut acceptor) = self.acceptor.write() {
                    *acceptor = TlsAcceptor::from(Arc::new(config));
                }
                if let Ok(mut loaded_at) = self.loaded_at.write() {
                    *loaded_at = newest_change(&self.paths);
                }
                tracing::info!("tls certificate reloaded");
            }
            Err(err) => {
                tracing::error!(error = %err, "tls reload failed, keeping the old certificate");
            }
        }
    }

    /// Reloads on SIGHUP and whenever the files change, until the task is aborted.
    pub async fn watch(self: Arc<Tls>) {
        let mut hangups =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(signal) => Some(signal),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for SIGHUP; watching files only");
                    None
                }
            };
        let mut ticks = tokio::time::interval(WATCH_INTERVAL);
        // The first tick is immediate; the files were just loaded.
        ticks.tick().await;
        loop {
            tokio::select! {
                Some(()) = hangup(hangups.as_mut()) => self.reload(),
                _ = ticks.tick() => {
                    let loaded = self.loaded_at.read().ok().and_then(|t| *t);
                    if newest_change(&self.paths) > loaded {
                        self.reload();
                    }
                }
            }
        }
    }
}

/// The next SIGHUP, or never when it cannot be listened for.
async fn hangup(signal: Option<&mut tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// SHA-256 of a client certificate (DER), as hex: how keys name certificates.
pub fn fingerprint(certificate: &CertificateDer<'_>) -> String {
    Sha256::digest(certificate.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn newest_change(paths: &TlsPaths) -> Option<SystemTime> {
    [
        Some(&paths.certificate),
        Some(&paths.key),
        paths.client_ca.as_ref(),
    ]
    .into_iter()
    .flatten()
    .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
    .max()
}

fn file_error(path: &Path, problem: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        problem: problem.to_string(),
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|err| file_error(path, err))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| file_error(path, err))?;
    if certificates.is_empty() {
        return Err(file_error(path, "no certificate found"));
    }
    Ok(certificates)
}

fn server_config(paths: &TlsPaths) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(&paths.certificate)?;
    let key =
        PrivateKeyDer::from_pem_file(&paths.key).map_err(|err| file_error(&paths.key, err))?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsError::Config(err.to_string()))?;
    let builder = match &paths.client_ca {
        Some(ca) => builder.with_client_cert_verifier(client_verifier(ca, &provider)?),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|err| TlsError::Config(err.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Verifies client certificates against `ca` when one is shown; a client without
/// one is let through to the API-key check.
fn client_verifier(
    ca: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(ca)? {
        roots.add(certificate).map_err(|err| file_error(ca, err))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .allow_unauthenticated()
        .build()
        .map_err(|err| TlsError::Config(err.to_string()))
}
