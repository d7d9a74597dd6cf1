//! The request bodies of the Confluent REST Proxy API: v2 produce
//! (`{"records": [...]}`) and v3 produce (one record per JSON object, or
//! `{"entries": [...]}` for a batch), turned into records.
//!
//! Embedded data is kept as the client sent it: a JSON key or value reaches Kafka
//! as the JSON text the client wrote, byte for byte; binary data is base64 in the
//! request and raw bytes in Kafka; a string is its UTF-8 bytes.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{BodyLimits, Invalid, nesting_depth};
use crate::record::{Record, RecordHeader};

/// How keys and values are embedded in a v2 produce request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V2Format {
    /// Any JSON value, sent to Kafka as its JSON text
    /// (`application/vnd.kafka.json.v2+json`).
    Json,
    /// Base64 text, sent to Kafka as the bytes it encodes
    /// (`application/vnd.kafka.binary.v2+json`).
    Binary,
}

#[derive(Deserialize)]
struct V2Body<'a> {
    #[serde(borrow)]
    records: Vec<V2Record<'a>>,
    #[serde(default, borrow)]
    key_schema: Option<&'a RawValue>,
    #[serde(default, borrow)]
    key_schema_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    value_schema: Option<&'a RawValue>,
    #[serde(default, borrow)]
    value_schema_id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct V2Record<'a> {
    #[serde(default, borrow)]
    key: Option<&'a RawValue>,
    #[serde(default, borrow)]
    value: Option<&'a RawValue>,
    #[serde(default)]
    partition: Option<i32>,
}

/// Whether a body looks like a v2 produce request (an object with `records`)
/// rather than the old middleware's `{"key", "data"}`.
pub fn looks_like_v2(body: &[u8]) -> bool {
    // A map, not a struct: serde would also read a JSON array as a struct.
    serde_json::from_slice::<HashMap<Cow<'_, str>, &RawValue>>(body)
        .is_ok_and(|fields| fields.contains_key("records") && !fields.contains_key("data"))
}

/// Parses a v2 produce body into one record per entry of `records`, in order.
/// `path_partition` is the partition of `/topics/{topic}/partitions/{partition}`.
/// One invalid record refuses the whole request, naming it: nothing is stored.
pub fn v2_records(
    topic: &str,
    body: &[u8],
    format: V2Format,
    path_partition: Option<i32>,
    limits: BodyLimits,
) -> Result<Vec<Record>, Invalid> {
    check_depth(body, limits)?;
    let parsed: V2Body<'_> = parse(body, "{\"records\": [{\"key\": ..., \"value\": ...}]}")?;
    if parsed.records.is_empty() {
        return Err(Invalid::Body("\"records\" is empty".to_owned()));
    }
    parsed
        .records
        .iter()
        .enumerate()
        .map(|(n, entry)| {
            let at = |field: &str| format!("records[{n}].{field}");
            let key = embedded_v2(entry.key, format).map_err(|reason| Invalid::RecordOfMany {
                at: at("key"),
                reason,
            })?;
            let value =
                embedded_v2(entry.value, format).map_err(|reason| Invalid::RecordOfMany {
                    at: at("value"),
                    reason,
                })?;
            let partition = match (path_partition, entry.partition) {
                (Some(path), Some(own)) if path != own => {
                    return Err(Invalid::RecordOfMany {
                        at: at("partition"),
                        reason: format!("is {own}, but the path names partition {path}"),
                    });
                }
                (path, own) => path.or(own),
            };
            if let Some(partition) = partition {
                check_partition(partition).map_err(|reason| Invalid::RecordOfMany {
                    at: at("partition"),
                    reason,
                })?;
            }
            let mut record = Record::arriving(topic.to_owned(), key, value);
            record.partition = partition;
            check_key(&record, limits).map_err(|reason| Invalid::RecordOfMany {
                at: at("key"),
                reason,
            })?;
            Ok(record)
        })
        .collect()
}

