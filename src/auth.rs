//! Who may do what: API keys, their scopes, and checking a presented secret.
//!
//! A key has a name, the SHA-256 hash of its secret (the secret itself is never
//! stored or configured) and scopes:
//!
//! - `produce` or `produce:PATTERN`: publish to any topic, or to topics matching
//!   `PATTERN` (`*` matches any run of characters, `?` one character);
//! - `read`: record status, listings, topics, brokers and metrics;
//! - `replay`: retry and replay records;
//! - `admin`: create and delete topics.
//!
//! Secrets are random (32 bytes, base64url), so one fast hash suffices; every
//! key's hash is compared in constant time, so timing says nothing about how
//! close a guess came.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use wildmatch::WildMatch;

/// Prefix of a stored hash, naming the algorithm.
const HASH_PREFIX: &str = "sha256:";

/// One API key as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The key's name, which logs and the audit trail show.
    pub name: String,
    /// `sha256:` and the hex SHA-256 of the secret.
    pub hash: String,
    /// What the key may do (see the module documentation).
    pub scopes: Vec<String>,
    /// Hex SHA-256 of a client certificate (DER) that stands for this key over
    /// mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_sha256: Option<String>,
}

/// One thing a key may do.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Publish to topics matching the pattern.
    Produce(WildMatch),
    /// Read status, listings, topics, brokers and metrics.
    Read,
    /// Retry and replay records.
    Replay,
    /// Create and delete topics.
    Admin,
}

impl Scope {
    /// Parses a scope as written in the configuration.
    pub fn parse(text: &str) -> Result<Scope, String> {
        match text {
            "produce" => Ok(Scope::Produce(WildMatch::new("*"))),
            "read" => Ok(Scope::Read),
            "replay" => Ok(Scope::Replay),
            "admin" => Ok(Scope::Admin),
            _ => match text.strip_prefix("produce:") {
                Some(pattern) if !pattern.is_empty() => Ok(Scope::Produce(WildMatch::new(pattern))),
                _ => Err(format!(
                    "unknown scope {text:?}: use produce, produce:PATTERN, read, replay or admin"
                )),
            },
        }
    }
}

/// What a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Nothing: open to all (health probes).
    Nothing,
    /// Publishing to this topic.
    Produce(String),
    /// Reading.
    Read,
    /// Retrying or replaying.
    Replay,
    /// Administering topics.
    Admin,
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Need::Nothing => f.write_str("none"),
            Need::Produce(topic) => write!(f, "produce:{topic}"),
            Need::Read => f.write_str("read"),
            Need::Replay => f.write_str("replay"),
            Need::Admin => f.write_str("admin"),
        }
    }
}

/// A configured key, ready for checking.
#[derive(Debug, Clone)]
pub struct Key {
    name: String,
    hash: [u8; 32],
    certificate: Option<String>,
    scopes: Vec<Scope>,
}

impl Key {
    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the key covers `need`.
    pub fn allows(&self, need: &Need) -> bool {
        self.scopes.iter().any(|scope| match (scope, need) {
            (Scope::Produce(pattern), Need::Produce(topic)) => pattern.matches(topic),
            (_, Need::Nothing)
            | (Scope::Read, Need::Read)
            | (Scope::Replay, Need::Replay)
            | (Scope::Admin, Need::Admin) => true,
            _ => false,
        })
    }
}

/// All configured keys.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: Vec<Key>,
}

impl KeyRing {
    /// Checks and loads the configured keys.
    pub fn new(configured: &[ApiKeyConfig]) -> Result<KeyRing, String> {
        let mut keys: Vec<Key> = Vec::with_capacity(configured.len());
        for key in configured {
            if key.name.is_empty() || keys.iter().any(|k| k.name == key.name) {
                return Err(format!(
                    "api key names must be unique and non-empty: {:?}",
                    key.name
                ));
            }
            let hash = parse_hash(&key.hash).ok_or_else(|| {
                format!(
                    "api key {}: hash must be sha256: and 64 hex digits",
                    key.name
                )
            })?;
            let scopes = key
                .scopes
                .iter()
                .map(|s| Scope::parse(s).map_err(|e| format!("api key {}: {e}", key.name)))
                .collect::<Result<Vec<_>, _>>()?;
            let certificate = key
                .client_certificate_sha256
                .as_ref()
                .map(|c| c.to_ascii_lowercase());
            keys.push(Key {
                name: key.name.clone(),
                hash,
                certificate,
                scopes,
            });
        }
        Ok(KeyRing { keys })
    }

    /// Whether no key is configured (anonymous access).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key whose secret this is, compared against every key in constant time.
    pub fn identify(&self, secret: &str) -> Option<&Key> {
        let presented: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.hash.ct_eq(&presented)) {
                found = Some(key);
            }
        }
        found
    }
}

impl KeyRing {
    /// The key a verified client certificate (by its SHA-256 fingerprint) stands for.
    pub fn identify_certificate(&self, fingerprint: &str) -> Option<&Key> {
        self.keys
            .iter()
            .find(|key| key.certificate.as_deref() == Some(fingerprint))
    }
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let hex = text.strip_prefix(HASH_PREFIX)?;
    if hex.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(hash)
}

/// The stored form of `secret`: `sha256:` and its hex hash.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{HASH_PREFIX}{hex}")
}

/// A new random secret: 32 bytes, base64url without padding.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests;
