//! The targets, each checked against what the suite measured.

use super::{median, mib, percent, thousands};
use crate::bench::suite::plan::HEADLINE_CLIENTS;
use crate::bench::suite::{BacklogResult, SuiteResults};
use crate::bench::{Api, Pace, Payload, RunResult, plot};

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
        plain_invoice(run, false)
            && run.scenario.pace
                == Pace::Closed {
                    concurrency: HEADLINE_CLIENTS,
                }
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
        check_headline_ceiling(results),
        check_batches(results),
        check_commit_growth(results),
        check_p99(results, false, 10.0),
        check_p99(results, true, 5.0),
        check_memory(results),
        check_startup(results),
        check_backlog(results),
        check_exactly_once(results),
    ]
}

/// The headline run against the native producer with as many senders, each
/// waiting for its acknowledgement as ponte's clients wait for their answers.
fn check_headline(results: &SuiteResults) -> Check {
    let native = results.native_senders.as_ref().map(|n| n.rate.per_second);
    against(
        "64 concurrent clients (invoice, sync), against 64 native senders",
        headline(&results.runs),
        native,
        "native, 64 senders",
    )
}

/// The headline run against the native producer as fast as it takes records:
/// the broker's ceiling.
fn check_headline_ceiling(results: &SuiteResults) -> Check {
    let native = results.native.as_ref().map(|n| n.rate.per_second);
    against(
        "64 concurrent clients (invoice, sync), against the native pipeline",
        headline(&results.runs),
        native,
        "native, pipelined",
    )
}

/// The same against the ceiling, met the way a client that has many records
/// would: REST Proxy requests of 100 records each.
fn check_batches(results: &SuiteResults) -> Check {
    let native = results.native.as_ref().map(|n| n.rate.per_second);
    let run = results.runs.iter().find(|run| {
        run.scenario.api == Api::RestProxy { batch: 100 }
            && run.scenario.pace
                == Pace::Closed {
                    concurrency: HEADLINE_CLIENTS,
                }
            && !run.scenario.respond_async
    });
    against(
        "64 concurrent clients, REST Proxy batches of 100 (invoice, sync)",
        run,
        native,
        "native, pipelined",
    )
}

/// The throughput target `target`: `run`'s records per second as a share of
/// `native`'s, met at half or more.
fn against(
    target: &'static str,
    run: Option<&RunResult>,
    native: Option<f64>,
    label: &str,
) -> Check {
    let (measured, met) = match (run, native) {
        (Some(run), Some(native)) if native > 0.0 => {
            let ratio = run.records_per_second / native;
            let text = format!(
                "{} records/s = {} of {} ({label})",
                thousands(run.records_per_second),
                percent(ratio),
                thousands(native)
            );
            (text, Some(ratio >= 0.5))
        }
        _ => ("not measured".to_owned(), None),
    };
    Check {
        target,
        goal: "≥ 50% of the native producer's rate",
        measured,
        met,
    }
}

fn check_commit_growth(results: &SuiteResults) -> Check {
    let sizes: Vec<(f64, f64)> = plot::open_loop(&results.runs, false)
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
