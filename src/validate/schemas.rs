//! Per-topic JSON Schema validation of record values: an event contract that a
//! topic's records must keep, checked before anything is stored.
//!
//! Schemas are configured by topic name or wildcard pattern (`[[topic_schemas]]`)
//! and compiled once at startup; a schema that cannot be read or compiled stops
//! startup. The first entry whose pattern matches a topic applies to it; a topic
//! no entry matches is not validated.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wildmatch::WildMatch;

/// One `[[topic_schemas]]` entry of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSchema {
    /// A topic name, or a pattern with `*` and `?` (`protheus.*`).
    pub topic: String,
    /// The JSON Schema file the topic's record values must match.
    pub schema: PathBuf,
}

/// Why a schema could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The file could not be read.
    #[error("cannot read the schema {path} for topic {topic:?}: {source}")]
    Unreadable {
        /// The pattern it was configured for.
        topic: String,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("the schema {path} for topic {topic:?} is not JSON: {reason}")]
    NotJson {
        /// The pattern it was configured for.
        topic: String,
        /// The file.
        path: PathBuf,
        /// Where and why parsing failed.
        reason: String,
    },
    /// The file is JSON but not a usable JSON Schema.
    #[error("the schema {path} for topic {topic:?} is not a valid JSON Schema: {reason}")]
    Invalid {
        /// The pattern it was configured for.
        topic: String,
        /// The file.
        path: PathBuf,
        /// What the schema compiler said.
        reason: String,
    },
}

/// One way a record value breaks its topic's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which record of a request with several (its place, from 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<usize>,
    /// JSON pointer (RFC 6901) to the offending part of the value; `""` for the
    /// whole value.
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

struct Entry {
    pattern: WildMatch,
    source: PathBuf,
    validator: jsonschema::Validator,
}

/// The compiled schemas, ready to check records; cheap to share behind an `Arc`.
#[derive(Default)]
pub struct Schemas {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| (&e.pattern, &e.source)))
            .finish()
    }
}

/// Most violations reported for one record; a value can break a schema in
/// thousands of places, and the first ones tell the client what to fix.
const MAX_VIOLATIONS: usize = 100;

impl Schemas {
    /// Reads and compiles every configured schema.
    pub fn load(configured: &[TopicSchema]) -> Result<Schemas, SchemaError> {
        let entries = configured
            .iter()
            .map(|entry| {
                let path = entry.schema.clone();
                let text = std::fs::read(&path).map_err(|source| SchemaError::Unreadable {
                    topic: entry.topic.clone(),
                    path: path.clone(),
                    source,
                })?;
                let schema: Value =
                    serde_json::from_slice(&text).map_err(|err| SchemaError::NotJson {
                        topic: entry.topic.clone(),
                        path: path.clone(),
                        reason: err.to_string(),
                    })?;
                let validator =
                    jsonschema::validator_for(&schema).map_err(|err| SchemaError::Invalid {
                        topic: entry.topic.clone(),
                        path: path.clone(),
                        reason: err.to_string(),
                    })?;
                Ok(Entry {
                    pattern: WildMatch::new(&entry.topic),
                    source: path,
                    validator,
                })
            })
            .collect::<Result<Vec<_>, SchemaError>>()?;
        Ok(Schemas { entries })
    }

    /// Whether no topic is validated.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks a record value for `topic` against its schema, if it has one.
    /// A value that is not JSON, or a null value, breaks any schema that does
    /// not allow it.
    pub fn check(&self, topic: &str, value: Option<&[u8]>) -> Result<(), Vec<Violation>> {
        let Some(entry) = self.entries.iter().find(|e| e.pattern.matches(topic)) else {
            return Ok(());
        };
        let instance: Value = match value {
            None => Value::Null,
            Some(bytes) => serde_json::from_slice(bytes).map_err(|err| {
                vec![Violation {
                    record: None,
                    pointer: String::new(),
                    message: format!("the record value is not JSON: {err}"),
                }]
            })?,
        };
        let violations: Vec<Violation> = entry
            .validator
            .iter_errors(&instance)
            .take(MAX_VIOLATIONS)
            .map(|error| Violation {
                record: None,
                pointer: error.instance_path().as_str().to_owned(),
                message: error.to_string(),
            })
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }
}

#[cfg(test)]
mod tests;
