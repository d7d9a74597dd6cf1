//! `docs/benchmarks.md`: the machine, broker and settings, each target with its
//! measured value and verdict, the limits, every run's raw numbers and its ratio
//! to the limits, and the plots.

use std::fmt::Write as _;

use super::suite::{BacklogResult, SuiteResults};
use super::verify::Verdict;
use super::{Api, Pace, Payload, RunResult};

/// One target of the issue, checked against the measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What is measured.
    pub target: &'static str,
    /// The goal.
    pub goal: &'static str,
    /// What was measured.
    pub measured: String,
    /// `Some(true)` met, `Some(false)` missed, `None` not measured.
    pub met: Option<bool>,
}

/// Tolerated drop of records per commit from one offered rate to the next
/// higher one before "grows with load" is called missed: run-to-run noise.
const COMMIT_SIZE_NOISE: f64 = 0.9;

/// The headline run: 64 clients sending the invoice and waiting for Kafka.
fn headline(runs: &[RunResult]) -> Option<&RunResult> {
    runs.iter().find(|run| {
        plain_invoice(run, false) && run.scenario.pace == Pace::Closed { concurrency: 64 }
    })
}

/// The open-loop run at `rate` with the invoice.
fn open_at(runs: &[RunResult], rate: f64, respond_async: bool) -> Option<&RunResult> {
    runs.iter()
        .find(|run| plain_invoice(run, respond_async) && run.scenario.pace == Pace::Open { rate })
}

fn plain_invoice(run: &RunResult, respond_async: bool) -> bool {
    let s = &run.scenario;
    s.api == Api::Middleware
        && s.payload == Payload::Invoice
        && !s.idempotency
        && s.respond_async == respond_async
}

/// Every target, in the order.
pub fn checks(results: &SuiteResults) -> Vec<Check> {
    vec![
        check_headline(results),
        check_commit_growth(results),
        check_p99(results, false, 10.0),
        check_p99(results, true, 5.0),
        check_memory(results),
        check_startup(results),
        check_backlog(results),
        check_exactly_once(results),
    ]
}

fn check_headline(results: &SuiteResults) -> Check {
    let native = results.native.as_ref().map(|n| n.rate.per_second);
    let run = headline(&results.runs);
    let (measured, met) = match (run, native) {
        (Some(run), Some(native)) if native > 0.0 => {
            let ratio = run.records_per_second / native;
            let text = format!(
                "{} records/s = {} of {} (native)",
                thousands(run.records_per_second),
                percent(ratio),
                thousands(native)
            );
            (text, Some(ratio >= 0.5))
        }
        _ => ("not measured".to_owned(), None),
    };
    Check {
        target: "64 concurrent clients (invoice, sync)",
        goal: "≥ 50% of the native producer's rate",
        measured,
        met,
    }
}

fn check_commit_growth(results: &SuiteResults) -> Check {
    let sizes: Vec<(f64, f64)> = super::plot::open_loop(&results.runs, false)
        .into_iter()
        .filter_map(|(rate, run)| Some((rate, run.commits?.records_per_commit()?)))
        .collect();
    let grows = sizes.len() >= 2
        && sizes.last().map(|l| l.1) > sizes.first().map(|f| f.1)
        && sizes
            .windows(2)
            .all(|w| w[1].1 >= w[0].1 * COMMIT_SIZE_NOISE);
    let measured = sizes
        .iter()
        .map(|(rate, size)| format!("{size:.2} at {rate:.0}/s"))
        .collect::<Vec<_>>()
        .join(", ");
    Check {
        target: "records per outbox commit (open loop, sync)",
        goal: "grow with offered load",
        met: (sizes.len() >= 2).then_some(grows),
        measured: if sizes.is_empty() {
            "not measured (no ponte_outbox_commit_records metric)".to_owned()
        } else {
            measured
        },
    }
}

