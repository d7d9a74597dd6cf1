//! Settings: what ponte can be told, where it reads it, and every default.
//!
//! Sources, later ones winning:
//!
//! 1. the defaults in [`Settings::default`] (the one place they are written down);
//! 2. a TOML file named by `--config` or `PONTE_CONFIG`;
//! 3. the process environment, after a `.env` file in the working directory has been
//!    loaded into it (a variable already set wins over the file): the old middleware's
//!    five variables `PORT`, `KAFKA_BROKERS`, `LOG_LEVEL`, `ENABLE_OUTBOX` and
//!    `DLQ_TOPIC` keep their names; every other setting is `PONTE_` plus its name in
//!    capitals, and `PONTE_RDKAFKA_SECURITY_PROTOCOL` sets the librdkafka property
//!    `security.protocol`;
//! 4. command-line flags (`--port`, `--set name=value`, `-X property=value`, ...).
//!
//! An unknown setting, a value of the wrong type and a value out of range all stop
//! startup with a message naming the setting and its source.

mod kafka_properties;
mod sources;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::auth::{ApiKeyConfig, KeyRing};
use crate::validate::schemas::{Schemas, TopicSchema};

pub use kafka_properties::mask_secrets;
pub use sources::Overrides;

/// Every setting ponte has. Field names are also the TOML keys and, in capitals after
/// `PONTE_`, the environment variable names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// HTTP port (`PORT`, as in the old middleware).
    pub port: u16,
    /// Address the HTTP listener binds to.
    pub bind_address: IpAddr,
    /// Comma-separated `host:port` list of Kafka bootstrap brokers (`KAFKA_BROKERS`).
    pub kafka_brokers: String,
    /// `error`, `warn`, `info`, `debug` or `trace` (`LOG_LEVEL`).
    pub log_level: LogLevel,
    /// `text` for a terminal, `json` for log shippers.
    pub log_format: LogFormat,
    /// `true`: store every record durably before sending it; `false`: send it straight
    /// to Kafka and answer when Kafka has (`ENABLE_OUTBOX`).
    pub enable_outbox: bool,
    /// Topic that receives records which can never be delivered (`DLQ_TOPIC`).
    pub dlq_topic: String,
    /// SQLite file of the outbox.
    pub outbox_path: PathBuf,
    /// Most records written in one outbox commit (one fsync).
    pub outbox_max_batch: usize,
    /// Largest accepted request body. The default is Kafka's default largest message.
    pub max_body_bytes: usize,
    /// How long a request waits for Kafka's acknowledgement before it is answered
    /// `202 Accepted` (stored, delivery still in progress) instead of `200`.
    pub ack_timeout_ms: u64,
    /// Value of the `source` header on every record ponte publishes.
    pub record_source: String,
    /// Longest wait on shutdown for requests in flight and the producer's queue.
    pub shutdown_timeout_ms: u64,
    /// Producer compression: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub kafka_compression: Compression,
    /// How long the producer waits to fill a batch before sending it. A
    /// synchronous request waits it too, so it is short: under load, batches
    /// fill while earlier ones are in flight.
    pub kafka_linger_ms: u64,
    /// How long the producer keeps trying one send before it reports a failure to
    /// ponte; bounds librdkafka's own retries so that failures surface.
    pub kafka_message_timeout_ms: u64,
    /// How often librdkafka reports broker state, which feeds `/health`.
    pub kafka_statistics_interval_ms: u64,
    /// Wait before the first retry of a failed send; it doubles with each failure.
    pub retry_backoff_initial_ms: u64,
    /// Longest wait between two retries.
    pub retry_backoff_max_ms: u64,
    /// Random spread of each wait, as a fraction of it (0.2: up to 20% shorter or
    /// longer), so that many ponte instances do not retry in step.
    pub retry_backoff_jitter: f64,
    /// Sends failing for a reason of the record's own (too large, not authorised,
    /// unknown topic) before it goes to the dead-letter topic. Failures because
    /// Kafka is unavailable never count.
    pub dead_letter_after_failures: u32,
    /// Most records the outbox holds undelivered; beyond it new records are refused
    /// with `503` and `Retry-After`, and nothing stored is touched.
    pub outbox_max_unsent: u64,
    /// How long an `Idempotency-Key` is remembered.
    pub idempotency_window_ms: u64,
    /// How long `sent` rows stay in the outbox after Kafka acknowledged them.
    /// `dlq` rows stay until replayed or purged.
    pub retention_sent_ms: u64,
    /// Longest record key accepted.
    pub max_key_bytes: usize,
    /// Deepest nesting of arrays and objects accepted in a request body.
    pub max_json_depth: usize,
    /// Most headers in one request.
    pub max_headers: usize,
    /// Most bytes of request line and headers.
    pub max_header_bytes: usize,
    /// Time a client has to send its request headers (slow clients are cut off).
    pub header_timeout_ms: u64,
    /// Time a client has to send its request body.
    pub body_timeout_ms: u64,
    /// Most connections served at once; more are closed right after accepting.
    pub max_connections: usize,
    /// Requests per second allowed per API key (`429` beyond it); 0 for no limit.
    pub rate_limit_per_key: u32,
    /// Serve HTTPS with this certificate chain (PEM); with `tls_key_path`. Both
    /// files are reloaded on SIGHUP and when they change.
    pub tls_certificate_path: Option<PathBuf>,
    /// The private key of `tls_certificate_path` (PEM).
    pub tls_key_path: Option<PathBuf>,
    /// Accept client certificates signed by these CAs (PEM); a key with
    /// `client_certificate_sha256` is then identified by its certificate.
    pub tls_client_ca_path: Option<PathBuf>,
    /// Let requests in without an API key even when listening beyond loopback.
    /// Off by default: ponte then refuses to start without `api_keys`.
    pub allow_anonymous: bool,
    /// API keys: a name, the hash of the secret and scopes (`ponte keys generate`
    /// makes them). With none configured, requests need no key.
    pub api_keys: Vec<ApiKeyConfig>,
    /// JSON Schemas that record values of some topics must match, by topic name
    /// or pattern; the first matching entry applies. A relative schema path is
    /// taken from the configuration file's directory.
    pub topic_schemas: Vec<TopicSchema>,
    /// librdkafka properties whose values are read from files at startup (a SASL
    /// password, say), so that the secret is in neither the configuration nor the
    /// environment: `"sasl.password" = "/run/secrets/kafka-password"`.
    pub kafka_secret_files: BTreeMap<String, PathBuf>,
    /// Extra librdkafka properties, passed through unchanged (TLS, SASL, tuning).
    #[serde(deserialize_with = "kafka_properties::deserialize")]
    pub kafka_properties: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            port: 8081,
            bind_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            kafka_brokers: "localhost:9092".to_owned(),
            log_level: LogLevel::Info,
            log_format: LogFormat::Text,
            enable_outbox: true,
            dlq_topic: "dlq-topic".to_owned(),
            outbox_path: PathBuf::from("outbox.db"),
            outbox_max_batch: 1024,
            max_body_bytes: 1_048_588,
            ack_timeout_ms: 5_000,
            record_source: "ponte".to_owned(),
            shutdown_timeout_ms: 10_000,
            kafka_compression: Compression::Lz4,
            kafka_linger_ms: 1,
            kafka_message_timeout_ms: 30_000,
            kafka_statistics_interval_ms: 1_000,
            retry_backoff_initial_ms: 300,
            retry_backoff_max_ms: 30_000,
            retry_backoff_jitter: 0.2,
            dead_letter_after_failures: 5,
            outbox_max_unsent: 10_000_000,
            idempotency_window_ms: 86_400_000,
            retention_sent_ms: 604_800_000,
            max_key_bytes: 4_096,
            max_json_depth: 64,
            max_headers: 64,
            max_header_bytes: 16_384,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_connections: 1_024,
            rate_limit_per_key: 0,
            tls_certificate_path: None,
            tls_key_path: None,
            tls_client_ca_path: None,
            allow_anonymous: false,
            api_keys: Vec::new(),
            topic_schemas: Vec::new(),
            kafka_secret_files: BTreeMap::new(),
            kafka_properties: BTreeMap::new(),
        }
    }
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum LogFormat {
    Text,
    Json,
}

