//! End-to-end verification: reads the topic back and counts, for one run, the
//! acknowledged records that are missing and the records that arrived twice.
//!
//! The topic is read with assigned partitions from the beginning (no consumer
//! group, so nothing is committed and no rebalance delays the read) until every
//! partition's high watermark, taken once the run's records have been delivered,
//! and then until nothing more arrives for a moment.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

/// How long the topic must stay quiet, once the high watermarks are reached,
/// before reading stops. Tansu 0.6.0 reports a partition's high watermark as the
/// first offset of its last batch, so records past the watermark are read too.
const QUIET: Duration = Duration::from_secs(2);

/// How long one metadata or watermark request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the topic could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Kafka refused or failed a request.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The topic has no partitions (it does not exist).
    #[error("topic {0} has no partitions")]
    NoPartitions(String),
    /// Reading did not reach the high watermarks in time.
    #[error("read {read} of {expected} records of {topic} before giving up")]
    Incomplete {
        /// The topic.
        topic: String,
        /// Records read.
        read: u64,
        /// Records below the high watermarks.
        expected: u64,
    },
}

/// What reading the topic back found, for one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Records ponte acknowledged (`200` or `202`).
    pub acknowledged: u64,
    /// Distinct acknowledged records found in the topic.
    pub found: u64,
    /// Acknowledged records not found.
    pub missing: u64,
    /// Records of the run found more than once.
    pub duplicated: u64,
    /// Records of the run found although their request failed; harmless (the
    /// client was told nothing), shown for completeness.
    pub unacknowledged_found: u64,
}

impl Verdict {
    /// Every acknowledged record is in Kafka, and none twice.
    pub fn exactly_once(&self) -> bool {
        self.missing == 0 && self.duplicated == 0
    }
}

/// Counts the records of one run by their number `n` in `bench-<run>-<n>`.
#[derive(Debug)]
pub struct Tally {
    prefix: String,
    acknowledged: Vec<bool>,
    seen: Vec<u32>,
}

impl Tally {
    /// A tally of a run whose keys start with `prefix`, of which `issued` keys
    /// were sent and those numbered in `acknowledged` were acknowledged.
    pub fn new(prefix: String, issued: u64, acknowledged: &[u64]) -> Tally {
        let issued = usize::try_from(issued).expect("a run's record count fits in memory");
        let mut acked = vec![false; issued];
        for &n in acknowledged {
            if let Some(slot) = usize::try_from(n).ok().and_then(|n| acked.get_mut(n)) {
                *slot = true;
            }
        }
        Tally {
            prefix,
            acknowledged: acked,
            seen: vec![0; issued],
        }
    }

    /// Takes in one record's key; keys of other runs are ignored. A key sent
    /// through the REST Proxy's JSON format arrives as JSON text (`"bench-r-7"`)
    /// and counts as the bare key.
    pub fn observe(&mut self, key: &[u8]) {
        let key = key
            .strip_prefix(b"\"")
            .and_then(|inner| inner.strip_suffix(b"\""))
            .unwrap_or(key);
        let number = std::str::from_utf8(key)
            .ok()
            .and_then(|key| key.strip_prefix(self.prefix.as_str()))
            .and_then(|n| n.parse::<usize>().ok());
        if let Some(count) = number.and_then(|n| self.seen.get_mut(n)) {
            *count = count.saturating_add(1);
        }
    }

    /// The counts so far.
    pub fn verdict(&self) -> Verdict {
        let mut verdict = Verdict::default();
        for (&acked, &seen) in self.acknowledged.iter().zip(&self.seen) {
            verdict.acknowledged += u64::from(acked);
            verdict.found += u64::from(acked && seen > 0);
            verdict.missing += u64::from(acked && seen == 0);
            verdict.duplicated += u64::from(seen > 1);
            verdict.unacknowledged_found += u64::from(!acked && seen > 0);
        }
        verdict
    }
}

