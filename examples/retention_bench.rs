//! Benchmark: ingestion latency and file size while retention purges old rows.
//!
//! Fills an outbox with `OLD_ROWS` `sent` rows acknowledged long ago, starts the
//! release `ponte` binary against librdkafka's mock cluster, and posts records at
//! a fixed rate while retention deletes the old rows. Prints, per window, the
//! request latency percentiles, the rows left and the file size, so that one can
//! see whether latency stays flat during the purge and the file stops growing.
//! Run it with `scripts/bench-retention`.

// A benchmark reports on the terminal.
#![allow(clippy::print_stdout)]

use std::path::Path;

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
mod support;

use ponte::outbox::sqlite::SqliteStore;
use rdkafka::mocking::MockCluster;

const OLD_ROWS: u64 = 1_000_000;
const RATE_PER_SECOND: u64 = 200;
const WINDOW: Duration = Duration::from_secs(10);
const WINDOWS: u32 = 12;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let old_rows = std::env::var("OLD_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(OLD_ROWS);
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("outbox.db");
    let filled = Instant::now();
    fill_old_rows(&db, old_rows)?;
    println!(
        "filled {old_rows} old sent rows in {:.1?}",
        filled.elapsed()
    );

    let cluster = MockCluster::new(1)?;
    let port = support::free_port()?;
    let mut ponte = support::start_ponte(dir.path(), &cluster.bootstrap_servers(), port)?;
    std::thread::sleep(Duration::from_millis(500));

    let runtime = tokio::runtime::Runtime::new()?;
    println!("| window | requests | p50 ms | p99 ms | max ms | old rows left | file MiB |");
    println!("|---|---|---|---|---|---|---|");
    let url = format!("http://127.0.0.1:{port}/topics/retention");
    let client = reqwest::Client::new();
    for window in 1..=WINDOWS {
        let latencies = runtime.block_on(load(&client, &url, WINDOW))?;
        let left = rows_left(&db)?;
        println!(
            "| {window} | {} | {:.2} | {:.2} | {:.2} | {left} | {:.1} |",
            latencies.len(),
            latencies.value_at_quantile(0.5) as f64 / 1000.0,
            latencies.value_at_quantile(0.99) as f64 / 1000.0,
            latencies.max() as f64 / 1000.0,
            support::file_mib(&db),
        );
    }
    let _ = ponte.kill();
    Ok(())
}

/// Inserts `count` rows acknowledged 30 days ago, as a long-running outbox has.
fn fill_old_rows(path: &Path, count: u64) -> Result<(), Box<dyn std::error::Error>> {
    drop(SqliteStore::open(path)?);
    let connection = rusqlite::Connection::open(path)?;
    let month_ago = ponte::record::now_ms() - 30 * 86_400_000;
    connection.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO outbox (message_id, topic, key, value, timestamp, status, retry_count,
                             created_at, sent_at, kafka_offset, kafka_partition)
         SELECT 'old-' || i, 'retention', 'k' || (i % 100),
                printf('{\"n\":%d,\"pad\":\"%.200c\"}', i, 'x'),
                ?2, 'sent', 0, ?2, ?2, i, 0
         FROM n",
        rusqlite::params![i64::try_from(count)?, month_ago],
    )?;
    Ok(())
}

/// Posts at `RATE_PER_SECOND` for `window`, one request started per tick whether
/// or not earlier ones finished (open loop); returns latencies in microseconds.
async fn load(
    client: &reqwest::Client,
    url: &str,
    window: Duration,
) -> Result<Histogram<u64>, Box<dyn std::error::Error>> {
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / RATE_PER_SECOND as u32);
    let until = Instant::now() + window;
    let mut requests = Vec::new();
    while Instant::now() < until {
        ticker.tick().await;
        let request = client
            .post(url)
            .header("content-type", "application/json")
            .body(r#"{"key":"k","data":{"valor":1500.00}}"#)
            .send();
        requests.push(tokio::spawn(async move {
            let started = Instant::now();
            request.await.map(|_| started.elapsed())
        }));
    }
    let mut latencies = Histogram::<u64>::new(3)?;
    for request in requests {
        if let Ok(Ok(elapsed)) = request.await {
            latencies.record(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))?;
        }
    }
    Ok(latencies)
}

fn rows_left(path: &Path) -> rusqlite::Result<i64> {
    let connection = rusqlite::Connection::open(path)?;
    connection.query_row(
        "SELECT count(*) FROM outbox WHERE message_id LIKE 'old-%'",
        [],
        |r| r.get(0),
    )
}
