//! Where settings come from: the TOML file, the environment and command-line flags.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::Value;
use serde::Serialize;

use super::{ConfigError, Settings};

/// The old middleware's variables, read without a prefix.
const MIDDLEWARE_VARIABLES: [&str; 5] = [
    "PORT",
    "KAFKA_BROKERS",
    "LOG_LEVEL",
    "ENABLE_OUTBOX",
    "DLQ_TOPIC",
];

/// Prefix of every other setting's environment variable.
const PREFIX: &str = "PONTE_";

/// Prefix of environment variables that carry librdkafka properties.
const RDKAFKA_PREFIX: &str = "PONTE_RDKAFKA_";

/// Settings given on the command line; each wins over every other source.
#[derive(Debug, Default, Clone, clap::Args, Serialize)]
pub struct Overrides {
    /// TOML configuration file.
    #[arg(long, env = "PONTE_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// HTTP port.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,

    /// Address the HTTP listener binds to.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_address: Option<IpAddr>,

    /// Comma-separated Kafka bootstrap brokers.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_brokers: Option<String>,

    /// SQLite file of the outbox.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbox_path: Option<PathBuf>,

    /// Store records durably before sending them (`true`) or send them directly.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_outbox: Option<bool>,

    /// error, warn, info, debug or trace.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,

    /// text or json.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,

    /// Any setting, as NAME=VALUE (repeatable), e.g. `--set ack_timeout_ms=2000`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    #[serde(skip)]
    pub set: Vec<String>,

    /// A librdkafka property, as NAME=VALUE (repeatable), e.g. `-X security.protocol=ssl`.
    #[arg(short = 'X', long = "kafka-property", value_name = "NAME=VALUE")]
    #[serde(skip)]
    pub kafka_property: Vec<String>,
}

/// Layers every source over the defaults, in the documented order.
pub(super) fn figment(overrides: &Overrides) -> Result<Figment, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(Settings::default()));

    if let Some(path) = &overrides.config {
        if !path.is_file() {
            return Err(ConfigError::Invalid {
                setting: "config".to_owned(),
                problem: format!("configuration file {} does not exist", path.display()),
            });
        }
        figment = figment.merge(Toml::file_exact(path));
    }

    figment = figment
        .merge(Env::raw().only(&MIDDLEWARE_VARIABLES))
        .merge(Env::prefixed(PREFIX).filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            !key.starts_with("rdkafka_") && key != "config"
        }))
        .merge(kafka_properties_provider(rdkafka_from_env()))
        .merge(Serialized::defaults(overrides));

    for assignment in &overrides.set {
        let (name, value) = split_assignment("--set", assignment)?;
        figment = figment.merge(Serialized::default(name, value.parse::<Value>().ok()));
    }

    let flag_properties = overrides
        .kafka_property
        .iter()
        .map(|p| split_assignment("-X", p).map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    Ok(figment.merge(kafka_properties_provider(flag_properties)))
}

fn kafka_properties_provider(properties: BTreeMap<String, String>) -> Serialized<Value> {
    let table = properties
        .into_iter()
        .map(|(name, value)| (name, Value::from(value)))
        .collect::<BTreeMap<_, _>>();
    Serialized::default("kafka_properties", Value::from(table))
}

/// `PONTE_RDKAFKA_SSL_CA_LOCATION=/x` becomes `ssl.ca.location = "/x"`.
fn rdkafka_from_env() -> BTreeMap<String, String> {
    std::env::vars()
        .filter_map(|(name, value)| {
            let property = name.strip_prefix(RDKAFKA_PREFIX)?;
            Some((property.to_ascii_lowercase().replace('_', "."), value))
        })
        .collect()
}

fn split_assignment<'a>(
    flag: &'static str,
    given: &'a str,
) -> Result<(&'a str, &'a str), ConfigError> {
    match given.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim(), value)),
        _ => Err(ConfigError::Flag {
            flag,
            given: given.to_owned(),
        }),
    }
}