fn check_p99(results: &SuiteResults, respond_async: bool, limit_ms: f64) -> Check {
    let run = open_at(&results.runs, 1000.0, respond_async);
    Check {
        target: if respond_async {
            "p99 at 1,000 req/s offered, async (202)"
        } else {
            "p99 at 1,000 req/s offered, sync (200)"
        },
        goal: if respond_async { "< 5 ms" } else { "< 10 ms" },
        measured: run.map_or_else(
            || "not measured".to_owned(),
            |run| format!("{:.2} ms", run.latency_ms.p99),
        ),
        met: run.map(|run| run.latency_ms.p99 < limit_ms),
    }
}

fn check_memory(results: &SuiteResults) -> Check {
    let peaks = [
        results.memory.map(|m| m.peak_bytes),
        results.backlog.as_ref().map(|b| b.memory.peak_bytes),
    ];
    let peak = peaks.into_iter().flatten().max().filter(|&peak| peak > 0);
    Check {
        target: "resident memory (VmHWM, all runs and the drain)",
        goal: "< 64 MiB",
        measured: peak.map_or_else(
            || "not measured".to_owned(),
            |p| format!("{:.1} MiB", mib(p)),
        ),
        met: peak.map(|p| mib(p) < 64.0),
    }
}

fn check_startup(results: &SuiteResults) -> Check {
    let median = median(&results.startup_ms);
    let max = results.startup_ms.iter().copied().fold(0.0, f64::max);
    Check {
        target: "startup to ready, empty outbox",
        goal: "< 200 ms",
        measured: median.map_or_else(
            || "not measured".to_owned(),
            |m| format!("median {m:.0} ms, slowest {max:.0} ms"),
        ),
        met: median.map(|m| m < 200.0),
    }
}

fn check_backlog(results: &SuiteResults) -> Check {
    let steady = steady_state(&results.runs);
    let backlog = results.backlog.as_ref();
    let drained = backlog.and_then(|b| Some((b.records, b.per_second?)));
    let (measured, met) = match (drained, steady) {
        (Some((records, rate)), Some((steady, run))) if steady > 0.0 => (
            format!(
                "{} records at {} records/s = {} of {} ({})",
                thousands(records as f64),
                thousands(rate),
                percent(rate / steady),
                thousands(steady),
                run.scenario.name
            ),
            Some(rate >= 0.8 * steady),
        ),
        _ => ("not measured".to_owned(), None),
    };
    Check {
        target: "draining a backlog",
        goal: "≥ 80% of steady-state throughput",
        measured,
        met,
    }
}

