use std::time::Duration;

use super::*;
use crate::bench::limits::{FsyncRate, NativeRate};
use crate::bench::machine::Machine;
use crate::bench::suite::NativeResult;
use crate::bench::target::{CommitTotals, Memory};
use crate::bench::{Api, Pace, Payload, Percentiles, Scenario};

fn run(pace: Pace, respond_async: bool, records_per_second: f64) -> RunResult {
    RunResult {
        scenario: Scenario {
            name: format!("{pace} {respond_async}"),
            api: Api::Middleware,
            pace,
            duration: Duration::from_secs(10),
            payload: Payload::Invoice,
            respond_async,
            idempotency: false,
            records: None,
        },
        value_bytes: 1400,
        confirmed: 100,
        stored: 0,
        failed: 0,
        first_failure: None,
        seconds: 10.0,
        requests_per_second: records_per_second,
        records_per_second,
        latency_ms: Percentiles {
            p50: 1.0,
            p90: 2.0,
            p99: 4.0,
            p999: 8.0,
            max: 9.0,
        },
        commits: None,
        drain_seconds: Some(0.1),
        verdict: Some(Verdict {
            acknowledged: 100,
            found: 100,
            ..Verdict::default()
        }),
        verify_error: None,
    }
}

fn open(rate: f64, records_per_commit: f64) -> RunResult {
    let mut result = run(Pace::Open { rate }, false, rate);
    result.commits = Some(CommitTotals {
        commits: 100.0,
        records: 100.0 * records_per_commit,
    });
    result
}

fn results(runs: Vec<RunResult>) -> SuiteResults {
    SuiteResults {
        generated_at: "2026-12-03T18:00:00Z".to_owned(),
        mode: "quick".to_owned(),
        parameters: "each load run 3 s".to_owned(),
        revision: "abc1234".to_owned(),
        machine: Machine::default(),
        broker: "Tansu 0.6.0".to_owned(),
        fsync: Some(FsyncRate {
            syncs: 1000,
            seconds: 2.0,
            per_second: 500.0,
        }),
        native: Some(NativeResult {
            rate: NativeRate {
                acknowledged: 20_000,
                issued: 20_000,
                seconds: 2.0,
                per_second: 10_000.0,
                acknowledged_numbers: Vec::new(),
            },
            verdict: None,
            verify_error: None,
        }),
        native_senders: Some(NativeResult {
            rate: NativeRate {
                acknowledged: 8_000,
                issued: 8_000,
                seconds: 2.0,
                per_second: 4_000.0,
                acknowledged_numbers: Vec::new(),
            },
            verdict: None,
            verify_error: None,
        }),
        startup_ms: vec![150.0, 90.0, 120.0],
        runs,
        memory: Some(Memory {
            peak_bytes: 40 << 20,
            current_bytes: 30 << 20,
        }),
        backlog: None,
    }
}

fn check<'a>(checks: &'a [Check], prefix: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.target.starts_with(prefix))
        .expect("the check exists")
}

#[test]
fn thousands_are_grouped_with_commas() {
    assert_eq!(thousands(0.0), "0");
    assert_eq!(thousands(999.4), "999");
    assert_eq!(thousands(1_000.0), "1,000");
    assert_eq!(thousands(1_234_567.0), "1,234,567");
    assert_eq!(thousands(-12_345.0), "-12,345");
}

#[test]
fn the_headline_run_is_compared_with_native_senders_and_with_the_pipeline() {
    let all = results(vec![run(Pace::Closed { concurrency: 64 }, false, 6_000.0)]);
    let checks = checks(&all);
    let senders = check(
        &checks,
        "64 concurrent clients (invoice, sync), against 64 native",
    );
    assert_eq!(senders.met, Some(true));
    assert!(senders.measured.contains("150%"), "{}", senders.measured);
    let ceiling = check(
        &checks,
        "64 concurrent clients (invoice, sync), against the native",
    );
    assert_eq!(ceiling.met, Some(true));
    assert!(ceiling.measured.contains("60%"), "{}", ceiling.measured);

    let slow = results(vec![run(Pace::Closed { concurrency: 64 }, false, 1_500.0)]);
    let checks = super::checks(&slow);
    let compared: Vec<&Check> = checks
        .iter()
        .filter(|c| {
            c.target
                .starts_with("64 concurrent clients (invoice, sync)")
        })
        .collect();
    assert_eq!(compared.len(), 2);
    assert!(
        compared.iter().all(|c| c.met == Some(false)),
        "{compared:?}"
    );
}

#[test]
fn records_per_commit_must_rise_from_the_lowest_to_the_highest_rate() {
    let rising = results(vec![open(1000.0, 3.0), open(250.0, 1.0), open(4000.0, 9.0)]);
    assert_eq!(check(&checks(&rising), "records per").met, Some(true));

    let flat = results(vec![open(250.0, 1.0), open(1000.0, 1.0)]);
    assert_eq!(check(&checks(&flat), "records per").met, Some(false));

    let unmeasured = results(vec![run(Pace::Open { rate: 250.0 }, false, 250.0)]);
    assert_eq!(check(&checks(&unmeasured), "records per").met, None);
}

