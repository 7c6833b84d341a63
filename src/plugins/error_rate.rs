//! Automatic disabling of a plugin config whose calls keep failing: when at
//! least `min_calls` calls in a window fail at `rate` or more, the config is
//! disabled with the reason stored (the pipeline does that), until
//! `phs plugins enable` turns it back on.
//!
//! A config's events are spread over every partition, so over every
//! instance: counted per instance only, N instances would each need
//! `min_calls` of their own and disable a failing plugin N times later. So
//! each instance also adds its counts to the cluster's in the cache every
//! [`SHARE_EVERY`] ([`share`]: two INCRBYs per config with calls, keyed by
//! config and window, all in one round trip) and judges the sum. Embedded, the cache is in process
//! and the sum is this instance's own.

use std::time::{Duration, Instant};

use crate::cache::Cache;

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
    /// Calls and failures not yet added to the cluster's counts.
    unshared: (u32, u32),
}

/// How often an instance shares its counts.
pub const SHARE_EVERY: Duration = Duration::from_secs(1);
/// The cache keys' prefix: `{prefix}:{config}:{window}:calls|failures`.
pub const CLUSTER_KEY: &str = "plugin-server:error-rate";

impl ErrorWindow {
    /// The calls and failures counted since the last call, to share.
    pub fn take_unshared(&mut self) -> (u32, u32) {
        std::mem::take(&mut self.unshared)
    }

    /// Puts back counts that could not be shared, to share them next time.
    pub fn give_back(&mut self, (calls, failures): (u32, u32)) {
        self.unshared.0 = self.unshared.0.saturating_add(calls);
        self.unshared.1 = self.unshared.1.saturating_add(failures);
    }

    /// Counts a call; returns why the config must be disabled when this call
    /// takes it over the threshold.
    pub fn record(&mut self, policy: &ErrorRatePolicy, failed: bool) -> Option<String> {
        let now = Instant::now();
        if self.started.is_none_or(|s| now.duration_since(s) >= policy.window) {
            *self = ErrorWindow { started: Some(now), calls: 0, failures: 0, unshared: self.unshared };
        }
        self.calls += 1;
        self.failures += failed as u32;
        self.unshared.0 += 1;
        self.unshared.1 += failed as u32;
        if !failed {
            return None;
        }
        verdict(policy, self.calls as i64, self.failures as i64, "")
    }
}

/// Why the config must be disabled, when `failures` of `calls` in a window pass the policy.
fn verdict(policy: &ErrorRatePolicy, calls: i64, failures: i64, where_: &str) -> Option<String> {
    let rate = failures as f64 / calls.max(1) as f64;
    (calls >= policy.min_calls as i64 && rate >= policy.rate).then(|| {
        format!(
            "disabled automatically: {failures} of {calls} calls failed{where_} within {} s ({:.0}%, the limit is {:.0}% of at least {} calls)",
            policy.window.as_secs(),
            rate * 100.0,
            policy.rate * 100.0,
            policy.min_calls
        )
    })
}

/// Adds this instance's unshared counts of each config, `(config id,
/// (calls, failures))`, to the cluster's for the current window (aligned to
/// the wall clock, so every instance names the same one), in one round trip,
/// and judges the sums: the configs to disable, with why.
pub async fn share(
    cache: &dyn Cache,
    prefix: &str,
    policy: &ErrorRatePolicy,
    counts: &[(i64, (u32, u32))],
) -> crate::cache::Result<Vec<(i64, String)>> {
    let window = policy.window.as_secs().max(1);
    let id = chrono::Utc::now().timestamp().max(0) as u64 / window;
    let adds: Vec<(String, i64)> = counts
        .iter()
        .flat_map(|(config, (calls, failures))| {
            let key = format!("{prefix}:{config}:{id}");
            [(format!("{key}:calls"), *calls as i64), (format!("{key}:failures"), *failures as i64)]
        })
        .collect();
    // Both go once the window is over; the next window has keys of its own.
    let totals = cache.incr_all(&adds, Duration::from_secs(window * 2)).await?;
    Ok(counts
        .iter()
        .zip(totals.chunks_exact(2))
        .filter(|((_, (_, failures)), _)| *failures > 0)
        .filter_map(|((config, _), sums)| Some((*config, verdict(policy, sums[0], sums[1], " across instances")?)))
        .collect())
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

    #[tokio::test]
    async fn instances_trip_on_their_summed_counts() {
        let cache = crate::cache::memory::MemoryCache::default();
        // A day-long window: both shares fall in the same one.
        let policy = ErrorRatePolicy { rate: 0.5, min_calls: 100, window: Duration::from_secs(86_400) };
        let (mut a, mut b) = (ErrorWindow::default(), ErrorWindow::default());
        for _ in 0..60 {
            assert_eq!(a.record(&policy, true), None, "60 calls are too few for one instance");
            assert_eq!(b.record(&policy, true), None);
        }
        let shared = share(&cache, CLUSTER_KEY, &policy, &[(7, a.take_unshared())]).await.unwrap();
        assert_eq!(shared, vec![], "60 in all so far");
        assert_eq!(a.take_unshared(), (0, 0), "shared once");
        // Another config counts on its own, and successes alone never trip.
        let shared = share(&cache, CLUSTER_KEY, &policy, &[(8, (99, 99)), (7, b.take_unshared())]).await.unwrap();
        assert_eq!(shared.len(), 1, "only config 7 has 100 calls: {shared:?}");
        assert_eq!(shared[0].0, 7);
        assert!(shared[0].1.contains("120 of 120 calls failed across instances"), "{shared:?}");
        assert_eq!(share(&cache, CLUSTER_KEY, &policy, &[(7, (10, 0))]).await.unwrap(), vec![]);
    }
}