/// What a v2 request in a schema-registry format (`avro`, `protobuf`,
/// `jsonschema`) lacks, in the REST Proxy's own terms: keys without a key schema,
/// or values without a value schema. `None` when the schemas are all there.
pub fn v2_missing_schema(body: &[u8]) -> Result<Option<Invalid>, Invalid> {
    let parsed: V2Body<'_> = parse(body, "{\"records\": [...]}")?;
    let present = |raw: Option<&RawValue>| raw.is_some_and(|r| r.get() != "null");
    let has_keys = parsed.records.iter().any(|r| present(r.key));
    let has_values = parsed.records.iter().any(|r| present(r.value));
    if has_keys && !present(parsed.key_schema) && !present(parsed.key_schema_id) {
        return Ok(Some(Invalid::KeySchemaMissing));
    }
    if has_values && !present(parsed.value_schema) && !present(parsed.value_schema_id) {
        return Ok(Some(Invalid::ValueSchemaMissing));
    }
    Ok(None)
}

fn embedded_v2(raw: Option<&RawValue>, format: V2Format) -> Result<Option<Vec<u8>>, String> {
    let Some(raw) = raw.filter(|raw| raw.get() != "null") else {
        return Ok(None);
    };
    match format {
        V2Format::Json => Ok(Some(raw.get().as_bytes().to_vec())),
        V2Format::Binary => base64_of(raw).map(Some),
    }
}

/// A v3 produce request: one record.
#[derive(Deserialize)]
struct V3Record<'a> {
    #[serde(default)]
    partition_id: Option<i32>,
    #[serde(default)]
    headers: Vec<V3Header<'a>>,
    #[serde(default, borrow)]
    key: Option<V3Data<'a>>,
    #[serde(default, borrow)]
    value: Option<V3Data<'a>>,
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Deserialize)]
struct V3Header<'a> {
    name: String,
    #[serde(default, borrow)]
    value: Option<&'a RawValue>,
}

/// A v3 key or value: its type, its data, and any schema-registry fields.
#[derive(Deserialize)]
struct V3Data<'a> {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
    #[serde(default, borrow)]
    schema_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    schema_version: Option<&'a RawValue>,
    #[serde(default, borrow)]
    subject: Option<&'a RawValue>,
    #[serde(default, borrow)]
    subject_name_strategy: Option<&'a RawValue>,
    #[serde(default, borrow)]
    raw_schema: Option<&'a RawValue>,
}

/// The type of a v3 key or value, as its answer reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V3Type {
    /// Base64 in the request, raw bytes in Kafka.
    Binary,
    /// Any JSON value, sent as its JSON text.
    Json,
    /// A JSON string, sent as its UTF-8 bytes.
    String,
}

impl V3Type {
    /// The name the REST Proxy uses.
    pub fn name(self) -> &'static str {
        match self {
            V3Type::Binary => "BINARY",
            V3Type::Json => "JSON",
            V3Type::String => "STRING",
        }
    }
}

/// A v3 record, with the types its key and value were given in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Submission {
    /// The record.
    pub record: Record,
    /// The key's type, when it had one.
    pub key_type: Option<V3Type>,
    /// The value's type, when it had one.
    pub value_type: Option<V3Type>,
}

/// Parses one v3 produce request (a JSON object) into a record for `topic`.
pub fn v3_record(topic: &str, body: &[u8], limits: BodyLimits) -> Result<V3Submission, Invalid> {
    check_depth(body, limits)?;
    let parsed: V3Record<'_> = parse(body, "{\"value\": {\"type\": \"JSON\", \"data\": ...}}")?;
    v3_submission(topic, parsed, limits)
}

