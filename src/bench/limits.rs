//! The physical limits ponte is measured against, on the same machine and in the
//! same run: how many fsyncs per second the outbox's file system takes, and how
//! many records per second a native producer gets into the same broker, both as
//! fast as it can (a pipeline, the broker's ceiling) and as many clients would
//! that each wait for Kafka's acknowledgement before sending the next record
//! (what ponte's closed-loop runs do, and what an ERP client does).

use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, FutureProducer, FutureRecord, Producer,
    ProducerContext,
};
use rdkafka::{ClientContext, Message as _};
use serde::{Deserialize, Serialize};

use super::payload::{Payload, record_key};

/// Bytes written before each fsync: one page, as a small group commit appends.
const BLOCK_BYTES: usize = 4096;

/// Size of the probe's file, written once before the measurement.
const FILE_BLOCKS: u64 = 1024;

/// How long the native producer may take to deliver what it still holds.
const FLUSH_PATIENCE: Duration = Duration::from_secs(120);

/// How long one closed-loop sender waits for its record's acknowledgement.
const SEND_PATIENCE: Duration = Duration::from_secs(30);

/// The pipelined producer's linger: longer than ponte's, so that it fills larger
/// batches and shows the broker's ceiling rather than ponte's settings.
const PIPELINE_LINGER_MS: u64 = 5;

/// How fast the disk makes writes durable.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct FsyncRate {
    /// fdatasync calls made.
    pub syncs: u64,
    /// Over this many seconds.
    pub seconds: f64,
    /// Their rate.
    pub per_second: f64,
}

/// Writes a page and `fdatasync`s it, over and over for `duration`, in a
/// temporary file in `dir`: the most group commits per second the outbox's file
/// system allows. The pages go round a file written beforehand, as SQLite's
/// write-ahead log is reused after each checkpoint, so that no sync has to
/// record a new file size (SQLite on Linux syncs with `fdatasync` too).
pub fn fsync_rate(dir: &Path, duration: Duration) -> std::io::Result<FsyncRate> {
    let probe = tempfile::Builder::new()
        .prefix("fsync-probe-")
        .tempfile_in(dir)?;
    let file = probe.as_file();
    let block = [0x5a_u8; BLOCK_BYTES];
    for n in 0..FILE_BLOCKS {
        file.write_all_at(&block, n * BLOCK_BYTES as u64)?;
    }
    file.sync_all()?;

    let started = Instant::now();
    let mut syncs = 0;
    while started.elapsed() < duration {
        let at = (syncs % FILE_BLOCKS) * BLOCK_BYTES as u64;
        file.write_all_at(&block, at)?;
        file.sync_data()?;
        syncs += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(FsyncRate {
        syncs,
        seconds,
        per_second: syncs as f64 / seconds,
    })
}

/// What the native producer achieved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NativeRate {
    /// Records Kafka acknowledged.
    pub acknowledged: u64,
    /// Records handed to the producer.
    pub issued: u64,
    /// From the first send until everything was acknowledged.
    pub seconds: f64,
    /// Acknowledged records per second.
    pub per_second: f64,
    /// Numbers of the acknowledged records, for verification.
    #[serde(skip, default)]
    pub acknowledged_numbers: Vec<u64>,
}

/// Collects the numbers of the records Kafka acknowledged.
struct Acknowledgements {
    prefix: String,
    numbers: Mutex<Vec<u64>>,
}

impl ClientContext for Acknowledgements {}

impl ProducerContext for Acknowledgements {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let Ok(message) = result else { return };
        let number = message
            .key()
            .and_then(|key| std::str::from_utf8(key).ok())
            .and_then(|key| key.strip_prefix(self.prefix.as_str()))
            .and_then(|n| n.parse().ok());
        if let (Some(n), Ok(mut numbers)) = (number, self.numbers.lock()) {
            numbers.push(n);
        }
    }
}

/// How long and how much the native producer sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NativeRun {
    /// The record value.
    pub payload: Payload,
    /// Longest time spent sending.
    pub duration: Duration,
    /// Most records sent: a fast broker keeps them all, in memory for Tansu.
    pub max_records: u64,
}

/// The native producers' settings: idempotent, `acks=all` and lz4, as ponte
/// produces, with the given linger.
fn native_config(brokers: &str, linger_ms: u64) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", linger_ms.to_string());
    config
}

