//! Automatic disabling of a plugin config whose calls keep failing: when at
//! least `min_calls` calls in a window fail at `rate` or more, the config is
//! disabled with the reason stored (the pipeline does that), until
//! `phs plugins enable` turns it back on.

use std::time::{Duration, Instant};

/// When to give up on a plugin config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorRatePolicy {
    /// Share of failed calls (0 < rate <= 1) that disables the config.
    pub rate: f64,
    /// Calls a window needs before the rate counts: a few early errors are not a trend.
    pub min_calls: u32,
    pub window: Duration,
}

impl Default for ErrorRatePolicy {
    fn default() -> Self {
        ErrorRatePolicy { rate: 0.5, min_calls: 100, window: Duration::from_secs(60) }
    }
}

/// Calls and failures of one config in the current fixed window.
#[derive(Debug, Default)]
pub struct ErrorWindow {
    started: Option<Instant>,
    calls: u32,
    failures: u32,
}

impl ErrorWindow {
    /// Counts a call; returns why the config must be disabled when this call
    /// takes it over the threshold.
    pub fn record(&mut self, policy: &ErrorRatePolicy, failed: bool) -> Option<String> {
        let now = Instant::now();
        if self.started.is_none_or(|s| now.duration_since(s) >= policy.window) {
            *self = ErrorWindow { started: Some(now), calls: 0, failures: 0 };
        }
        self.calls += 1;
        self.failures += failed as u32;
        let rate = self.failures as f64 / self.calls as f64;
        (failed && self.calls >= policy.min_calls && rate >= policy.rate).then(|| {
            format!(
                "disabled automatically: {} of {} calls failed within {} s ({:.0}%, the limit is {:.0}% of at least {} calls)",
                self.failures,
                self.calls,
                policy.window.as_secs(),
                rate * 100.0,
                policy.rate * 100.0,
                policy.min_calls
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_only_past_the_rate_with_enough_calls() {
        let policy = ErrorRatePolicy { rate: 0.5, min_calls: 10, window: Duration::from_secs(60) };
        let mut w = ErrorWindow::default();
        for _ in 0..9 {
            assert_eq!(w.record(&policy, true), None, "fewer than min_calls");
        }
        let reason = w.record(&policy, true).expect("10 of 10 failed");
        assert!(reason.contains("10 of 10 calls failed"), "{reason}");

        let mut w = ErrorWindow::default();
        for i in 0..100 {
            assert_eq!(w.record(&policy, i % 3 == 0), None, "a third failing stays under 50%");
        }

        let short = ErrorRatePolicy { window: Duration::from_millis(50), ..policy };
        let mut w = ErrorWindow::default();
        for _ in 0..9 {
            w.record(&short, true);
        }
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(w.record(&short, true), None, "a new window starts from zero");
    }
}
