//! Liveness beyond "the process answers": a supervised task that ended,
//! ingestion that stopped while events wait, a batch that keeps failing, or
//! a worker stuck on one batch makes `/_health` fail. A dependency that has
//! been unreachable as long only degrades it (200, with the reason): what
//! needs the dependency fails on its own and says so above, and a restart,
//! which a failed liveness probe brings, cannot bring a service back (phs
//! would not even start without its database or Redis).

use std::time::Duration;

use super::Metrics;

impl Metrics {
    /// A supervised task ended before shutdown: the instance is not live
    /// from now on (it is stopping, and exits non-zero).
    pub fn task_ended(&self, reason: String) {
        let mut ended = super::lock(&self.ended);
        if ended.is_none() {
            *ended = Some(reason);
        }
    }

    /// Why this instance is not live, or None. `max_stale` is
    /// HEALTHCHECK_MAX_STALE_SECONDS, `max_batch` PHS_HEALTH_MAX_BATCH_SECONDS:
    /// the longest one batch may be held or keep failing.
    pub fn liveness(&self, max_stale: Duration, max_batch: Duration) -> Option<String> {
        let mut reasons = Vec::new();
        if let Some(ended) = super::lock(&self.ended).clone() {
            reasons.push(ended);
        }
        // Each consumer on its own: one that progresses must not hide another that is stuck.
        for (consumer, positions) in self.consumer_positions() {
            let waiting: i64 = positions.iter().map(|p| (p.end - p.committed).max(0)).sum();
            let stale = self.since_progress(consumer);
            if waiting > 0 && stale > max_stale {
                let what = match consumer {
                    "ingestion" => "ingested".to_string(),
                    other => format!("handled from the {other} topic"),
                };
                reasons.push(format!(
                    "nothing {what} for {} s while {waiting} events wait (HEALTHCHECK_MAX_STALE_SECONDS is {})",
                    stale.as_secs(),
                    max_stale.as_secs()
                ));
            }
        }
        for w in self.workers() {
            let failing = w.failing();
            if let Some(f) = failing.as_ref().filter(|f| f.since.elapsed() > max_batch) {
                reasons.push(format!(
                    "worker {} failing to {} for {} s: {}",
                    w.id,
                    f.what,
                    f.since.elapsed().as_secs(),
                    f.error
                ));
            }
            if let Some(took) = w.processing_for().filter(|t| *t > max_batch) {
                reasons.push(format!(
                    "worker {} stuck processing a batch, in stage `{}`, for {} s",
                    w.id,
                    w.reading_stage_name(),
                    took.as_secs()
                ));
            }
            // A failing batch is held too; its failure says more than the stage.
            if let Some(held) = w.holding_for().filter(|h| *h > max_batch && failing.is_none()) {
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

    /// Why this instance is degraded though live: each dependency unreachable for longer than `max_down`.
    pub fn degraded(&self, max_down: Duration) -> Option<String> {
        let reasons = self.dependency_reasons(max_down);
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PartitionPosition;

    fn waiting(topic: &str, lag: i64) -> Vec<PartitionPosition> {
        vec![PartitionPosition { topic: topic.into(), partition: 0, committed: 100, end: 100 + lag }]
    }

    /// An instance running ingestion and the stored-events stream: ingestion
    /// goes on, the stream is stuck with events waiting. Before, one clock
    /// for both kept /_health green for as long as ingestion progressed.
    #[test]
    fn a_stuck_consumer_is_not_hidden_by_one_that_progresses() {
        let m = Metrics::new();
        m.set_consumer_positions(vec![
            ("ingestion", waiting("events_plugin_ingestion", 5)),
            ("stored events", waiting("phs_async_events", 7)),
        ]);
        std::thread::sleep(Duration::from_millis(30));
        m.progressed("ingestion");
        let max_stale = Duration::from_millis(20);
        let why = m.liveness(max_stale, Duration::from_secs(60)).expect("the stuck stream fails liveness");
        assert!(why.contains("nothing handled from the stored events topic") && why.contains("7 events wait"), "{why}");
        assert!(!why.contains("nothing ingested"), "ingestion progressed: {why}");
        m.progressed("stored events");
        assert_eq!(m.liveness(max_stale, Duration::from_secs(60)), None);
    }
}