/// Reads all of `topic` on `brokers` into `tally`, giving up after `patience`.
/// Blocking: run it on a thread of its own or tokio's blocking pool.
pub fn read_topic(
    brokers: &str,
    topic: &str,
    tally: &mut Tally,
    patience: Duration,
) -> Result<Verdict, VerifyError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "ponte-bench-verify")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()?;
    let ends = high_watermarks(&consumer, topic)?;
    let expected: u64 = ends
        .iter()
        .map(|&(_, low, high)| (high - low).max(0) as u64)
        .sum();

    let mut assignment = TopicPartitionList::new();
    for &(partition, _, _) in &ends {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;

    let mut next: Vec<i64> = ends.iter().map(|&(_, low, _)| low).collect();
    let mut read = 0;
    let mut last_read = Instant::now();
    let deadline = Instant::now() + patience;
    loop {
        let reached = next
            .iter()
            .zip(&ends)
            .all(|(&at, &(_, _, high))| at >= high);
        if reached && (last_read.elapsed() >= QUIET || Instant::now() > deadline) {
            break;
        }
        if Instant::now() > deadline {
            let topic = topic.to_owned();
            return Err(VerifyError::Incomplete {
                topic,
                read,
                expected,
            });
        }
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        if let Some(slot) = ends.iter().position(|&(p, _, _)| p == message.partition()) {
            next[slot] = next[slot].max(message.offset() + 1);
        }
        tally.observe(message.key().unwrap_or_default());
        read += 1;
        last_read = Instant::now();
    }
    Ok(tally.verdict())
}

/// `(partition, low, high)` watermarks of every partition of `topic`.
fn high_watermarks(
    consumer: &BaseConsumer,
    topic: &str,
) -> Result<Vec<(i32, i64, i64)>, VerifyError> {
    let metadata = consumer.fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(VerifyError::NoPartitions(topic.to_owned()));
    }
    partitions
        .into_iter()
        .map(|partition| {
            let (low, high) = consumer.fetch_watermarks(topic, partition, REQUEST_TIMEOUT)?;
            Ok((partition, low, high))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally_of(issued: u64, acknowledged: &[u64], keys: &[&str]) -> Verdict {
        let mut tally = Tally::new("bench-r1-".to_owned(), issued, acknowledged);
        for key in keys {
            tally.observe(key.as_bytes());
        }
        tally.verdict()
    }

    #[test]
    fn every_acknowledged_record_found_once_is_exactly_once() {
        let verdict = tally_of(3, &[0, 1, 2], &["bench-r1-2", "bench-r1-0", "bench-r1-1"]);
        assert_eq!(verdict.acknowledged, 3);
        assert_eq!(verdict.found, 3);
        assert!(verdict.exactly_once());
    }

    #[test]
    fn an_acknowledged_record_not_in_the_topic_is_missing() {
        let verdict = tally_of(3, &[0, 1, 2], &["bench-r1-0", "bench-r1-2"]);
        assert_eq!(verdict.missing, 1);
        assert!(!verdict.exactly_once());
    }

    #[test]
    fn a_record_found_twice_is_a_duplicate_even_if_never_acknowledged() {
        let verdict = tally_of(2, &[0], &["bench-r1-0", "bench-r1-1", "bench-r1-1"]);
        assert_eq!(verdict.duplicated, 1);
        assert_eq!(verdict.unacknowledged_found, 1);
        assert!(!verdict.exactly_once());
    }

    #[test]
    fn json_text_keys_of_the_rest_proxy_count_as_their_bare_key() {
        let verdict = tally_of(2, &[0, 1], &["\"bench-r1-0\"", "bench-r1-1"]);

        assert_eq!((verdict.missing, verdict.duplicated), (0, 0));
    }

    #[test]
    fn keys_of_other_runs_and_foreign_keys_are_ignored() {
        let keys = [
            "bench-r2-0",
            "bench-r1-9",
            "bench-r1-x",
            "NF-000001",
            "bench-r1-0",
        ];
        let verdict = tally_of(1, &[0], &keys);
        assert_eq!(verdict.found, 1);
        assert_eq!(verdict.duplicated, 0);
        assert!(verdict.exactly_once());
    }
}