/// Producer compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The name librdkafka uses for this codec.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Why the settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A source could not be read or a value has the wrong type or an unknown name.
    #[error("{0}")]
    Source(Box<figment::Error>),
    /// The `.env` file exists but cannot be read.
    #[error("cannot read .env: {0}")]
    DotEnv(#[from] dotenvy::Error),
    /// A command-line `--set` or `-X` argument is not `name=value`.
    #[error("{flag} expects name=value, got {given:?}")]
    Flag {
        /// The flag that was given.
        flag: &'static str,
        /// What followed it.
        given: String,
    },
    /// A value is of the right type but not usable.
    #[error("setting {setting}: {problem}")]
    Invalid {
        /// The setting's name.
        setting: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl From<figment::Error> for ConfigError {
    fn from(err: figment::Error) -> Self {
        ConfigError::Source(Box::new(err))
    }
}

impl Settings {
    /// Reads every source (see the module documentation) and checks the result.
    pub fn load(overrides: &Overrides) -> Result<Settings, ConfigError> {
        let mut settings: Settings = sources::figment(overrides)?.extract()?;
        if let Some(directory) = overrides.config.as_deref().and_then(Path::parent) {
            for entry in &mut settings.topic_schemas {
                if entry.schema.is_relative() {
                    entry.schema = directory.join(&entry.schema);
                }
            }
        }
        settings.check()?;
        Ok(settings)
    }

    /// Like [`Settings::load`], with the secret files read in: the settings ponte
    /// runs with.
    pub fn load_with_secrets(overrides: &Overrides) -> Result<Settings, ConfigError> {
        let mut settings = Settings::load(overrides)?;
        settings.read_secret_files()?;
        kafka_properties::check(&settings.kafka_properties)?;
        Ok(settings)
    }

    /// Reads every file of `kafka_secret_files` into `kafka_properties` (trailing
    /// line breaks removed). Called once at startup; the values are never printed.
    pub fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        for (property, path) in &self.kafka_secret_files {
            let secret = std::fs::read_to_string(path).map_err(|err| ConfigError::Invalid {
                setting: format!("kafka_secret_files.{property}"),
                problem: format!("cannot read {}: {err}", path.display()),
            })?;
            let secret = secret.trim_end_matches(['\r', '\n']).to_owned();
            self.kafka_properties.insert(property.clone(), secret);
        }
        Ok(())
    }

    /// The bootstrap brokers as a list, in the order given.
    pub fn broker_list(&self) -> Vec<String> {
        self.kafka_brokers
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Checks what types alone cannot: ranges, broker addresses, topic names and
    /// librdkafka properties that ponte manages itself.
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |setting: &str, problem: String| ConfigError::Invalid {
            setting: setting.to_owned(),
            problem,
        };

        let brokers = self.broker_list();
        if brokers.is_empty() {
            return Err(invalid("kafka_brokers", "no broker given".to_owned()));
        }
        if let Some(bad) = brokers.iter().find(|b| !is_host_port(b)) {
            return Err(invalid(
                "kafka_brokers",
                format!("{bad:?} is not host:port"),
            ));
        }
        crate::validate::topic_name(&self.dlq_topic)
            .map_err(|err| invalid("dlq_topic", err.to_string()))?;
        self.check_ranges(&invalid)?;
        KeyRing::new(&self.api_keys).map_err(|problem| invalid("api_keys", problem))?;
        Schemas::load(&self.topic_schemas)
            .map_err(|err| invalid("topic_schemas", err.to_string()))?;
        kafka_properties::check(&self.kafka_properties)
    }

    fn check_ranges(
        &self,
        invalid: &impl Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let positive = [
            ("outbox_max_batch", self.outbox_max_batch as u64),
            ("max_body_bytes", self.max_body_bytes as u64),
            ("kafka_message_timeout_ms", self.kafka_message_timeout_ms),
            (
                "kafka_statistics_interval_ms",
                self.kafka_statistics_interval_ms,
            ),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(invalid(name, "must be greater than 0".to_owned()));
        }
        if self.kafka_linger_ms >= self.kafka_message_timeout_ms {
            return Err(invalid(
                "kafka_linger_ms",
                "must be smaller than kafka_message_timeout_ms".to_owned(),
            ));
        }
        if self.retry_backoff_max_ms < self.retry_backoff_initial_ms {
            return Err(invalid(
                "retry_backoff_max_ms",
                "must not be smaller than retry_backoff_initial_ms".to_owned(),
            ));
        }
        if !(0.0..1.0).contains(&self.retry_backoff_jitter) {
            return Err(invalid(
                "retry_backoff_jitter",
                "must be at least 0 and below 1".to_owned(),
            ));
        }
        let tls = (&self.tls_certificate_path, &self.tls_key_path);
        if tls.0.is_some() != tls.1.is_some() {
            return Err(invalid(
                "tls_certificate_path",
                "tls_certificate_path and tls_key_path go together".to_owned(),
            ));
        }
        if self.tls_client_ca_path.is_some() && tls.0.is_none() {
            return Err(invalid(
                "tls_client_ca_path",
                "client certificates need HTTPS: set tls_certificate_path and tls_key_path"
                    .to_owned(),
            ));
        }
        if self.max_header_bytes < 8_192 {
            return Err(invalid(
                "max_header_bytes",
                "must be at least 8192 (the HTTP parser's smallest buffer)".to_owned(),
            ));
        }
        if self.record_source.is_empty() {
            return Err(invalid("record_source", "must not be empty".to_owned()));
        }
        Ok(())
    }
}

fn is_host_port(broker: &str) -> bool {
    match broker.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

#[cfg(test)]
mod tests;
