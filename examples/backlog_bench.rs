//! Benchmark: a backlog of a million records while Kafka is down, then the drain.
//!
//! Fills an outbox with `BACKLOG` pending records (the Protheus invoice fixture),
//! starts the release `ponte` binary against librdkafka's mock cluster with its
//! broker down, samples ponte's resident memory, then brings the broker up and
//! measures how fast the backlog drains. Run it with `scripts/bench-backlog`.

// A benchmark reports on the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

mod support;

use ponte::outbox::sqlite::SqliteStore;
use ponte::outbox::{Append, Store};
use ponte::record::Record;
use rdkafka::mocking::MockCluster;

const BACKLOG: usize = 1_000_000;
const BATCH: usize = 10_000;
const DOWN_FOR: Duration = Duration::from_secs(20);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backlog: usize = std::env::var("BACKLOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(BACKLOG);
    let dir = tempfile::tempdir()?;
    let invoice = include_str!("../tests/fixtures/nota-fiscal.json");
    let value: serde_json::Value = serde_json::from_str(invoice)?;
    let data = value["data"].to_string();

    let filled = Instant::now();
    fill(&dir.path().join("outbox.db"), backlog, &data)?;
    println!(
        "filled {backlog} records ({} bytes each) in {:.1?}",
        data.len(),
        filled.elapsed()
    );

    let cluster = MockCluster::new(1)?;
    cluster.broker_down(1)?;
    let port = support::free_port()?;
    let mut ponte = support::start_ponte(dir.path(), &cluster.bootstrap_servers(), port)?;

    let runtime = tokio::runtime::Runtime::new()?;
    let down_peak = sample_rss(&ponte, DOWN_FOR);
    cluster.broker_up(1)?;
    let started = Instant::now();
    let (drain_peak, drained) = runtime.block_on(wait_drained(&ponte, port))?;
    let elapsed = started.elapsed();
    let _ = ponte.kill();

    println!("| measure | value |");
    println!("|---|---|");
    println!("| backlog | {backlog} records of {} bytes |", data.len());
    println!(
        "| peak resident memory, Kafka down {DOWN_FOR:?} | {:.1} MiB |",
        mib(down_peak)
    );
    println!(
        "| peak resident memory while draining | {:.1} MiB |",
        mib(drain_peak)
    );
    println!("| drained | {drained} |");
    println!("| drain time | {elapsed:.1?} |");
    println!(
        "| drain rate | {:.0} records/s |",
        backlog as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

fn fill(path: &Path, count: usize, data: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut store = SqliteStore::open(path)?;
    let mut n = 0;
    while n < count {
        let records: Vec<Record> = (n..(n + BATCH).min(count))
            .map(|i| {
                let key = format!("NF-{:06}", i % 1000);
                Record::arriving(
                    "backlog".to_owned(),
                    Some(key.into_bytes()),
                    Some(data.into()),
                )
            })
            .collect();
        let appends: Vec<Append<'_>> = records
            .iter()
            .map(|record| Append {
                record,
                idempotency: None,
            })
            .collect();
        store.commit(&appends, &[])?;
        n += records.len();
    }
    Ok(())
}

/// Peak resident memory of `child` over `window`, sampled every 100 ms.
fn sample_rss(child: &Child, window: Duration) -> u64 {
    let until = Instant::now() + window;
    let mut peak = 0;
    while Instant::now() < until {
        peak = peak.max(support::rss_bytes(child.id()));
        std::thread::sleep(Duration::from_millis(100));
    }
    peak
}

/// Waits until `/health` reports no pending record; returns the peak memory seen.
async fn wait_drained(child: &Child, port: u16) -> Result<(u64, bool), reqwest::Error> {
    let url = format!("http://127.0.0.1:{port}/health");
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(1800);
    while Instant::now() < deadline {
        peak = peak.max(support::rss_bytes(child.id()));
        if let Ok(response) = reqwest::get(&url).await {
            let health: serde_json::Value = response.json().await?;
            if health["outbox"]["pending"] == 0 && health["outbox"]["enabled"] == true {
                return Ok((peak, true));
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok((peak, false))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
