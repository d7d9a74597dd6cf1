//! The benchmark's terminal output: a live progress line while a load runs, and
//! one line per finished step. Everything goes to stderr, so that stdout stays
//! free for the results (`--json`).

// This module is the bench's terminal front end, like `src/cli` is ponte's.
#![allow(clippy::print_stderr)]

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::report::thousands;

/// Counts of a running load, as the progress line shows them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Live {
    /// Since the load started.
    pub elapsed: Duration,
    /// Requests answered so far, failed ones included.
    pub answered: u64,
    /// Requests that failed so far.
    pub failed: u64,
    /// 99th percentile latency so far, in milliseconds.
    pub p99_ms: f64,
}

/// The progress line of one load run; hidden when stderr is not a terminal.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A progress line for a run called `name` lasting `duration`.
    pub fn start(name: &str, duration: Duration) -> Progress {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new(millis)
        } else {
            ProgressBar::hidden()
        };
        let style = ProgressStyle::with_template("{prefix} [{bar:10}] {msg}")
            .expect("the template is valid")
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(name.to_owned());
        Progress { bar }
    }

    /// Shows the latest counts.
    pub fn update(&self, live: &Live) {
        let millis = u64::try_from(live.elapsed.as_millis()).unwrap_or(u64::MAX);
        self.bar.set_position(millis);
        let rate = live.answered as f64 / live.elapsed.as_secs_f64().max(0.001);
        self.bar.set_message(format!(
            "{:.1} s  {} answered  {} req/s  p99 {:.2} ms  failed {}",
            live.elapsed.as_secs_f64(),
            thousands(live.answered as f64),
            thousands(rate),
            live.p99_ms,
            live.failed,
        ));
    }

    /// Removes the line, leaving the terminal for the summary.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// One line about a finished step.
pub fn say(line: &str) {
    eprintln!("{line}");
}
