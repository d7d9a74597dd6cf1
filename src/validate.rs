//! Validation: everything a client sends is checked here, before anything is stored.
//!
//! Each failure is a variant of [`Invalid`] whose message tells the client what
//! to fix; [`crate::http::error`] decides the HTTP status for each.

mod bodies;
pub mod rest_proxy;
pub mod schemas;

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::value::RawValue;

use crate::record::Record;

pub use bodies::{CreateTopicRequest, ReplayRequest, create_topic_request, replay_request};

/// Kafka refuses topic names longer than this.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// The topic in the path is empty.
    #[error("topic name is empty")]
    TopicEmpty,
    /// The topic name is longer than Kafka allows.
    #[error("topic name is {length} characters long; Kafka allows at most 249")]
    TopicTooLong {
        /// Length of the name that was sent.
        length: usize,
    },
    /// `.` and `..` are reserved by Kafka.
    #[error("topic name may not be \".\" or \"..\"")]
    TopicReserved,
    /// The topic name has a character Kafka does not allow.
    #[error(
        "topic name contains {found:?}; only ASCII letters, digits, '.', '_' and '-' are allowed"
    )]
    TopicCharacter {
        /// The first offending character.
        found: char,
    },
    /// The path could not be decoded (bad percent-encoding or invalid UTF-8).
    #[error("request path could not be decoded: {0}")]
    Path(String),
    /// The body is not JSON at all.
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The body is JSON but not an object of the expected shape.
    #[error(
        "request body must be a JSON object such as {{\"key\": \"...\", \"data\": {{...}}}}: {0}"
    )]
    WrongShape(String),
    /// `data` is absent or null.
    #[error("\"data\" is missing or null; the record value goes in \"data\"")]
    MissingData,
    /// `message_id` is present but not a usable id.
    #[error("\"message_id\" must be a string of 1 to 255 characters of A-Z a-z 0-9 . _ : -")]
    BadMessageId,
    /// The `Idempotency-Key` header is not a usable key.
    #[error("Idempotency-Key must be 1 to 255 characters of A-Z a-z 0-9 . _ : -")]
    BadIdempotencyKey,
    /// The key is longer than `max_key_bytes`.
    #[error("\"key\" is {length} bytes long; the limit is {limit}")]
    KeyTooLong {
        /// Length of the key that was sent.
        length: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Arrays and objects are nested deeper than `max_json_depth`.
    #[error("the body nests arrays and objects deeper than the limit of {limit}")]
    TooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// An operator route's body is not what it takes.
    #[error("{0}")]
    Body(String),
    /// One record of a REST Proxy request is not usable.
    #[error("{at} {reason}")]
    Record {
        /// Where in the body, such as `value` or `headers[0].value`.
        at: String,
        /// What is wrong with it.
        reason: String,
    },
    /// One record of a v2 request is not usable, so none of them was stored.
    #[error("{at} {reason}; no record of this request was stored")]
    RecordOfMany {
        /// Where in the body, such as `records[2].value`.
        at: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A schema-registry format request has keys but no key schema.
    #[error(
        "request includes keys but no key_schema or key_schema_id; schema registry formats \
         (avro, protobuf, jsonschema) are not supported by ponte yet: use json or binary"
    )]
    KeySchemaMissing,
    /// A schema-registry format request has values but no value schema.
    #[error(
        "request includes values but no value_schema or value_schema_id; schema registry \
         formats (avro, protobuf, jsonschema) are not supported by ponte yet: use json or binary"
    )]
    ValueSchemaMissing,
    /// `key` is present but not a string.
    #[error("\"key\" must be a string or null, not {found}")]
    KeyNotString {
        /// JSON type of the value that was sent.
        found: &'static str,
    },
}

/// Checks a topic name against Kafka's rules: 1 to 249 characters of
/// `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn topic_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() {
        return Err(Invalid::TopicEmpty);
    }
    if let Some(found) = name.chars().find(|c| !is_topic_char(*c)) {
        return Err(Invalid::TopicCharacter { found });
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(Invalid::TopicTooLong { length: name.len() });
    }
    if name == "." || name == ".." {
        return Err(Invalid::TopicReserved);
    }
    Ok(())
}

