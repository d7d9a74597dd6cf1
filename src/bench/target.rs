//! The ponte under test, seen from outside: started as a child process, asked
//! whether it is ready and whether its outbox has drained, its commit counters
//! read from its Prometheus metrics and its memory from `/proc`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::BenchError;
use crate::telemetry::process_memory;

/// How often readiness and the outbox's depth are polled.
const POLL: Duration = Duration::from_millis(2);

/// What ponte's group commits did: how many, holding how many new records.
// TODO(bench): ponte_outbox_commit_records also counts the commits that only
// record Kafka's acknowledgements (as 0 records), so at low load records per
// commit reads below 1; a histogram of commits that append records would show
// the batching of requests alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CommitTotals {
    /// Group commits (each one fsync), counting those that only recorded Kafka's
    /// acknowledgements.
    pub commits: f64,
    /// New records written by them.
    pub records: f64,
}

impl CommitTotals {
    /// What happened between `self` and `later`.
    pub fn until(self, later: CommitTotals) -> CommitTotals {
        CommitTotals {
            commits: later.commits - self.commits,
            records: later.records - self.records,
        }
    }

    /// New records per commit; `None` without commits.
    pub fn records_per_commit(self) -> Option<f64> {
        (self.commits > 0.0).then(|| self.records / self.commits)
    }

    /// Reads the totals of `ponte_outbox_commit_records` from Prometheus text.
    pub fn from_prometheus(text: &str) -> Option<CommitTotals> {
        Some(CommitTotals {
            commits: sample(text, "ponte_outbox_commit_records_count")?,
            records: sample(text, "ponte_outbox_commit_records_sum")?,
        })
    }
}

/// The value of the unlabelled sample `name` in Prometheus text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
}

/// Peak and current resident memory of a process, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// `VmHWM`: the most it was resident at any time.
    pub peak_bytes: u64,
    /// `VmRSS`: resident now.
    pub current_bytes: u64,
}

impl Memory {
    /// Process `pid`'s memory, from `/proc/<pid>/status`.
    pub fn of(pid: u32) -> Memory {
        let pid = pid.to_string();
        Memory {
            peak_bytes: process_memory(&pid, "VmHWM"),
            current_bytes: process_memory(&pid, "VmRSS"),
        }
    }
}

/// Starts `binary serve` on loopback `port` against `brokers`, with its outbox
/// at `outbox` and otherwise ponte's defaults; its log goes to `log`.
fn spawn(
    binary: &Path,
    brokers: &str,
    outbox: &Path,
    port: u16,
    log: &Path,
) -> std::io::Result<Child> {
    let log = std::fs::File::create(log)?;
    Command::new(binary)
        .arg("serve")
        .env_clear()
        .env("PORT", port.to_string())
        .env("PONTE_BIND_ADDRESS", "127.0.0.1")
        .env("KAFKA_BROKERS", brokers)
        .env("PONTE_OUTBOX_PATH", outbox)
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
}

/// A ponte child process, killed when dropped.
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// Its base URL, such as `http://127.0.0.1:40123`.
    pub base_url: String,
    log: PathBuf,
}

impl Running {
    /// Starts `binary` against `brokers` on a free port, with its outbox and its
    /// log in `dir`.
    pub fn start(binary: &Path, brokers: &str, dir: &Path) -> Result<Running, BenchError> {
        std::fs::create_dir_all(dir).map_err(BenchError::io("creating an outbox directory"))?;
        let port = free_port()?;
        let log = dir.join("ponte.log");
        let outbox = dir.join("outbox.db");
        let child = spawn(binary, brokers, &outbox, port, &log)
            .map_err(BenchError::io(format!("starting {}", binary.display())))?;
        Ok(Running {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            log,
        })
    }

    /// Probes for it, without an API key.
    pub fn probe(&self) -> Probe {
        Probe::new(&self.base_url, None)
    }

    /// Its memory now.
    pub fn memory(&self) -> Memory {
        Memory::of(self.child.id())
    }