#[test]
fn latency_targets_use_the_open_loop_runs_at_1000_per_second() {
    let mut unsync = run(Pace::Open { rate: 1000.0 }, true, 1000.0);
    unsync.latency_ms.p99 = 6.0;
    let all = results(vec![
        run(Pace::Open { rate: 1000.0 }, false, 1000.0),
        unsync,
    ]);
    let checks = checks(&all);
    assert_eq!(
        check(&checks, "p99 at 1,000 req/s offered, sync").met,
        Some(true)
    );
    assert_eq!(
        check(&checks, "p99 at 1,000 req/s offered, async").met,
        Some(false)
    );
}

#[test]
fn memory_and_startup_are_checked_against_their_limits() {
    let all = results(Vec::new());
    let checks = checks(&all);
    assert_eq!(check(&checks, "resident memory").met, Some(true));
    let startup = check(&checks, "startup");
    assert_eq!(startup.met, Some(true));
    assert!(
        startup.measured.contains("median 120 ms"),
        "{}",
        startup.measured
    );
}

#[test]
fn a_run_with_a_missing_record_fails_the_report_whatever_its_speed() {
    let mut lossy = run(Pace::Closed { concurrency: 64 }, false, 9_000.0);
    lossy.verdict = Some(Verdict {
        acknowledged: 100,
        found: 99,
        missing: 1,
        ..Verdict::default()
    });
    let all = results(vec![lossy]);
    assert_eq!(check(&checks(&all), "every acknowledged").met, Some(false));
    let text = markdown(&all, "benchmarks");
    assert!(text.contains("**FAILED"));
    assert!(text.contains("1 missing"));
}

#[test]
fn the_report_names_its_mode_targets_limits_and_plots() {
    let all = results(vec![run(Pace::Closed { concurrency: 64 }, false, 6_000.0)]);
    let text = markdown(&all, "benchmarks");
    assert!(text.contains("**quick run**"));
    assert!(text.contains("| 64 concurrent clients (invoice, sync), against 64 native senders |"));
    assert!(text.contains("| disk: fsyncs per second | 500 /s |"));
    assert!(text.contains("| Kafka: native producer, one record at a time per sender | 4,000"));
    assert!(text.contains("](benchmarks/throughput.svg)"));
    assert!(text.contains("every acknowledged record was read back"));
}

#[test]
fn a_backlog_drain_is_compared_with_the_fastest_delivery_of_live_traffic() {
    let sync = run(Pace::Closed { concurrency: 64 }, false, 5_000.0);
    let mut unsync = run(Pace::Closed { concurrency: 64 }, true, 15_000.0);
    // 150,000 records reached Kafka 15 s after the run started: 10,000 per second.
    unsync.drain_seconds = Some(5.0);
    let drained = |per_second: f64| BacklogResult {
        records: 100_000,
        fill_seconds: 10.0,
        drain_seconds: Some(100_000.0 / per_second),
        per_second: Some(per_second),
        memory: Memory::default(),
        verdict: None,
        verify_error: None,
    };

    let mut all = results(vec![sync, unsync]);
    all.backlog = Some(drained(9_000.0));
    let check_of = |all: &SuiteResults| check(&checks(all), "draining").clone();
    let fast = check_of(&all);
    assert_eq!(fast.met, Some(true));
    assert!(fast.measured.contains("90% of 10,000"), "{}", fast.measured);

    all.backlog = Some(drained(7_000.0));
    assert_eq!(check_of(&all).met, Some(false));
}

#[test]
fn results_read_back_from_json_give_the_same_report() {
    let all = results(vec![
        open(1000.0, 2.0),
        run(Pace::Closed { concurrency: 64 }, true, 9.0),
    ]);
    let json = serde_json::to_string(&all).expect("serialise");
    let again: SuiteResults = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(markdown(&again, "b"), markdown(&all, "b"));
    assert_eq!(again.runs[0].scenario.duration, Duration::from_secs(10));
}

#[test]
fn notes_go_before_the_method_or_at_the_end() {
    let report = "# Benchmarks\n\n## Runs\n\nx\n\n## How this was measured\n\ny\n";
    let notes = "## Profile\n\nthe writer\n";

    let placed = with_notes(report, notes);
    let appended = with_notes("# Benchmarks\n", notes);

    assert_eq!(
        placed,
        "# Benchmarks\n\n## Runs\n\nx\n\n## Profile\n\nthe writer\n\n## How this was measured\n\ny\n"
    );
    assert_eq!(appended, "# Benchmarks\n\n## Profile\n\nthe writer\n");
}