fn is_topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// A record as the client submitted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The record, with the client's `message_id` if it gave one.
    pub record: Record,
    /// Whether the client chose the message id (which then is its idempotency key).
    pub client_message_id: bool,
}

/// Parses the old middleware's request body, `{"key": "...", "data": {...}}`, into
/// a record for `topic`. A `message_id` field, if present, becomes the record's id.
/// Other fields are ignored, as the middleware ignored them.
///
/// Fields are kept as raw JSON so that `data` reaches Kafka exactly as the client
/// wrote it: no re-serialisation, so no lost digits in amounts or large integers.
pub fn middleware_record(topic: String, body: &[u8]) -> Result<Submission, Invalid> {
    // A map, not a derived struct: serde would also accept a JSON array for a
    // struct, filling its fields by position.
    let fields: HashMap<Cow<'_, str>, &RawValue> = serde_json::from_slice(body).map_err(|err| {
        if err.is_data() {
            Invalid::WrongShape(err.to_string())
        } else {
            Invalid::MalformedJson(err.to_string())
        }
    })?;

    let data = fields
        .get("data")
        .filter(|raw| raw.get() != "null")
        .ok_or(Invalid::MissingData)?;
    let key = fields
        .get("key")
        .map(|raw| record_key(raw))
        .transpose()?
        .flatten();
    let message_id = fields
        .get("message_id")
        .map(|raw| message_id(raw))
        .transpose()?;

    let value = data.get().as_bytes().to_vec();
    let mut record = Record::arriving(topic, key.map(String::into_bytes), Some(value));
    let client_message_id = message_id.is_some();
    if let Some(message_id) = message_id {
        record.message_id = message_id;
    }
    Ok(Submission {
        record,
        client_message_id,
    })
}

/// Limits a request body must keep within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Longest record key, in bytes.
    pub max_key_bytes: usize,
    /// Deepest nesting of arrays and objects.
    pub max_json_depth: usize,
}

/// Checks the body's nesting depth and the record's key length.
pub fn within_limits(body: &[u8], record: &Record, limits: BodyLimits) -> Result<(), Invalid> {
    if let Some(key) = &record.key
        && key.len() > limits.max_key_bytes
    {
        return Err(Invalid::KeyTooLong {
            length: key.len(),
            limit: limits.max_key_bytes,
        });
    }
    if nesting_depth(body) > limits.max_json_depth {
        return Err(Invalid::TooDeep {
            limit: limits.max_json_depth,
        });
    }
    Ok(())
}

/// The deepest nesting of arrays and objects in JSON text, counting brackets
/// outside strings. Run on text the JSON parser has already accepted, it needs
/// no other grammar; a raw value is kept unparsed, so the parser's own depth
/// limit does not apply to it.
pub(crate) fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in json {
        match (in_string, escaped, byte) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') | (false, _, b'"') => in_string = !in_string,
            (false, _, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Checks an idempotency key or client message id: 1 to 255 characters of
/// `A-Z a-z 0-9 . _ : -`, so that it is safe in logs, headers and URL paths.
pub fn client_id(id: &str) -> bool {
    (1..=255).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Reads a moment given as milliseconds since the Unix epoch or as RFC 3339 text
/// (`2026-12-03T10:30:00Z`), as milliseconds since the epoch.
pub fn moment_ms(text: &str) -> Option<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    let time = humantime::parse_rfc3339_weak(text).ok()?;
    let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

fn message_id(raw: &RawValue) -> Result<String, Invalid> {
    match serde_json::from_str::<String>(raw.get()) {
        Ok(id) if client_id(&id) => Ok(id),
        _ => Err(Invalid::BadMessageId),
    }
}

fn record_key(raw: &RawValue) -> Result<Option<String>, Invalid> {
    serde_json::from_str::<Option<String>>(raw.get()).map_err(|_| Invalid::KeyNotString {
        found: json_type_name(raw.get()),
    })
}

fn json_type_name(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests;