/// Records sent by `senders` clients that each wait for Kafka's acknowledgement
/// of one record before sending the next, for `limits.duration` (or until
/// `limits.max_records`), with ponte's producer settings (idempotent,
/// `acks=all`, lz4, `linger.ms=1`): the native counterpart of ponte's
/// closed-loop run with as many HTTP clients.
pub async fn native_senders(
    brokers: &str,
    topic: &str,
    run: &str,
    limits: NativeRun,
    senders: usize,
) -> Result<NativeRate, KafkaError> {
    // ponte's own linger, so that both wait the same for a batch to leave.
    let linger_ms = crate::config::Settings::default().kafka_linger_ms;
    let producer: FutureProducer = native_config(brokers, linger_ms).create()?;
    let shared = ClosedLoop {
        producer,
        topic: topic.to_owned(),
        run: run.to_owned(),
        value: limits.payload.value(),
        issued: AtomicU64::new(0),
        limits,
        started: Instant::now(),
    };

    let acknowledged: Vec<Vec<u64>> =
        futures_util::future::try_join_all((0..senders).map(|_| shared.sender())).await?;
    let seconds = shared.started.elapsed().as_secs_f64();
    let numbers: Vec<u64> = acknowledged.into_iter().flatten().collect();
    Ok(NativeRate {
        acknowledged: numbers.len() as u64,
        issued: shared.issued.load(Ordering::Relaxed),
        seconds,
        per_second: numbers.len() as f64 / seconds,
        acknowledged_numbers: numbers,
    })
}

/// What the closed-loop senders share.
struct ClosedLoop {
    producer: FutureProducer,
    topic: String,
    run: String,
    value: std::sync::Arc<str>,
    issued: AtomicU64,
    limits: NativeRun,
    started: Instant,
}

impl ClosedLoop {
    /// One client: send, wait for the acknowledgement, repeat. Returns the
    /// numbers of its acknowledged records.
    async fn sender(&self) -> Result<Vec<u64>, KafkaError> {
        let mut acknowledged = Vec::new();
        while self.started.elapsed() < self.limits.duration {
            let number = self.issued.fetch_add(1, Ordering::Relaxed);
            if number >= self.limits.max_records {
                self.issued.fetch_sub(1, Ordering::Relaxed);
                break;
            }
            let key = record_key(&self.run, number);
            let record = FutureRecord::to(&self.topic)
                .key(&key)
                .payload(self.value.as_bytes());
            self.producer
                .send(record, SEND_PATIENCE)
                .await
                .map_err(|(err, _)| err)?;
            acknowledged.push(number);
        }
        Ok(acknowledged)
    }
}

/// Sends records keyed `bench-<run>-<n>` to `topic` as fast as an idempotent
/// producer with `acks=all` takes them (lz4, `linger.ms=5`), until `limits` says
/// stop; then waits for every acknowledgement. Blocking: run it on a thread of
/// its own.
pub fn native_producer(
    brokers: &str,
    topic: &str,
    run: &str,
    limits: NativeRun,
) -> Result<NativeRate, KafkaError> {
    let context = Acknowledgements {
        prefix: super::payload::key_prefix(run),
        numbers: Mutex::new(Vec::new()),
    };
    let producer: BaseProducer<Acknowledgements> =
        native_config(brokers, PIPELINE_LINGER_MS).create_with_context(context)?;
    let value = limits.payload.value();

    let started = Instant::now();
    let mut issued = 0;
    while started.elapsed() < limits.duration && issued < limits.max_records {
        let key = record_key(run, issued);
        let mut record = BaseRecord::to(topic).key(&key).payload(value.as_bytes());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
                Err((err, _)) => return Err(err),
            }
        }
        issued += 1;
        producer.poll(Duration::ZERO);
    }
    producer.flush(FLUSH_PATIENCE)?;
    let seconds = started.elapsed().as_secs_f64();

    let numbers = producer
        .context()
        .numbers
        .lock()
        .map(|mut n| std::mem::take(&mut *n))
        .unwrap_or_default();
    Ok(NativeRate {
        acknowledged: numbers.len() as u64,
        issued,
        seconds,
        per_second: numbers.len() as f64 / seconds,
        acknowledged_numbers: numbers,
    })
}
