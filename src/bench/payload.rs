//! What the load generator sends: the record values (the Protheus invoice, or a
//! generated value of an exact size) and the request bodies of both APIs.
//!
//! Every record's key is `bench-<run>-<n>`, unique within a run, so that
//! [`super::verify`] can find each acknowledged record in the topic afterwards.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The invoice every ERP client sends, as the repository's fixture holds it.
const INVOICE: &str = include_str!("../../tests/fixtures/nota-fiscal.json");

/// The record value a benchmark sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// The `data` of `tests/fixtures/nota-fiscal.json` (about 1.4 KB).
    Invoice,
    /// A JSON object of exactly this many bytes.
    Bytes(usize),
}

impl Payload {
    /// The record value: JSON text, sent byte for byte as the Kafka record's value.
    pub fn value(self) -> Arc<str> {
        match self {
            Payload::Invoice => invoice_data().into(),
            Payload::Bytes(size) => generated(size).into(),
        }
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::Invoice => f.write_str("invoice"),
            Payload::Bytes(size) if size % 1000 == 0 => write!(f, "{}KB", size / 1000),
            Payload::Bytes(size) => write!(f, "{size}B"),
        }
    }
}

impl FromStr for Payload {
    type Err = String;

    /// `invoice`, or a size: `200`, `200B`, `2KB`, `100KB` (KB = 1000 bytes).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.trim().to_ascii_lowercase();
        if lower == "invoice" {
            return Ok(Payload::Invoice);
        }
        let (digits, unit) = match lower.strip_suffix("kb") {
            Some(digits) => (digits, 1000),
            None => (lower.strip_suffix('b').unwrap_or(&lower), 1),
        };
        match digits.parse::<usize>() {
            Ok(n) if n * unit >= MIN_GENERATED => Ok(Payload::Bytes(n * unit)),
            _ => Err(format!(
                "payload must be `invoice` or a size of at least {MIN_GENERATED} bytes \
                 (200B, 2KB, 100KB), not {text:?}"
            )),
        }
    }
}

/// The smallest generated value: `{"fill":""}` plus a little room.
pub const MIN_GENERATED: usize = 16;

/// The invoice fixture's `data`, compact.
fn invoice_data() -> String {
    let fixture: serde_json::Value =
        serde_json::from_str(INVOICE).expect("the invoice fixture is valid JSON");
    fixture["data"].to_string()
}

/// A JSON object of exactly `size` bytes: `{"fill":"xxxx…"}`.
// TODO(bench): a repeated letter compresses far better than real records, so the
// producer's lz4 flatters generated payloads; the invoice is the realistic one.
fn generated(size: usize) -> String {
    const FRAME: usize = r#"{"fill":""}"#.len();
    let fill = "x".repeat(size.saturating_sub(FRAME));
    format!(r#"{{"fill":"{fill}"}}"#)
}

/// The key of record `n` of run `run`.
pub fn record_key(run: &str, n: u64) -> String {
    format!("{}{n}", key_prefix(run))
}

/// What every key of run `run` starts with.
pub fn key_prefix(run: &str) -> String {
    format!("bench-{run}-")
}

/// The old middleware's body: `{"key": ..., "data": ...}`.
pub fn middleware_body(key: &str, value: &str) -> String {
    // Keys are made of ASCII letters, digits and dashes, so they need no escaping,
    // and the value goes in as written, byte for byte.
    format!(r#"{{"key":"{key}","data":{value}}}"#)
}

/// A Confluent REST Proxy v2 JSON body with one record per key.
pub fn rest_proxy_body(keys: &[String], value: &str) -> String {
    let records: Vec<String> = keys
        .iter()
        .map(|key| format!(r#"{{"key":"{key}","value":{value}}}"#))
        .collect();
    format!(r#"{{"records":[{}]}}"#, records.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_have_exactly_the_requested_size_and_are_json_objects() {
        for size in [MIN_GENERATED, 200, 2_000, 100_000] {
            let value = Payload::Bytes(size).value();
            assert_eq!(value.len(), size);
            let parsed: serde_json::Value = serde_json::from_str(&value).expect("JSON");
            assert!(parsed.is_object());
        }
    }

    #[test]
    fn the_invoice_is_the_fixture_data_compacted() {
        let value = Payload::Invoice.value();
        let parsed: serde_json::Value = serde_json::from_str(&value).expect("JSON");
        assert_eq!(parsed["cabecalho"]["documento"], "000123456");
        assert!(value.len() > 1000 && !value.contains('\n'));
    }

    #[test]
    fn payload_names_read_back_as_the_same_payload() {
        for name in ["invoice", "200B", "2KB", "100KB"] {
            let payload: Payload = name.parse().expect("a payload");
            assert_eq!(payload.to_string(), name);
        }
        assert_eq!("2kb".parse::<Payload>(), Ok(Payload::Bytes(2_000)));
        assert_eq!("300".parse::<Payload>(), Ok(Payload::Bytes(300)));
        assert!("3".parse::<Payload>().is_err());
        assert!("big".parse::<Payload>().is_err());
    }

    #[test]
    fn bodies_carry_the_key_and_the_value_unchanged() {
        let value = r#"{"valor":1500.00}"#;
        let body: serde_json::Value =
            serde_json::from_str(&middleware_body("bench-r1-7", value)).expect("JSON");
        assert_eq!(body["key"], "bench-r1-7");
        assert!(middleware_body("k", value).contains("1500.00"));

        let keys = vec![record_key("r1", 0), record_key("r1", 1)];
        let body: serde_json::Value =
            serde_json::from_str(&rest_proxy_body(&keys, value)).expect("JSON");
        assert_eq!(body["records"][1]["key"], "bench-r1-1");
        assert_eq!(body["records"][0]["value"]["valor"], 1500.0);
    }
}