/// The fastest rate at which live invoice traffic reached Kafka: acknowledged
/// records over the run plus the time its outbox took to drain afterwards, best
/// of the closed-loop runs (sync or async).
fn steady_state(runs: &[RunResult]) -> Option<(f64, &RunResult)> {
    runs.iter()
        .filter(|run| plain_invoice(run, run.scenario.respond_async))
        .filter(|run| matches!(run.scenario.pace, Pace::Closed { .. }))
        .filter_map(|run| {
            let records = run.records_per_second * run.seconds;
            Some((records / (run.seconds + run.drain_seconds?), run))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

fn check_exactly_once(results: &SuiteResults) -> Check {
    let passed = results.runs.iter().filter(|run| run.passed()).count();
    let backlog = results.backlog.as_ref().is_none_or(backlog_passed);
    let measured = format!(
        "{passed} of {} runs{}",
        results.runs.len(),
        if backlog {
            ""
        } else {
            "; the backlog drain failed"
        }
    );
    Check {
        target: "every acknowledged record in Kafka exactly once, no failed request",
        goal: "every run",
        measured,
        met: Some(passed == results.runs.len() && backlog),
    }
}

fn backlog_passed(backlog: &BacklogResult) -> bool {
    backlog.verdict.is_some_and(|v| v.exactly_once())
}

/// One line about a finished run, for the terminal.
pub fn summary_line(run: &RunResult) -> String {
    let verdict = run
        .verdict
        .map_or_else(|| Err(run.verify_error.clone().unwrap_or_default()), Ok);
    format!(
        "{:<34} {:>8} req/s {:>8} rec/s  p50 {:>7.2}  p99 {:>7.2}  p99.9 {:>7.2} ms  \
         failed {}  {}",
        run.scenario.name,
        thousands(run.requests_per_second),
        thousands(run.records_per_second),
        run.latency_ms.p50,
        run.latency_ms.p99,
        run.latency_ms.p999,
        run.failed,
        verified(&verdict)
    )
}

/// One line about the backlog drain, for the terminal.
pub fn backlog_line(backlog: &BacklogResult) -> String {
    let verdict = backlog
        .verdict
        .map_or_else(|| Err(backlog.verify_error.clone().unwrap_or_default()), Ok);
    match backlog.per_second {
        Some(rate) => format!(
            "backlog: drained {} records at {} records/s, peak {:.1} MiB, {}",
            backlog.records,
            thousands(rate),
            mib(backlog.memory.peak_bytes),
            verified(&verdict)
        ),
        None => format!("backlog: {} records did not drain in time", backlog.records),
    }
}

/// `verified: 1,000 exactly once`, or what is wrong.
pub fn verified(verdict: &Result<Verdict, String>) -> String {
    match verdict {
        Ok(v) if v.exactly_once() => {
            format!("verified: {} exactly once", thousands(v.found as f64))
        }
        Ok(v) => format!(
            "VERIFICATION FAILED: {} missing, {} duplicated of {} acknowledged",
            v.missing, v.duplicated, v.acknowledged
        ),
        Err(err) => format!("VERIFICATION FAILED: {err}"),
    }
}

/// The whole report, in Markdown; `plots` is the plots' directory relative to it.
pub fn markdown(results: &SuiteResults, plots: &str) -> String {
    let mut out = String::new();
    header(&mut out, results);
    targets(&mut out, &checks(results));
    setup(&mut out, results);
    limits(&mut out, results);
    runs_table(&mut out, results);
    let _ = writeln!(out, "## Plots\n");
    let _ = writeln!(
        out,
        "![Throughput against offered load]({plots}/throughput.svg)\n"
    );
    let _ = writeln!(
        out,
        "![Latency percentiles against offered load]({plots}/latency.svg)\n"
    );
    backlog(&mut out, results.backlog.as_ref());
    method(&mut out, plots, results.startup_ms.len());
    out
}

fn header(out: &mut String, results: &SuiteResults) {
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Generated by `scripts/bench` on {}, revision `{}`, **{} run**{}. \
         Regenerate with `scripts/bench` (see [How this was measured](#how-this-was-measured)).\n",
        results.generated_at,
        results.revision,
        results.mode,
        if results.mode == "quick" {
            " (`BENCH_QUICK=1`: a smoke run with short runs and a small backlog; \
             its numbers show that the script works, not what ponte can do)"
        } else {
            ""
        }
    );
    let failed: Vec<&str> = results
        .runs
        .iter()
        .filter(|run| !run.passed())
        .map(|run| run.scenario.name.as_str())
        .collect();
    if failed.is_empty() {
        let _ = writeln!(
            out,
            "Every request was answered and every acknowledged record was read back \
             from Kafka exactly once, in every run.\n"
        );
    } else {
        let _ = writeln!(
            out,
            "**FAILED: these runs had failed requests or records not in Kafka exactly \
             once, so their speed does not count: {}.**\n",
            failed.join(", ")
        );
    }
}

fn targets(out: &mut String, checks: &[Check]) {
    let _ = writeln!(out, "## Targets\n");
    let _ = writeln!(out, "| target | goal | measured | result |");
    let _ = writeln!(out, "|---|---|---|---|");
    for check in checks {
        let result = match check.met {
            Some(true) => "pass",
            Some(false) => "**FAIL**",
            None => "not measured",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {result} |",
            check.target, check.goal, check.measured
        );
    }
    let _ = writeln!(out);
}

fn setup(out: &mut String, results: &SuiteResults) {
    let m = &results.machine;
    let _ = writeln!(out, "## Setup\n");
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| processor | {} ({} logical cores) |", m.cpu, m.cores);
    let _ = writeln!(out, "| memory | {} MiB |", thousands(m.memory_mib as f64));
    let _ = writeln!(out, "| kernel | {} |", m.kernel);
    let _ = writeln!(out, "| outbox file system | {} |", m.outbox_file_system);
    let _ = writeln!(out, "| broker | {} |", results.broker);
    let _ = writeln!(
        out,
        "| ponte | release build, default settings: outbox on (WAL, `synchronous=FULL`), \
         `acks=all`, idempotent producer, lz4, `linger.ms=5`, no API keys, on loopback |"
    );
    let _ = writeln!(
        out,
        "| load generator | `ponte bench`, same machine, HTTP/1.1 keep-alive (reqwest) |"
    );
    let _ = writeln!(
        out,
        "| topics | one new topic per run, 3 partitions, replication factor 1 |\n"
    );
}

fn limits(out: &mut String, results: &SuiteResults) {
    let _ = writeln!(out, "## Limits, measured in the same run\n");
    let _ = writeln!(out, "| limit | value | how |\n|---|---|---|");
    if let Some(fsync) = results.fsync {
        let _ = writeln!(
            out,
            "| disk: fsyncs per second | {} /s | write 4 KiB and `fdatasync`, repeatedly for \
             {:.0} s, round a 4 MiB file in the outbox's directory |",
            thousands(fsync.per_second),
            fsync.seconds
        );
    }
    if let Some(native) = &results.native {
        let verdict = native
            .verdict
            .map_or_else(|| Err(native.verify_error.clone().unwrap_or_default()), Ok);
        let _ = writeln!(
            out,
            "| Kafka: native producer | {} records/s | librdkafka, `acks=all`, idempotent, lz4, \
             `linger.ms=5`: {} invoices as fast as it takes them, {:.1} s until all were \
             acknowledged; {} |",
            thousands(native.rate.per_second),
            thousands(native.rate.acknowledged as f64),
            native.rate.seconds,
            verified(&verdict)
        );
    }
    let _ = writeln!(out);
}

fn runs_table(out: &mut String, results: &SuiteResults) {
    let native = results.native.as_ref().map(|n| n.rate.per_second);
    let fsync = results.fsync.map(|f| f.per_second);
    let _ = writeln!(out, "## Runs\n");
    let _ = writeln!(
        out,
        "Latencies in ms; in open-loop runs they count from when each request was due. \
         \"vs native\" is records/s over the native producer's; \"commits/s\" is ponte's \
         group commits (fsyncs) per second and their share of the disk's fsync rate.\n"
    );
    let _ = writeln!(
        out,
        "| run | value | s | answered req/s | records/s | vs native | p50 | p90 | p99 | p99.9 \
         | max | records/commit | commits/s | 200 / 202 / failed | verified |"
    );
    let _ = writeln!(out, "|---{}|", "|---".repeat(14));
    for run in &results.runs {
        let l = run.latency_ms;
        let commit_size = run.commits.and_then(|c| c.records_per_commit());
        let commit_rate = run.commits_per_second();
        let verdict = run
            .verdict
            .map_or_else(|| Err(run.verify_error.clone().unwrap_or_default()), Ok);
        let _ = writeln!(
            out,
            "| {} | {} B | {:.1} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} \
             | {} / {} / {} | {} |",
            run.scenario.name,
            thousands(run.value_bytes as f64),
            run.seconds,
            thousands(run.requests_per_second),
            thousands(run.records_per_second),
            ratio(Some(run.records_per_second), native),
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            commit_size.map_or_else(|| "–".to_owned(), |s| format!("{s:.2}")),
            match commit_rate {
                Some(rate) => format!("{} ({})", thousands(rate), ratio(Some(rate), fsync)),
                None => "–".to_owned(),
            },
            thousands(run.confirmed as f64),
            thousands(run.stored as f64),
            thousands(run.failed as f64),
            verified(&verdict)
        );
    }
    let _ = writeln!(out);
}

fn backlog(out: &mut String, backlog: Option<&BacklogResult>) {
    let Some(b) = backlog else { return };
    let verdict = b
        .verdict
        .map_or_else(|| Err(b.verify_error.clone().unwrap_or_default()), Ok);
    let _ = writeln!(out, "## Backlog drain\n");
    let _ = writeln!(
        out,
        "{} invoices were posted (64 clients, async) to a ponte whose broker was unreachable, \
         in {:.1} s; that ponte was then killed (`SIGKILL`) and a new one started on the same \
         outbox against the broker.\n",
        thousands(b.records as f64),
        b.fill_seconds
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    match (b.drain_seconds, b.per_second) {
        (Some(seconds), Some(rate)) => {
            let _ = writeln!(out, "| start to drained | {seconds:.1} s |");
            let _ = writeln!(out, "| drain rate | {} records/s |", thousands(rate));
        }
        _ => {
            let _ = writeln!(out, "| start to drained | did not drain in time |");
        }
    }
    let _ = writeln!(
        out,
        "| resident memory of the draining ponte | peak {:.1} MiB, {:.1} MiB at the end |",
        mib(b.memory.peak_bytes),
        mib(b.memory.current_bytes)
    );
    let _ = writeln!(out, "| verification | {} |\n", verified(&verdict));
}

fn method(out: &mut String, plots: &str, startups: usize) {
    let _ = writeln!(
        out,
        "## How this was measured\n\n\
         `scripts/bench` builds ponte in release mode, starts a Tansu broker (or, without \
         Tansu, librdkafka's mock cluster, which ignores `acks`), and runs `ponte bench suite`, \
         which:\n\n\
         1. measures the disk's fsync rate and a native producer's rate into the broker;\n\
         2. times {startups} cold starts of ponte, spawn to first `200` from \
            `/health/ready`, each with an empty outbox;\n\
         3. starts one ponte and runs every scenario against it, each into a new topic: \
            closed loops (a fixed number of clients, each waiting for its answer) and open \
            loops (requests due at a fixed rate from the start, latency counted from the due \
            time, so a stall is not hidden);\n\
         4. after each run, waits until ponte's outbox holds nothing unsent, reads records \
            per commit from `ponte_outbox_commit_records` in `/metrics/prometheus`, and reads \
            the topic back with assigned partitions up to the high watermarks: every record's \
            key is `bench-<run>-<n>`, so acknowledged records that are missing and records \
            present twice are counted;\n\
         5. reads ponte's `VmHWM` and `VmRSS` from `/proc/<pid>/status`;\n\
         6. fills an outbox while the broker is unreachable, restarts ponte against it and \
            times the drain.\n\n\
         The raw results are in [`{plots}/results.json`]({plots}/results.json). Everything \
         runs on one machine: the load generator and the broker take CPU from ponte.\n"
    );
}

/// `12,345` for 12345.4.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if value < -0.5 {
        grouped.insert(0, '-');
    }
    grouped
}

fn percent(ratio: f64) -> String {
    if ratio < 0.1 {
        format!("{:.1}%", ratio * 100.0)
    } else {
        format!("{:.0}%", ratio * 100.0)
    }
}

fn ratio(value: Option<f64>, limit: Option<f64>) -> String {
    match (value, limit) {
        (Some(value), Some(limit)) if limit > 0.0 => percent(value / limit),
        _ => "–".to_owned(),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

#[cfg(test)]
mod tests;
