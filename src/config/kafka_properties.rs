//! librdkafka properties passed through from the configuration, and the ones ponte
//! keeps to itself because its guarantees depend on them.

use std::collections::BTreeMap;

use super::ConfigError;

/// Properties ponte sets itself, each with the setting to use instead.
const MANAGED: [(&str, &str); 12] = [
    (
        "bootstrap.servers",
        "set kafka_brokers (KAFKA_BROKERS) instead",
    ),
    (
        "metadata.broker.list",
        "set kafka_brokers (KAFKA_BROKERS) instead",
    ),
    ("enable.idempotence", "ponte always produces idempotently"),
    ("acks", "ponte always produces with acks=all"),
    (
        "request.required.acks",
        "ponte always produces with acks=all",
    ),
    ("linger.ms", "set kafka_linger_ms instead"),
    ("queue.buffering.max.ms", "set kafka_linger_ms instead"),
    ("compression.type", "set kafka_compression instead"),
    ("compression.codec", "set kafka_compression instead"),
    ("message.timeout.ms", "set kafka_message_timeout_ms instead"),
    (
        "delivery.timeout.ms",
        "set kafka_message_timeout_ms instead",
    ),
    (
        "statistics.interval.ms",
        "set kafka_statistics_interval_ms instead",
    ),
];

/// Words that mark a property whose value must never be printed or logged.
const SECRET_MARKERS: [&str; 5] = [
    "password",
    "secret",
    "jaas",
    "key.pem",
    "oauthbearer.config",
];

/// Refuses properties that would weaken or fight ponte's own producer settings.
pub(super) fn check(properties: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for name in properties.keys() {
        if let Some((_, instead)) = MANAGED.iter().find(|(managed, _)| managed == name) {
            return Err(ConfigError::Invalid {
                setting: format!("kafka_properties.{name}"),
                problem: format!("managed by ponte: {instead}"),
            });
        }
    }
    Ok(())
}

/// Returns the properties with every secret value replaced by `********`.
pub fn mask_secrets(properties: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    properties
        .iter()
        .map(|(name, value)| {
            let secret = SECRET_MARKERS.iter().any(|marker| name.contains(marker));
            let shown = if secret {
                "********".to_owned()
            } else {
                value.clone()
            };
            (name.clone(), shown)
        })
        .collect()
}

/// Reads `[kafka_properties]` from TOML either as quoted keys
/// (`"security.protocol" = "ssl"`) or as the nested tables that unquoted dotted
/// keys produce (`security.protocol = "ssl"`), and any scalar as its text.
pub(super) fn deserialize<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let tree: BTreeMap<String, Node> = serde::Deserialize::deserialize(deserializer)?;
    let mut flat = BTreeMap::new();
    for (name, node) in tree {
        node.flatten_into(name, &mut flat);
    }
    Ok(flat)
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Node {
    Text(String),
    Integer(i64),
    Float(f64),
    Flag(bool),
    Table(BTreeMap<String, Node>),
}

impl Node {
    fn flatten_into(self, name: String, flat: &mut BTreeMap<String, String>) {
        let text = match self {
            Node::Text(text) => text,
            Node::Integer(number) => number.to_string(),
            Node::Float(number) => number.to_string(),
            Node::Flag(flag) => flag.to_string(),
            Node::Table(children) => {
                for (child, node) in children {
                    node.flatten_into(format!("{name}.{child}"), flat);
                }
                return;
            }
        };
        flat.insert(name, text);
    }
}
