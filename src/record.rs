//! The record as it travels through ponte, and the promise of its delivery report.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngExt;
use tokio::sync::oneshot;

/// One record on its way to Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The id returned to the client and sent in the `message-id` header.
    pub message_id: String,
    /// Target topic, already validated.
    pub topic: String,
    /// Record key; `None` lets the partitioner choose.
    pub key: Option<String>,
    /// Record value: the JSON text of the client's `data`, byte for byte.
    pub value: String,
    /// Arrival time in milliseconds since the Unix epoch. The Kafka record carries
    /// the time it was produced instead, as the old middleware's did: a record sent
    /// days after arrival (a replay) with its arrival time could fall outside the
    /// topic's retention at once, or be refused by brokers that bound timestamps.
    pub timestamp_ms: i64,
}

impl Record {
    /// Builds a record that arrived now, with a fresh message id.
    pub fn arriving(topic: String, key: Option<String>, value: String) -> Self {
        let timestamp_ms = now_ms();
        Record {
            message_id: new_message_id(&topic, timestamp_ms),
            topic,
            key,
            value,
            timestamp_ms,
        }
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
        let record = Record::arriving("notas".to_owned(), None, "{}".to_owned());
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
