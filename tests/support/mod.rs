//! Test support: real brokers (librdkafka's mock cluster in-process, Tansu as a
//! separate process), the `ponte` binary as a child process, and a consumer that
//! reads back what reached Kafka.

// Each test file uses a different part of this module.
#![allow(dead_code, unreachable_pub, clippy::print_stderr)]

pub mod brokers;
pub mod ponte;

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

/// librdkafka's in-process mock cluster, as the tests hold it.
pub type Cluster =
    rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>;

/// A one-broker mock cluster and a ponte started against it with `env`, in a
/// fresh directory. Keep all three alive for the test.
pub fn start_on_mock(env: &[(&str, &str)]) -> (Cluster, tempfile::TempDir, ponte::Ponte) {
    let cluster = Cluster::new(1).expect("mock cluster");
    let dir = tempfile::tempdir().expect("temp dir");
    let ponte = ponte::Ponte::start(&cluster.bootstrap_servers(), dir.path(), env);
    (cluster, dir, ponte)
}

/// A record as read back from Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: String,
    pub headers: Vec<(String, String)>,
    /// The key's bytes, as Kafka holds them.
    pub key_bytes: Option<Vec<u8>>,
    /// The value's bytes; `None` for a null value.
    pub value_bytes: Option<Vec<u8>>,
    /// Header values as bytes; `None` for a header without a value.
    pub header_bytes: Vec<(String, Option<Vec<u8>>)>,
    /// The record's timestamp, ms since the epoch.
    pub timestamp_ms: Option<i64>,
}

impl Consumed {
    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Reads `topic` from the beginning of every partition, with assigned partitions
/// (no consumer group), until `expected` records arrived or `patience` passed.
pub fn consume(bootstrap: &str, topic: &str, expected: usize, patience: Duration) -> Vec<Consumed> {
    consume_until(bootstrap, topic, patience, |records| {
        records.len() >= expected
    })
}

/// Like [`consume`], but reads until `done` holds for what was read so far.
pub fn consume_until(
    bootstrap: &str,
    topic: &str,
    patience: Duration,
    done: impl Fn(&[Consumed]) -> bool,
) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "ponte-tests")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in partitions_of(&consumer, topic) {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("partition offset");
    }
    consumer.assign(&assignment).expect("assign partitions");

    let deadline = std::time::Instant::now() + patience;
    let mut records = Vec::new();
    while !done(&records) && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => records.push(Consumed {
                partition: message.partition(),
                offset: message.offset(),
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                value: String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
                headers: message
                    .headers()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|h| {
                                let value =
                                    h.value.map(String::from_utf8_lossy).unwrap_or_default();
                                (h.key.to_owned(), value.into_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                key_bytes: message.key().map(<[u8]>::to_vec),
                value_bytes: message.payload().map(<[u8]>::to_vec),
                header_bytes: message
                    .headers()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default(),
                timestamp_ms: message.timestamp().to_millis(),
            }),
            Some(Err(err)) => eprintln!("consumer error (retrying): {err}"),
            None => {}
        }
    }
    records
}

/// The partitions of `topic`, waiting while the broker is still creating it.
fn partitions_of(consumer: &BaseConsumer, topic: &str) -> Vec<i32> {
    for _ in 0..100 {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("topic metadata");
        let described = &metadata.topics()[0];
        if described.error().is_none() && !described.partitions().is_empty() {
            return described.partitions().iter().map(|p| p.id()).collect();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("topic {topic} has no partitions");
}

/// Runs `sql` through the `sqlite3` shell and returns its rows as JSON objects.
pub fn sqlite3(database: &std::path::Path, sql: &str) -> Vec<Value> {
    // As operators should: wait for ponte's writer instead of failing with
    // "database is locked".
    let output = std::process::Command::new("sqlite3")
        .args(["-cmd", ".timeout 5000"])
        .arg("-json")
        .arg(database)
        .arg(sql)
        .output()
        .expect("the sqlite3 shell is installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    if text.trim().is_empty() {
        return Vec::new();
    }
    serde_json::from_str(&text).expect("sqlite3 -json output")
}

/// Message ids of the records, in the order given.
pub fn message_ids(records: &[Consumed]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| r.header("message-id"))
        .map(str::to_owned)
        .collect()
}

/// The `offsets[0]` of a `200` answer, as (partition, offset).
pub fn placement(answer: &Value) -> (i32, i64) {
    let first = &answer["offsets"][0];
    let partition = first["partition"].as_i64().expect("numeric partition");
    let offset = first["offset"].as_str().expect("offset is a string");
    (
        i32::try_from(partition).expect("partition fits i32"),
        offset.parse().expect("offset is a number"),
    )
}