fn v3_submission(
    topic: &str,
    parsed: V3Record<'_>,
    limits: BodyLimits,
) -> Result<V3Submission, Invalid> {
    let (key, key_type) = embedded_v3(parsed.key.as_ref()).map_err(field("key"))?;
    let (value, value_type) = embedded_v3(parsed.value.as_ref()).map_err(field("value"))?;
    let headers = parsed
        .headers
        .into_iter()
        .enumerate()
        .map(|(n, header)| {
            let value = match header.value.filter(|raw| raw.get() != "null") {
                Some(raw) => Some(base64_of(raw).map_err(field(&format!("headers[{n}].value")))?),
                None => None,
            };
            Ok(RecordHeader {
                name: header.name,
                value,
            })
        })
        .collect::<Result<Vec<_>, Invalid>>()?;
    if let Some(partition) = parsed.partition_id {
        check_partition(partition).map_err(field("partition_id"))?;
    }
    let kafka_timestamp_ms = parsed
        .timestamp
        .map(|text| {
            rfc3339_ms(&text).ok_or_else(|| Invalid::Record {
                at: "timestamp".to_owned(),
                reason: format!("{text:?} is not an RFC 3339 time such as 2026-12-03T10:30:00Z"),
            })
        })
        .transpose()?;

    let mut record = Record::arriving(topic.to_owned(), key, value);
    record.headers = headers;
    record.partition = parsed.partition_id;
    record.kafka_timestamp_ms = kafka_timestamp_ms;
    check_key(&record, limits).map_err(field("key"))?;
    Ok(V3Submission {
        record,
        key_type,
        value_type,
    })
}

/// One entry of a v3 batch: its id and what parsing it gave.
pub type BatchEntry = (String, Result<V3Submission, Invalid>);

/// Parses `{"entries": [{"id": ..., ...}]}`. An entry that is not a valid record
/// is reported with its id; the others stand on their own. Ids must be unique.
pub fn v3_batch(topic: &str, body: &[u8], limits: BodyLimits) -> Result<Vec<BatchEntry>, Invalid> {
    #[derive(Deserialize)]
    struct Batch<'a> {
        #[serde(borrow)]
        entries: Vec<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Id {
        id: Option<serde_json::Value>,
    }
    check_depth(body, limits)?;
    let batch: Batch<'_> = parse(body, "{\"entries\": [{\"id\": \"1\", \"value\": ...}]}")?;
    if batch.entries.is_empty() {
        return Err(Invalid::Body("\"entries\" is empty".to_owned()));
    }
    let mut seen = std::collections::HashSet::new();
    let mut entries = Vec::with_capacity(batch.entries.len());
    for (n, raw) in batch.entries.into_iter().enumerate() {
        let id = match serde_json::from_str::<Id>(raw.get())
            .ok()
            .and_then(|e| e.id)
        {
            Some(serde_json::Value::String(id)) if super::client_id(&id) => id,
            Some(serde_json::Value::Number(id)) => id.to_string(),
            _ => {
                return Err(Invalid::Record {
                    at: format!("entries[{n}].id"),
                    reason: "must be a string of 1 to 255 characters of A-Z a-z 0-9 . _ : -"
                        .to_owned(),
                });
            }
        };
        if !seen.insert(id.clone()) {
            return Err(Invalid::Record {
                at: format!("entries[{n}].id"),
                reason: format!("{id:?} is used by an earlier entry; ids must be unique"),
            });
        }
        let parsed = serde_json::from_str::<V3Record<'_>>(raw.get())
            .map_err(|err| Invalid::WrongShape(err.to_string()))
            .and_then(|record| v3_submission(topic, record, limits));
        entries.push((id, parsed));
    }
    Ok(entries)
}

/// Turns a reason into the refusal of the field at `at`.
fn field(at: &str) -> impl FnOnce(String) -> Invalid + '_ {
    move |reason| Invalid::Record {
        at: at.to_owned(),
        reason,
    }
}

