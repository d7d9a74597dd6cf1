//! The record as it travels through ponte, and the promise of its delivery report.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngExt;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

/// One record on its way to Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The id returned to the client and sent in the `message-id` header.
    pub message_id: String,
    /// Target topic, already validated.
    pub topic: String,
    /// Record key, as bytes; `None` lets the partitioner choose.
    pub key: Option<Vec<u8>>,
    /// Record value, as bytes: for the middleware's body the JSON text of the
    /// client's `data`, byte for byte. `None` is a null value (a tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers the client asked for, sent before ponte's own.
    pub headers: Vec<RecordHeader>,
    /// The partition the client asked for; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// Arrival time in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The Kafka record timestamp the client asked for (ms since the epoch). Without
    /// one the Kafka record carries the time it was produced, as the old
    /// middleware's did: a record sent days after arrival (a replay) with its
    /// arrival time could fall outside the topic's retention at once, or be
    /// refused by brokers that bound timestamps.
    pub kafka_timestamp_ms: Option<i64>,
}

/// One Kafka record header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordHeader {
    /// Header name.
    pub name: String,
    /// Header value; `None` for a header without one.
    pub value: Option<Vec<u8>>,
}

impl Record {
    /// Builds a record that arrived now, with a fresh message id, no headers and
    /// no partition or timestamp of its own.
    pub fn arriving(topic: String, key: Option<Vec<u8>>, value: Option<Vec<u8>>) -> Self {
        let timestamp_ms = now_ms();
        Record {
            message_id: new_message_id(&topic, timestamp_ms),
            topic,
            key,
            value,
            headers: Vec::new(),
            partition: None,
            timestamp_ms,
            kafka_timestamp_ms: None,
        }
    }

    /// Hex SHA-256 of what makes two requests the same record: topic, key, value,
    /// and the headers, partition and timestamp the client chose. A record with
    /// none of the last three hashes as the first releases of ponte hashed it, so
    /// idempotency keys stored by them still match after an upgrade.
    pub fn fingerprint(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hash = Sha256::new();
        hash.update(self.topic.as_bytes());
        hash.update([0]);
        match &self.key {
            Some(key) => {
                hash.update([1]);
                hash.update(key);
            }
            None => hash.update([0]),
        }
        hash.update([0]);
        match &self.value {
            Some(value) => hash.update(value),
            None => hash.update([0xff, b'n', b'u', b'l', b'l']),
        }
        for header in &self.headers {
            hash.update([0xfe]);
            hash.update((header.name.len() as u64).to_be_bytes());
            hash.update(header.name.as_bytes());
            optional(&mut hash, header.value.as_deref());
        }
        if let Some(partition) = self.partition {
            hash.update([0xfd]);
            hash.update(partition.to_be_bytes());
        }
        if let Some(timestamp) = self.kafka_timestamp_ms {
            hash.update([0xfc]);
            hash.update(timestamp.to_be_bytes());
        }
        hash.finalize()
            .iter()
            .fold(String::with_capacity(64), |mut hex, byte| {
                hex.push(char::from(HEX[usize::from(byte >> 4)]));
                hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
                hex
            })
    }
}

/// Hashes an optional byte string so that `None` and every `Some` differ.
fn optional(hash: &mut Sha256, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => {
            hash.update([1]);
            hash.update((bytes.len() as u64).to_be_bytes());
            hash.update(bytes);
        }
        None => hash.update([0]),
    }
}

/// A record stored in the outbox under its row id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Outbox row id; ids grow in commit order.
    pub id: i64,
    /// The record itself.
    pub record: Record,
    /// Failed sends that count toward the dead-letter limit.
    pub retry_count: i64,
    /// When a scheduled retry is due (ms since the epoch); `None` for a record on
    /// its first way to Kafka or waiting out an outage.
    pub next_attempt_at_ms: Option<i64>,
}

/// Where Kafka put a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Partition the record was written to.
    pub partition: i32,
    /// Offset Kafka assigned within that partition.
    pub offset: i64,
}

/// The final word from the producer about one send.
pub type DeliveryReport = Result<Placement, String>;

/// Sender half through which the producer tells a waiting request what happened.
pub type DeliveryWaiter = oneshot::Sender<DeliveryReport>;

/// Current wall-clock time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// Message ids keep the old middleware's shape, `{topic}-{epoch ms}-{random}`, so
/// that operators' scripts that split them keep working. Twelve base-36 characters
/// give 62 random bits, which makes a collision within one millisecond negligible.
fn new_message_id(topic: &str, timestamp_ms: i64) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let suffix: String = (0..12)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{topic}-{timestamp_ms}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_have_the_middleware_shape() {
        let record = Record::arriving("notas".to_owned(), None, Some(b"{}".to_vec()));
        let rest = record
            .message_id
            .strip_prefix("notas-")
            .expect("topic prefix");
        let (millis, suffix) = rest.split_once('-').expect("two parts after the topic");

        assert_eq!(millis, record.timestamp_ms.to_string());
        assert_eq!(suffix.len(), 12);
        assert!(
            suffix
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        );
    }

    #[test]
    fn message_ids_differ_within_one_millisecond() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| new_message_id("t", 1)).collect();
        assert_eq!(ids.len(), 10_000);
    }
}
