//! `ponte bench`: the load generator, the limits and the report's suite, on the
//! command line. The measuring is in [`crate::bench`]; this prints and writes.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};

use crate::bench::broker::Cluster;
use crate::bench::limits::{NativeRate, NativeRun};
use crate::bench::load::Endpoint;
use crate::bench::payload::{Payload, key_prefix};
use crate::bench::suite::{self, Plan, SuiteOptions};
use crate::bench::verify::Tally;
use crate::bench::{self, Api, Pace, Scenario, limits, plot, report};

/// What to measure.
#[derive(Debug, Subcommand)]
pub(super) enum BenchCommand {
    /// One load run against a running ponte, verified by reading the topic back.
    Load(LoadArgs),
    /// The disk's fsync rate and a native producer's rate into the broker.
    Limits(LimitsArgs),
    /// Everything in docs/benchmarks.md, then writes it: limits, startup, every
    /// scenario, a backlog drain. Used by scripts/bench.
    Suite(SuiteArgs),
    /// Writes docs/benchmarks.md and its plots again from a suite's results.json.
    Report {
        /// The raw results a suite wrote.
        #[arg(long, default_value = "docs/benchmarks/results.json")]
        results: PathBuf,
        /// Where to write the report.
        #[arg(long, default_value = "docs/benchmarks.md")]
        report: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ApiName {
    /// `{"key", "data"}`, one record per request.
    Middleware,
    /// Confluent REST Proxy v2 JSON batches of `--batch` records.
    RestProxy,
}

#[derive(Debug, Args)]
pub(super) struct LoadArgs {
    /// ponte's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    url: String,
    /// The broker ponte writes to, read back to verify the run.
    #[arg(long, env = "KAFKA_BROKERS")]
    brokers: String,
    /// The topic (created if missing).
    #[arg(long, default_value = "bench")]
    topic: String,
    /// Closed loop: this many clients, each waiting for its answer.
    #[arg(long, conflicts_with = "rate", default_value_t = 64)]
    concurrency: usize,
    /// Open loop: this many requests per second, answered or not.
    #[arg(long)]
    rate: Option<f64>,
    /// How long to send, such as `10s` or `2m`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    duration: Duration,
    /// `invoice` (tests/fixtures/nota-fiscal.json) or a size: 200B, 2KB, 100KB.
    #[arg(long, default_value = "invoice")]
    payload: Payload,
    /// Which produce API.
    #[arg(long, value_enum, default_value = "middleware")]
    api: ApiName,
    /// Records per REST Proxy request.
    #[arg(long, default_value_t = 10)]
    batch: u64,
    /// Ask for `202` once stored (`Prefer: respond-async`) instead of waiting for Kafka.
    #[arg(long = "async")]
    respond_async: bool,
    /// Send an `Idempotency-Key` with every request.
    #[arg(long)]
    idempotency: bool,
    /// An API key with the produce and read scopes, if ponte needs one.
    #[arg(long, env = "PONTE_BENCH_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(super) struct LimitsArgs {
    /// Where to probe the fsync rate: the outbox's directory.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// The broker for the native producer.
    #[arg(long, env = "KAFKA_BROKERS")]
    brokers: String,
    /// The native producer's topic (created if missing).
    #[arg(long, default_value = "bench-native")]
    topic: String,
    /// How long each measurement runs.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    duration: Duration,
    /// The record value.
    #[arg(long, default_value = "invoice")]
    payload: Payload,
    /// Most records the native producer sends (a fast broker keeps them all).
    #[arg(long, default_value_t = 2_000_000)]
    max_records: u64,
    /// Also measure this many native senders that each wait for a record's
    /// acknowledgement before sending the next (0: don't).
    #[arg(long, default_value_t = 64)]
    senders: usize,
}

#[derive(Debug, Args)]
pub(super) struct SuiteArgs {
    /// The ponte binary to measure (default: this one).
    #[arg(long)]
    ponte_bin: Option<PathBuf>,
    /// The broker; without it, librdkafka's mock cluster runs in this process.
    #[arg(long)]
    brokers: Option<String>,
    /// How the report names the broker.
    #[arg(long)]
    broker_label: Option<String>,
    /// Where the outboxes go (their file system is the one measured).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    work_dir: PathBuf,
    /// A short smoke run instead of the full one.
    #[arg(long, env = "BENCH_QUICK", value_parser = clap::builder::BoolishValueParser::new())]
    quick: bool,
    /// Also run REST Proxy batches (`BENCH_REST_PROXY=0` leaves them out).
    #[arg(
        long,
        env = "BENCH_REST_PROXY",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    rest_proxy: bool,
    /// Records in the backlog to drain (default: 1,000,000; quick: 20,000).
    #[arg(long, env = "BENCH_BACKLOG")]
    backlog: Option<u64>,
    /// The source revision, for the report.
    #[arg(long, default_value = "unknown")]
    revision: String,
    /// Where to write the report.
    #[arg(long, default_value = "docs/benchmarks.md")]
    report: PathBuf,
}

/// Runs one `ponte bench` command.
pub(super) fn run(command: BenchCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match command {
        BenchCommand::Load(args) => runtime.block_on(load(&args)),
        BenchCommand::Limits(args) => runtime.block_on(measure_limits(&args)),
        BenchCommand::Suite(args) => runtime.block_on(run_suite(args)),
        BenchCommand::Report { results, report } => {
            let text = std::fs::read_to_string(&results)
                .with_context(|| format!("cannot read {}", results.display()))?;
            let results = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a suite's results", results.display()))?;
            write_report(&results, &report)
        }
    }
}

async fn load(args: &LoadArgs) -> anyhow::Result<()> {
    let api = match args.api {
        ApiName::Middleware => Api::Middleware,
        ApiName::RestProxy => Api::RestProxy { batch: args.batch },
    };
    let pace = match args.rate {
        Some(rate) => Pace::Open { rate },
        None => Pace::Closed {
            concurrency: args.concurrency,
        },
    };
    let scenario = Scenario {
        name: format!("{pace}, {}", args.payload),
        api,
        pace,
        duration: args.duration,
        payload: args.payload,
        respond_async: args.respond_async,
        idempotency: args.idempotency,
        records: None,
    };
    let endpoint = Endpoint {
        base_url: args.url.trim_end_matches('/').to_owned(),
        topic: args.topic.clone(),
        api_key: args.api_key.clone(),
    };
    let run = format!("{:x}", unix_seconds());
    let cluster = Cluster::at(&args.brokers);
    let result = bench::run_scenario(&endpoint, &cluster, &scenario, &run).await?;

    if args.json {
        out!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        out!("{}", report::summary_line(&result));
    }
    anyhow::ensure!(result.passed(), "the run failed its checks");
    Ok(())
}

async fn measure_limits(args: &LimitsArgs) -> anyhow::Result<()> {
    let (dir, duration) = (args.dir.clone(), args.duration);
    let fsync = tokio::task::spawn_blocking(move || limits::fsync_rate(&dir, duration))
        .await?
        .context("fsync probe")?;
    out!(
        "fsync: {} per second ({})",
        report::thousands(fsync.per_second),
        args.dir.display()
    );

    bench::broker::ensure_topic(&args.brokers, &args.topic).await?;
    let limit = NativeRun {
        payload: args.payload,
        duration,
        max_records: args.max_records,
    };
    let run = format!("{:x}-native", unix_seconds());
    let (brokers, topic, worker_run) = (args.brokers.clone(), args.topic.clone(), run.clone());
    let native = tokio::task::spawn_blocking(move || {
        limits::native_producer(&brokers, &topic, &worker_run, limit)
    })
    .await??;
    report_native(args, "as fast as it takes them", &run, &native).await;

    if args.senders > 0 {
        let run = format!("{:x}-native{}", unix_seconds(), args.senders);
        let native =
            limits::native_senders(&args.brokers, &args.topic, &run, limit, args.senders).await?;
        let how = format!(
            "{} senders, each waiting for its acknowledgement",
            args.senders
        );
        report_native(args, &how, &run, &native).await;
    }
    Ok(())
}

/// Prints a native producer's rate and what reading its records back found.
async fn report_native(args: &LimitsArgs, how: &str, run: &str, native: &NativeRate) {
    let tally = Tally::new(key_prefix(run), native.issued, &native.acknowledged_numbers);
    let verdict = bench::verify(&args.brokers, &args.topic, tally).await;
    out!(
        "native producer ({how}): {} records/s ({})",
        report::thousands(native.per_second),
        report::verified(&verdict)
    );
}

async fn run_suite(args: SuiteArgs) -> anyhow::Result<()> {
    let mut plan = if args.quick {
        Plan::quick(args.rest_proxy)
    } else {
        Plan::full(args.rest_proxy)
    };
    plan.backlog = args.backlog.unwrap_or(plan.backlog);
    let ponte_bin = match args.ponte_bin {
        Some(path) => path,
        None => std::env::current_exe().context("cannot find this program's path")?,
    };
    let broker_label = args.broker_label.unwrap_or_else(|| match &args.brokers {
        Some(brokers) => format!("Kafka at {brokers}"),
        None => "librdkafka's mock cluster, in the load generator's process \
                 (it ignores acks: not a real broker)"
            .to_owned(),
    });
    let options = SuiteOptions {
        ponte_bin,
        brokers: args.brokers,
        broker_label,
        work_dir: args.work_dir,
        plan,
        revision: args.revision,
    };
    let results = suite::run(&options).await?;
    write_report(&results, &args.report)
}

/// Writes the report, its plots and the raw results beside it: `docs/benchmarks.md`
/// gets `docs/benchmarks/{throughput,latency}.svg` and `results.json`.
fn write_report(results: &suite::SuiteResults, path: &std::path::Path) -> anyhow::Result<()> {
    let stem = path.file_stem().context("the report needs a file name")?;
    let plots = path.with_file_name(stem);
    std::fs::create_dir_all(&plots)
        .with_context(|| format!("cannot create {}", plots.display()))?;
    plot::throughput(&results.runs, &plots.join("throughput.svg"))
        .map_err(|err| anyhow::anyhow!("throughput plot: {err}"))?;
    plot::latency(&results.runs, &plots.join("latency.svg"))
        .map_err(|err| anyhow::anyhow!("latency plot: {err}"))?;
    let json = serde_json::to_string_pretty(results)?;
    std::fs::write(plots.join("results.json"), json + "\n")?;

    let relative = stem.to_string_lossy();
    let mut text = report::markdown(results, &relative);
    // What was profiled and changed is written by people, beside the results.
    let notes = plots.join("notes.md");
    if let Ok(notes) = std::fs::read_to_string(&notes) {
        text = report::with_notes(&text, &notes);
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    out!("wrote {} and {}/", path.display(), plots.display());
    for check in report::checks(results) {
        let result = match check.met {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "not measured",
        };
        out!("  {result:<12} {}: {}", check.target, check.measured);
    }
    Ok(())
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
