//! What the suite runs: the scenarios and the sizes of the other steps, for the
//! full report and for a quick smoke run.

use std::time::Duration;

use crate::bench::limits::NativeRun;
use crate::bench::report::thousands;
use crate::bench::{Api, Pace, Payload, Scenario};

/// Clients of the run the throughput target is checked on.
pub const HEADLINE_CLIENTS: usize = 64;

/// The suite's scenarios and the sizes of its other steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// `full` or `quick`.
    pub mode: &'static str,
    /// The load runs, in order.
    pub scenarios: Vec<Scenario>,
    /// Length of the fsync probe.
    pub fsync_probe: Duration,
    /// Length and size of the native producer's runs.
    pub native_run: NativeRun,
    /// Senders of the closed-loop native run: as many as the headline run's
    /// clients.
    pub native_senders: usize,
    /// How many cold starts to time.
    pub startups: usize,
    /// Records in the backlog to drain.
    pub backlog: u64,
}

impl Plan {
    /// The report's run: about ten minutes on two cores.
    pub fn full(rest_proxy: bool) -> Plan {
        let each = Duration::from_secs(15);
        Plan {
            mode: "full",
            scenarios: scenarios(
                each,
                &[1, 8, 64, 128],
                &[250, 500, 1000, 2000, 4000],
                rest_proxy,
            ),
            fsync_probe: Duration::from_secs(5),
            native_run: NativeRun {
                payload: Payload::Invoice,
                duration: Duration::from_secs(10),
                max_records: 2_000_000,
            },
            native_senders: HEADLINE_CLIENTS,
            startups: 5,
            backlog: 1_000_000,
        }
    }

    /// A smoke run of a minute or two: every kind of step, short and small.
    pub fn quick(rest_proxy: bool) -> Plan {
        let each = Duration::from_secs(3);
        Plan {
            mode: "quick",
            scenarios: scenarios(each, &[1, 64], &[250, 1000], rest_proxy),
            fsync_probe: Duration::from_secs(2),
            native_run: NativeRun {
                payload: Payload::Invoice,
                duration: Duration::from_secs(3),
                max_records: 300_000,
            },
            native_senders: HEADLINE_CLIENTS,
            startups: 3,
            backlog: 20_000,
        }
    }

    /// The durations and sizes, for the report.
    pub fn describe(&self) -> String {
        let each = self
            .scenarios
            .first()
            .map_or(0.0, |scenario| scenario.duration.as_secs_f64());
        format!(
            "each load run {each:.0} s; fsync probe {:.0} s; native producer up to {:.0} s or {} \
             records, as fast as it takes them and with {} senders; {} cold starts; backlog of \
             {} records",
            self.fsync_probe.as_secs_f64(),
            self.native_run.duration.as_secs_f64(),
            thousands(self.native_run.max_records as f64),
            self.native_senders,
            self.startups,
            thousands(self.backlog as f64),
        )
    }
}

/// Closed loops at `concurrencies` and open loops at `rates` (sync and async)
/// with the invoice; then 64 clients with each generated size, with idempotency
/// keys, asking for async answers, and (if asked) with REST Proxy batches.
fn scenarios(each: Duration, concurrencies: &[usize], rates: &[u32], rest: bool) -> Vec<Scenario> {
    let base = Scenario {
        name: String::new(),
        api: Api::Middleware,
        pace: Pace::Closed { concurrency: 64 },
        duration: each,
        payload: Payload::Invoice,
        respond_async: false,
        idempotency: false,
        records: None,
    };
    let named = |scenario: Scenario| Scenario {
        name: name_of(&scenario),
        ..scenario
    };
    let mut all = Vec::new();
    for &concurrency in concurrencies {
        let pace = Pace::Closed { concurrency };
        all.push(named(Scenario {
            pace,
            ..base.clone()
        }));
    }
    for respond_async in [false, true] {
        for &rate in rates {
            let pace = Pace::Open {
                rate: f64::from(rate),
            };
            all.push(named(Scenario {
                pace,
                respond_async,
                ..base.clone()
            }));
        }
    }
    for size in [200, 2_000, 100_000] {
        let payload = Payload::Bytes(size);
        all.push(named(Scenario {
            payload,
            ..base.clone()
        }));
    }
    all.push(named(Scenario {
        idempotency: true,
        ..base.clone()
    }));
    all.push(named(Scenario {
        respond_async: true,
        ..base.clone()
    }));
    if rest {
        for batch in [10, 100] {
            let api = Api::RestProxy { batch };
            all.push(named(Scenario {
                api,
                ..base.clone()
            }));
        }
    }
    all
}

/// A short name: `closed 64 invoice sync`, `open 1000/s 2KB async idem`.
fn name_of(scenario: &Scenario) -> String {
    let pace = match scenario.pace {
        Pace::Closed { concurrency } => format!("closed {concurrency}"),
        Pace::Open { rate } => format!("open {rate:.0}/s"),
    };
    let ack = if scenario.respond_async {
        "async"
    } else {
        "sync"
    };
    let mut name = format!("{pace} {} {ack}", scenario.payload);
    if scenario.idempotency {
        name.push_str(" idem");
    }
    if let Api::RestProxy { batch } = scenario.api {
        name.push_str(&format!(" rest×{batch}"));
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_plan_has_the_scenarios_the_targets_are_checked_on() {
        let plan = Plan::full(false);
        let names: Vec<&str> = plan.scenarios.iter().map(|s| s.name.as_str()).collect();
        for expected in [
            "closed 64 invoice sync",
            "open 1000/s invoice sync",
            "open 1000/s invoice async",
            "closed 64 200B sync",
            "closed 64 2KB sync",
            "closed 64 100KB sync",
            "closed 64 invoice sync idem",
        ] {
            assert!(names.contains(&expected), "{expected} in {names:?}");
        }
        assert_eq!(plan.backlog, 1_000_000);
        assert!(names.iter().all(|name| !name.contains("rest")));
    }

    #[test]
    fn rest_proxy_batches_are_only_planned_when_asked_for() {
        let plan = Plan::quick(true);
        let rest: Vec<&Scenario> = plan
            .scenarios
            .iter()
            .filter(|s| s.api != Api::Middleware)
            .collect();
        let names: Vec<&str> = rest.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "closed 64 invoice sync rest×10",
                "closed 64 invoice sync rest×100"
            ]
        );
    }

    #[test]
    fn the_plan_describes_its_durations_and_sizes() {
        let text = Plan::quick(false).describe();
        assert!(
            text.starts_with("each load run 3 s; fsync probe 2 s;"),
            "{text}"
        );
        assert!(
            text.ends_with("3 cold starts; backlog of 20,000 records"),
            "{text}"
        );
    }

    #[test]
    fn the_quick_plan_keeps_every_run_short() {
        let plan = Plan::quick(false);
        assert!(
            plan.scenarios
                .iter()
                .all(|s| s.duration <= Duration::from_secs(20))
        );
        assert!(plan.native_run.duration <= Duration::from_secs(20));
    }
}