fn embedded_v3(data: Option<&V3Data<'_>>) -> Result<(Option<Vec<u8>>, Option<V3Type>), String> {
    let Some(data) = data else {
        return Ok((None, None));
    };
    let registry = [
        data.schema_id,
        data.schema_version,
        data.subject,
        data.subject_name_strategy,
        data.raw_schema,
    ]
    .iter()
    .any(Option::is_some);
    let kind = match data.kind.as_deref() {
        Some("BINARY") => V3Type::Binary,
        Some("JSON") => V3Type::Json,
        Some("STRING") => V3Type::String,
        Some(other @ ("AVRO" | "PROTOBUF" | "JSONSCHEMA")) => {
            return Err(format!(
                "type {other} needs a schema registry, which ponte does not support yet; \
                 use BINARY, JSON or STRING"
            ));
        }
        Some(other) => {
            return Err(format!(
                "type {other:?} is unknown; use BINARY, JSON or STRING"
            ));
        }
        None if registry => {
            return Err(
                "schema registry fields (schema_id, subject, ...) are not supported \
                        yet; give \"type\": BINARY, JSON or STRING"
                    .to_owned(),
            );
        }
        None => {
            return Err(
                "\"type\" is required: BINARY, JSON or STRING (schema registry \
                        formats are not supported yet)"
                    .to_owned(),
            );
        }
    };
    let Some(raw) = data.data.filter(|raw| raw.get() != "null") else {
        return Ok((None, Some(kind)));
    };
    let bytes = match kind {
        V3Type::Binary => base64_of(raw)?,
        V3Type::Json => raw.get().as_bytes().to_vec(),
        V3Type::String => serde_json::from_str::<String>(raw.get())
            .map_err(|_| "data of type STRING must be a JSON string".to_owned())?
            .into_bytes(),
    };
    Ok((Some(bytes), Some(kind)))
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8], example: &str) -> Result<T, Invalid> {
    serde_json::from_slice(body).map_err(|err| {
        if err.is_data() {
            Invalid::Body(format!("the body must look like {example}: {err}"))
        } else {
            Invalid::MalformedJson(err.to_string())
        }
    })
}

fn base64_of(raw: &RawValue) -> Result<Vec<u8>, String> {
    let text: String = serde_json::from_str(raw.get())
        .map_err(|_| "must be a base64 string for the binary format".to_owned())?;
    STANDARD
        .decode(text.as_bytes())
        .map_err(|err| format!("is not valid base64: {err}"))
}

fn check_partition(partition: i32) -> Result<(), String> {
    if partition < 0 {
        return Err(format!("is {partition}; partitions are numbered from 0"));
    }
    Ok(())
}

fn check_key(record: &Record, limits: BodyLimits) -> Result<(), String> {
    match &record.key {
        Some(key) if key.len() > limits.max_key_bytes => Err(format!(
            "is {} bytes long; the limit is {}",
            key.len(),
            limits.max_key_bytes
        )),
        _ => Ok(()),
    }
}

fn check_depth(body: &[u8], limits: BodyLimits) -> Result<(), Invalid> {
    if nesting_depth(body) > limits.max_json_depth {
        return Err(Invalid::TooDeep {
            limit: limits.max_json_depth,
        });
    }
    Ok(())
}

/// Reads an RFC 3339 time (`2026-12-03T10:30:00Z`, `...30.5Z`, `...+01:00`) as
/// milliseconds since the Unix epoch.
pub fn rfc3339_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    // humantime reads UTC times; an offset such as +01:00 is applied here.
    let split = text
        .len()
        .checked_sub(6)
        .and_then(|at| Some((text.get(..at)?, text.get(at..)?)));
    let (time, offset_minutes) = match split {
        Some((time, offset))
            if matches!(offset.as_bytes()[0], b'+' | b'-') && offset.as_bytes()[3] == b':' =>
        {
            let hours: i64 = offset[1..3].parse().ok()?;
            let minutes: i64 = offset[4..6].parse().ok()?;
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            (time, sign * (hours * 60 + minutes))
        }
        _ => (
            text.strip_suffix('Z').or_else(|| text.strip_suffix('z'))?,
            0,
        ),
    };
    if !time.contains('T') && !time.contains('t') {
        return None;
    }
    let utc = humantime::parse_rfc3339_weak(time).ok()?;
    let ms = i64::try_from(utc.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis()).ok()?;
    Some(ms - offset_minutes * 60_000)
}

#[cfg(test)]
mod tests;
