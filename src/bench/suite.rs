//! The full benchmark behind `docs/benchmarks.md`: the limits, ponte's startup,
//! every scenario against one running ponte, and a backlog drain, each verified
//! by reading the topic back.

pub mod plan;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::broker::Cluster;
use super::console::{Progress, say};
use super::limits::{self, FsyncRate, NativeRate, NativeRun};
use super::load::{self, Endpoint};
use super::machine::Machine;
use super::payload::{Payload, key_prefix};
use super::target::{Memory, Running, free_port};
use super::verify::{Tally, Verdict};
use super::{Api, BenchError, Pace, RunResult, Scenario, report, run_scenario, verify};
use crate::kafka::dev::DevKafka;

pub use plan::Plan;

/// How long ponte may take to become ready before the suite gives up.
const READY_PATIENCE: Duration = Duration::from_secs(30);

/// How long a backlog may take to drain before the suite gives up.
const BACKLOG_PATIENCE: Duration = Duration::from_secs(1200);

/// Clients that fill the backlog.
const BACKLOG_CLIENTS: usize = 64;

/// What to run and where.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// The `ponte` binary under test (a release build).
    pub ponte_bin: PathBuf,
    /// The broker; `None` starts librdkafka's mock cluster in this process.
    pub brokers: Option<String>,
    /// How the report names the broker.
    pub broker_label: String,
    /// Where the outboxes go: their file system is the one measured.
    pub work_dir: PathBuf,
    /// The scenarios, durations and backlog size.
    pub plan: Plan,
    /// The source revision, for the report.
    pub revision: String,
}

/// Everything the suite measured, as the report shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteResults {
    /// When the suite ran (RFC 3339, UTC).
    pub generated_at: String,
    /// `full` or `quick`.
    pub mode: String,
    /// The plan's durations and sizes, in words.
    #[serde(default)]
    pub parameters: String,
    /// The source revision.
    pub revision: String,
    /// The machine.
    pub machine: Machine,
    /// The broker.
    pub broker: String,
    /// The disk's fsync rate.
    pub fsync: Option<FsyncRate>,
    /// The native producer's rate into the same broker, as fast as it takes
    /// records, and its verification.
    pub native: Option<NativeResult>,
    /// The native producer's rate with as many senders as ponte's headline run
    /// has clients, each waiting for its acknowledgement, and its verification.
    #[serde(default)]
    pub native_senders: Option<NativeResult>,
    /// Spawn to first `200` from `/health/ready`, with an empty outbox, in ms.
    pub startup_ms: Vec<f64>,
    /// The load runs.
    pub runs: Vec<RunResult>,
    /// ponte's memory after all the load runs.
    pub memory: Option<Memory>,
    /// The backlog drain.
    pub backlog: Option<BacklogResult>,
}

/// The native producer's run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NativeResult {
    /// Its rate.
    pub rate: NativeRate,
    /// What reading its topic back found.
    pub verdict: Option<Verdict>,
    /// Why its topic could not be read back, if it could not.
    pub verify_error: Option<String>,
}

/// Filling an outbox while Kafka is unreachable, then draining it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BacklogResult {
    /// Records stored (answered `202`) while Kafka was unreachable.
    pub records: u64,
    /// Seconds the filling took.
    pub fill_seconds: f64,
    /// Seconds from starting ponte against the broker until nothing was unsent.
    pub drain_seconds: Option<f64>,
    /// Drained records per second.
    pub per_second: Option<f64>,
    /// The draining ponte's memory once drained.
    pub memory: Memory,
    /// What reading the topic back found.
    pub verdict: Option<Verdict>,
    /// Why the topic could not be read back, if it could not.
    pub verify_error: Option<String>,
}

