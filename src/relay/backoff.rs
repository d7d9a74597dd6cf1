//! Retry timing: exponential backoff with jitter, and the relay's pause.

use std::time::Duration;

use rand::RngExt;
use tokio::time::Instant;

use crate::config::Settings;

/// Waits that start at `initial`, double with each failure up to `max`, and are
/// spread by `jitter` (a fraction) either way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
}

impl Backoff {
    /// The schedule the settings describe.
    pub fn from_settings(settings: &Settings) -> Backoff {
        Backoff::new(
            Duration::from_millis(settings.retry_backoff_initial_ms),
            Duration::from_millis(settings.retry_backoff_max_ms),
            settings.retry_backoff_jitter,
        )
    }

    /// A schedule; `jitter` is clamped to `0.0..1.0`.
    pub fn new(initial: Duration, max: Duration, jitter: f64) -> Backoff {
        Backoff {
            initial,
            max,
            jitter: jitter.clamp(0.0, 0.99),
        }
    }

    /// The wait after `failures` consecutive failures (1 for the first), at a random
    /// point of the jitter band.
    pub fn delay(&self, failures: u32) -> Duration {
        let spread = rand::rng().random_range(-1.0..=1.0);
        self.delay_at(failures, spread)
    }

    /// The wait after `failures` consecutive failures; `spread` in `-1.0..=1.0`
    /// picks the point of the jitter band (-1: shortest, 0: middle, 1: longest).
    pub fn delay_at(&self, failures: u32, spread: f64) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        let base = self.initial.saturating_mul(1 << doublings).min(self.max);
        let factor = 1.0 + self.jitter * spread.clamp(-1.0, 1.0);
        base.mul_f64(factor).min(self.max)
    }
}

/// The relay's pause after Kafka became unavailable: no sends until `until`, with
/// the wait growing while failures repeat and starting over after a success.
#[derive(Debug)]
pub struct Pause {
    backoff: Backoff,
    failures: u32,
    until: Option<Instant>,
}

impl Pause {
    /// Not paused.
    pub fn new(backoff: Backoff) -> Pause {
        Pause {
            backoff,
            failures: 0,
            until: None,
        }
    }

    /// Starts a pause, unless one is running; returns when it ends.
    pub fn begin(&mut self) -> Instant {
        if let Some(until) = self.until {
            return until;
        }
        self.failures = self.failures.saturating_add(1);
        let until = Instant::now() + self.backoff.delay(self.failures);
        self.until = Some(until);
        until
    }

    /// When the running pause ends, if one is running.
    pub fn until(&self) -> Option<Instant> {
        self.until
    }

    /// Whether sends are paused now.
    pub fn is_paused(&self) -> bool {
        self.until.is_some()
    }

    /// Ends the pause; the next one is longer unless a send succeeds first.
    pub fn end(&mut self) {
        self.until = None;
    }

    /// A send succeeded: the next pause starts from the initial wait again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests;