    /// The error for not having become ready within `patience`.
    pub fn not_ready(&self, patience: Duration) -> BenchError {
        BenchError::NotReady(patience, self.log.display().to_string())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port on loopback that nothing listens on right now.
pub fn free_port() -> Result<u16, BenchError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(BenchError::io("finding a free port"))
}

/// HTTP probes of a running ponte.
#[derive(Debug, Clone)]
pub struct Probe {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
}

impl Probe {
    /// Probes for the ponte at `base_url`; `api_key` needs the `read` scope.
    pub fn new(base_url: &str, api_key: Option<String>) -> Probe {
        Probe {
            client: reqwest::Client::new(),
            base_url: base_url.to_owned(),
            api_key,
        }
    }

    /// Waits for the first `200` from `/health/ready`; the time since `since`,
    /// or `None` once `patience` has passed.
    pub async fn wait_ready(&self, since: Instant, patience: Duration) -> Option<Duration> {
        self.wait_for_200("/health/ready", since, patience).await
    }

    /// Waits for the first `200` from `/health/live`: ponte serves requests,
    /// whether or not Kafka is reachable.
    pub async fn wait_live(&self, since: Instant, patience: Duration) -> Option<Duration> {
        self.wait_for_200("/health/live", since, patience).await
    }

    async fn wait_for_200(
        &self,
        path: &str,
        since: Instant,
        patience: Duration,
    ) -> Option<Duration> {
        let url = format!("{}{path}", self.base_url);
        while since.elapsed() < patience {
            let answer = self.client.get(&url).send().await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                return Some(since.elapsed());
            }
            tokio::time::sleep(POLL).await;
        }
        None
    }

    /// Records in the outbox that Kafka has not acknowledged, from `/health`.
    pub async fn unsent(&self) -> Option<u64> {
        let url = format!("{}/health", self.base_url);
        let answer = self.client.get(&url).send().await.ok()?;
        let health: serde_json::Value = answer.json().await.ok()?;
        health["outbox"]["pending"].as_u64()
    }

    /// Waits until the outbox holds nothing unsent; the time it took, or `None`
    /// after `patience`.
    pub async fn wait_drained(&self, patience: Duration) -> Option<Duration> {
        let since = Instant::now();
        while since.elapsed() < patience {
            if self.unsent().await == Some(0) {
                return Some(since.elapsed());
            }
            tokio::time::sleep(POLL * 10).await;
        }
        None
    }

    /// The group commit totals so far; `None` if ponte does not export them.
    pub async fn commit_totals(&self) -> Option<CommitTotals> {
        let url = format!("{}/metrics/prometheus", self.base_url);
        let mut request = self.client.get(&url);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let text = request.send().await.ok()?.text().await.ok()?;
        CommitTotals::from_prometheus(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "\
# HELP ponte_outbox_commit_records Records written by one outbox group commit.
# TYPE ponte_outbox_commit_records histogram
ponte_outbox_commit_records_sum 5230.0
ponte_outbox_commit_records_count 412
ponte_outbox_commit_records_bucket{le=\"1.0\"} 100
ponte_outbox_commit_duration_seconds_count 412
";

    #[test]
    fn commit_totals_are_read_from_the_histogram_sum_and_count() {
        let totals = CommitTotals::from_prometheus(METRICS).expect("totals");
        assert_eq!(
            totals,
            CommitTotals {
                commits: 412.0,
                records: 5230.0
            }
        );
    }

    #[test]
    fn records_per_commit_is_taken_over_the_commits_between_two_readings() {
        let before = CommitTotals {
            commits: 100.0,
            records: 1000.0,
        };
        let after = CommitTotals {
            commits: 150.0,
            records: 3000.0,
        };
        assert_eq!(before.until(after).records_per_commit(), Some(40.0));
        assert_eq!(before.until(before).records_per_commit(), None);
    }

    #[test]
    fn metrics_without_commit_counts_give_nothing() {
        assert_eq!(CommitTotals::from_prometheus("ponte_ready 1\n"), None);
    }
}