/// Runs the whole suite.
pub async fn run(options: &SuiteOptions) -> Result<SuiteResults, BenchError> {
    // Held until the suite ends: dropping it stops the mock cluster.
    let dev = options
        .brokers
        .is_none()
        .then(DevKafka::start)
        .transpose()?;
    let cluster = match (&dev, &options.brokers) {
        (Some(dev), _) => Cluster {
            bootstrap: dev.bootstrap_servers(),
            creates_topics_on_use: true,
        },
        (None, brokers) => Cluster::at(brokers.as_deref().unwrap_or_default()),
    };
    let work = tempfile::Builder::new()
        .prefix("ponte-bench-")
        .tempdir_in(&options.work_dir)
        .map_err(BenchError::io("creating the work directory"))?;
    let stamp = format!("{:x}", unix_seconds());
    let plan = &options.plan;

    let mut results = SuiteResults {
        generated_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        mode: plan.mode.to_owned(),
        parameters: plan.describe(),
        revision: options.revision.clone(),
        machine: Machine::describe(work.path()),
        broker: options.broker_label.clone(),
        fsync: None,
        native: None,
        native_senders: None,
        startup_ms: Vec::new(),
        runs: Vec::new(),
        memory: None,
        backlog: None,
    };
    results.fsync = Some(measure_fsync(work.path(), plan.fsync_probe).await?);
    results.native = Some(measure_native(&cluster, &stamp, plan.native_run, None).await?);
    let senders = Some(plan.native_senders);
    results.native_senders =
        Some(measure_native(&cluster, &stamp, plan.native_run, senders).await?);
    results.startup_ms = time_startups(options, &cluster.bootstrap, work.path()).await?;
    let (runs, memory) = run_scenarios(options, &cluster, work.path(), &stamp).await?;
    results.runs = runs;
    results.memory = Some(memory);
    results.backlog = Some(drain_backlog(options, &cluster, work.path(), &stamp).await?);
    Ok(results)
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

async fn measure_fsync(dir: &Path, length: Duration) -> Result<FsyncRate, BenchError> {
    say(&format!(
        "fsync probe: {:.0} s in {}",
        length.as_secs_f64(),
        dir.display()
    ));
    let dir = dir.to_owned();
    let rate = tokio::task::spawn_blocking(move || limits::fsync_rate(&dir, length))
        .await
        .map_err(|err| BenchError::io("fsync probe")(std::io::Error::other(err)))?
        .map_err(BenchError::io("fsync probe"))?;
    say(&format!("  {:.0} fsyncs/s", rate.per_second));
    Ok(rate)
}

/// The native producer: as fast as it takes records (`senders` is `None`), or
/// with that many senders that each wait for their acknowledgement.
async fn measure_native(
    cluster: &Cluster,
    stamp: &str,
    limit: NativeRun,
    senders: Option<usize>,
) -> Result<NativeResult, BenchError> {
    let run = match senders {
        None => format!("{stamp}-native"),
        Some(n) => format!("{stamp}-native{n}"),
    };
    let topic = format!("bench-{run}");
    let how = senders.map_or_else(
        || "as fast as it takes them".to_owned(),
        |n| format!("{n} senders, each waiting for its acknowledgement"),
    );
    say(&format!(
        "native producer ({how}): up to {:.0} s or {} records into {topic}",
        limit.duration.as_secs_f64(),
        report::thousands(limit.max_records as f64)
    ));
    cluster.prepare_topic(&topic).await?;
    let rate = match senders {
        Some(n) => limits::native_senders(&cluster.bootstrap, &topic, &run, limit, n).await?,
        None => {
            let (b, t, r) = (cluster.bootstrap.clone(), topic.clone(), run.clone());
            tokio::task::spawn_blocking(move || limits::native_producer(&b, &t, &r, limit))
                .await
                .map_err(|err| BenchError::io("native producer")(std::io::Error::other(err)))??
        }
    };

    let tally = Tally::new(key_prefix(&run), rate.issued, &rate.acknowledged_numbers);
    let verified = verify(&cluster.bootstrap, &topic, tally).await;
    say(&format!(
        "  {:.0} records/s, {}",
        rate.per_second,
        report::verified(&verified)
    ));
    Ok(NativeResult {
        rate,
        verdict: verified.as_ref().ok().copied(),
        verify_error: verified.err(),
    })
}

/// Spawn to first `200` from `/health/ready`, each with a new empty outbox.
async fn time_startups(
    options: &SuiteOptions,
    brokers: &str,
    work: &Path,
) -> Result<Vec<f64>, BenchError> {
    let mut times = Vec::new();
    for n in 0..options.plan.startups {
        let spawned = Instant::now();
        let ponte = Running::start(
            &options.ponte_bin,
            brokers,
            &work.join(format!("startup-{n}")),
        )?;
        let ready = ponte.probe().wait_ready(spawned, READY_PATIENCE).await;
        let ready = ready.ok_or_else(|| ponte.not_ready(READY_PATIENCE))?;
        times.push(ready.as_secs_f64() * 1000.0);
    }
    say(&format!("startup to ready: {times:.0?} ms"));
    Ok(times)
}

/// Every load scenario against one ponte; its memory afterwards.
async fn run_scenarios(
    options: &SuiteOptions,
    cluster: &Cluster,
    work: &Path,
    stamp: &str,
) -> Result<(Vec<RunResult>, Memory), BenchError> {
    let ponte = Running::start(&options.ponte_bin, &cluster.bootstrap, &work.join("serve"))?;
    let probe = ponte.probe();
    probe
        .wait_ready(Instant::now(), READY_PATIENCE)
        .await
        .ok_or_else(|| ponte.not_ready(READY_PATIENCE))?;

    let mut runs = Vec::new();
    for (n, scenario) in options.plan.scenarios.iter().enumerate() {
        let run = format!("{stamp}-{n}");
        let endpoint = Endpoint {
            base_url: ponte.base_url.clone(),
            topic: format!("bench-{run}"),
            api_key: None,
        };
        let result = run_scenario(&endpoint, cluster, scenario, &run).await?;
        say(&report::summary_line(&result));
        runs.push(result);
    }
    Ok((runs, ponte.memory()))
}

/// Fills an outbox through ponte while its broker is unreachable, then starts
/// ponte against the broker and times the drain.
async fn drain_backlog(
    options: &SuiteOptions,
    cluster: &Cluster,
    work: &Path,
    stamp: &str,
) -> Result<BacklogResult, BenchError> {
    let records = options.plan.backlog;
    let run = format!("{stamp}-backlog");
    let topic = format!("bench-{run}");
    cluster.prepare_topic(&topic).await?;
    let dir = work.join("backlog");

    // Nothing listens on a port just found free: Kafka is unreachable.
    let nowhere = format!("127.0.0.1:{}", free_port()?);
    let filling = Running::start(&options.ponte_bin, &nowhere, &dir)?;
    let started = Instant::now();
    let endpoint = Endpoint {
        base_url: filling.base_url.clone(),
        topic: topic.clone(),
        api_key: None,
    };
    filling
        .probe()
        .wait_live(started, READY_PATIENCE)
        .await
        .ok_or_else(|| filling.not_ready(READY_PATIENCE))?;
    let fill = backlog_scenario(records);
    let progress = Progress::start("backlog fill (Kafka down)", fill.duration);
    let outcome = load::run(&endpoint, &fill, &run, &progress).await?;
    progress.finish();
    drop(filling);
    let stored = outcome.acknowledged.len() as u64;
    say(&format!(
        "backlog: {stored} records stored in {:.1} s while Kafka was unreachable",
        outcome.elapsed.as_secs_f64()
    ));

    let spawned = Instant::now();
    let draining = Running::start(&options.ponte_bin, &cluster.bootstrap, &dir)?;
    let drained = draining.probe().wait_drained(BACKLOG_PATIENCE).await;
    let drain_seconds = drained.map(|_| spawned.elapsed().as_secs_f64());
    let memory = draining.memory();
    drop(draining);

    let tally = Tally::new(key_prefix(&run), outcome.issued, &outcome.acknowledged);
    let verified = verify(&cluster.bootstrap, &topic, tally).await;
    let result = BacklogResult {
        records: stored,
        fill_seconds: outcome.elapsed.as_secs_f64(),
        drain_seconds,
        per_second: drain_seconds.map(|s| stored as f64 / s),
        memory,
        verdict: verified.as_ref().ok().copied(),
        verify_error: verified.err(),
    };
    say(&report::backlog_line(&result));
    Ok(result)
}

/// Async requests from many clients until `records` are stored.
fn backlog_scenario(records: u64) -> Scenario {
    Scenario {
        name: "backlog fill".to_owned(),
        api: Api::Middleware,
        pace: Pace::Closed {
            concurrency: BACKLOG_CLIENTS,
        },
        duration: Duration::from_secs(1800),
        payload: Payload::Invoice,
        respond_async: true,
        idempotency: false,
        records: Some(records),
    }
}
