//! Liveness beyond "the process answers": ingestion that stopped while
//! events wait, or a worker stuck on one batch, makes `/_health` fail.

use std::time::Duration;

use super::Metrics;

impl Metrics {
    /// Why this instance is not live, or None. `max_stale` is HEALTHCHECK_MAX_STALE_SECONDS.
    pub fn liveness(&self, max_stale: Duration) -> Option<String> {
        let mut reasons = Vec::new();
        let waiting: i64 = self.latest_positions().iter().map(|p| (p.end - p.committed).max(0)).sum();
        let stale = self.since_progress();
        if waiting > 0 && stale > max_stale {
            reasons.push(format!(
                "nothing ingested for {} s while {waiting} events wait (HEALTHCHECK_MAX_STALE_SECONDS is {})",
                stale.as_secs(),
                max_stale.as_secs()
            ));
        }
        for w in self.workers() {
            if let Some(held) = w.holding_for().filter(|h| *h > max_stale) {
                reasons.push(format!(
                    "worker {} stuck in stage `{}` for {} s on a batch of {}",
                    w.id,
                    w.stage_name(),
                    held.as_secs(),
                    w.in_hand()
                ));
            }
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}
