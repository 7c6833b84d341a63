//! Once a second: read consumer positions, and keep a minute of samples so
//! rates, lag history, busy ratios and recent quantiles can be reported
//! without the event path doing any of that work.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::primitives::Buckets;
use super::{Metrics, lock};
use crate::wire::PartitionPosition;

/// Samples kept: one a second for a minute.
pub const WINDOW: usize = 60;
/// Rates (events/s, catch-up) are taken over this many seconds.
pub const RATE_SECONDS: usize = 5;
pub const PERIOD: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Sampler {
    state: Mutex<State>,
    /// The positions read under way, kept across ticks until it ends: on a
    /// loaded broker one read (the committed offsets and each partition's
    /// log end, one round trip each) can take longer than a tick waits for
    /// it, and a read dropped at every tick never ends at all. The health
    /// check then kept the last positions it had, with events waiting, and
    /// reported "nothing ingested" long after they were all committed.
    reading: Mutex<Option<Reading>>,
}

/// Each consumer's positions, in one read.
pub type Consumers = Vec<(&'static str, Vec<PartitionPosition>)>;
type Reading = tokio::task::JoinHandle<Result<Consumers, crate::error::PipeError>>;

/// The positions of every consumer, as one list.
fn all(consumers: &Consumers) -> Vec<PartitionPosition> {
    consumers.iter().flat_map(|(_, list)| list.iter().cloned()).collect()
}

/// How long one tick waits for the positions read before sampling without it.
const READ_WAIT: Duration = Duration::from_secs(2);

#[derive(Default)]
struct State {
    samples: VecDeque<Sample>,
    /// The last positions read, per consumer, and the lag history per
    /// (topic, partition).
    consumers: Consumers,
    lag_history: HashMap<(String, i32), VecDeque<u64>>,
    /// Busy ratio per worker over the last period.
    busy: HashMap<u32, f64>,
}

#[derive(Clone)]
pub struct Sample {
    pub at: Instant,
    pub events_in: u64,
    pub events_out: u64,
    pub batch: Buckets,
    /// Per plugin config: calls, errors, duration buckets.
    pub plugins: HashMap<i64, (u64, u64, Buckets)>,
    /// Per worker: busy micros so far.
    pub busy: HashMap<u32, u64>,
    pub lag: HashMap<(String, i32), i64>,
}

/// What the report needs from the sampler: the newest sample and the ones
/// `RATE_SECONDS` and a minute before it.
pub struct Window {
    pub newest: Sample,
    pub rate_base: Sample,
    pub minute_base: Sample,
    pub positions: Vec<PartitionPosition>,
    pub lag_history: HashMap<(String, i32), Vec<u64>>,
    pub busy: HashMap<u32, f64>,
}

impl Metrics {
    fn sample(&self, positions: &[PartitionPosition]) -> Sample {
        Sample {
            at: Instant::now(),
            events_in: self.events_in.get(),
            events_out: self.events_out.get(),
            batch: self.stage(super::Stage::Batch).read(),
            plugins: self
                .plugins()
                .iter()
                .map(|p| (p.config_id, (p.calls.get(), p.errors.get(), p.duration.read())))
                .collect(),
            busy: self.workers().iter().map(|w| (w.id, w.busy_micros())).collect(),
            lag: positions.iter().map(|p| ((p.topic.clone(), p.partition), p.end - p.committed)).collect(),
        }
    }

    /// Takes one sample (reading positions first); the sampler task calls it every [`PERIOD`].
    pub async fn tick(&self) {
        let positions = self.read_positions().await;
        let mut state = lock(&self.sampler.state);
        if let Some(consumers) = positions {
            state.consumers = consumers;
        }
        for (consumer, list) in &state.consumers {
            if list.iter().all(|p| p.end <= p.committed) {
                self.progressed(consumer);
            }
        }
        let sample = self.sample(&all(&state.consumers));
        for (key, lag) in &sample.lag {
            let h = state.lag_history.entry(key.clone()).or_default();
            if h.len() == WINDOW {
                h.pop_front();
            }
            h.push_back((*lag).max(0) as u64);
        }
        let busy: HashMap<u32, f64> = match state.samples.back() {
            Some(prev) => {
                let wall = sample.at.duration_since(prev.at).as_micros().max(1) as f64;
                sample
                    .busy
                    .iter()
                    .map(|(id, b)| {
                        let before = prev.busy.get(id).copied().unwrap_or(0);
                        (*id, (b.saturating_sub(before) as f64 / wall).clamp(0.0, 1.0))
                    })
                    .collect()
            }
            None => HashMap::new(),
        };
        state.busy = busy;
        if state.samples.len() == WINDOW + 1 {
            state.samples.pop_front();
        }
        state.samples.push_back(sample);
    }

    /// The consumer positions, when a read ends within [`READ_WAIT`]: the
    /// read left running by the previous tick, or a new one.
    async fn read_positions(&self) -> Option<Consumers> {
        let sources = self.positions();
        if sources.is_empty() {
            return Some(Vec::new());
        }
        let taken = lock(&self.sampler.reading).take();
        let mut reading = taken.unwrap_or_else(|| {
            tokio::spawn(async move {
                let mut consumers = Vec::with_capacity(sources.len());
                for (consumer, source) in sources {
                    consumers.push((consumer, source.positions().await?));
                }
                Ok(consumers)
            })
        });
        match tokio::time::timeout(READ_WAIT, &mut reading).await {
            Ok(Ok(Ok(list))) => Some(list),
            Ok(Ok(Err(err))) => {
                tracing::debug!(%err, "could not read consumer positions");
                None
            }
            Ok(Err(panic)) => {
                tracing::warn!(%panic, "reading consumer positions failed");
                None
            }
            Err(_) => {
                *lock(&self.sampler.reading) = Some(reading);
                None
            }
        }
    }

    /// Reads under way (0 or 1), for tests.
    #[cfg(test)]
    fn reads_under_way(&self) -> usize {
        lock(&self.sampler.reading).iter().count()
    }

    /// The positions of the last sample, of every consumer.
    pub fn latest_positions(&self) -> Vec<PartitionPosition> {
        all(&lock(&self.sampler.state).consumers)
    }

    /// Sets the positions as if a tick had read them.
    #[cfg(test)]
    pub(super) fn set_consumer_positions(&self, consumers: Consumers) {
        lock(&self.sampler.state).consumers = consumers;
    }

    /// The positions of the last sample, per consumer.
    pub fn consumer_positions(&self) -> Consumers {
        lock(&self.sampler.state).consumers.clone()
    }

    /// The current window; takes a sample first when none exists yet.
    pub async fn window(&self) -> Window {
        if lock(&self.sampler.state).samples.is_empty() {
            self.tick().await;
        }
        let state = lock(&self.sampler.state);
        let n = state.samples.len();
        let newest = state.samples[n - 1].clone();
        let rate_base = state.samples[n.saturating_sub(RATE_SECONDS + 1)].clone();
        let minute_base = state.samples[0].clone();
        Window {
            newest,
            rate_base,
            minute_base,
            positions: all(&state.consumers),
            lag_history: state.lag_history.iter().map(|(k, v)| (k.clone(), v.iter().copied().collect())).collect(),
            busy: state.busy.clone(),
        }
    }
}

/// Samples every [`PERIOD`] until `stop`.
pub async fn run(metrics: &'static Metrics, stop: CancellationToken) {
    let mut every = tokio::time::interval(PERIOD);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => metrics.tick().await,
            _ = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::error::PipeError;
    use crate::wire::Positions;

    /// A broker that answers each positions read after `slow`: everything committed.
    struct Slow {
        slow: Duration,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl Positions for Slow {
        async fn positions(&self) -> Result<Vec<PartitionPosition>, PipeError> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.slow).await;
            Ok(vec![PartitionPosition { topic: "events".into(), partition: 0, committed: 10_080, end: 10_080 }])
        }
    }

    /// A read slower than a tick waits for ends during a later tick and is
    /// used; before, each tick dropped its read and started another, so the
    /// positions (10,080 events waiting) never changed again. Counted, not
    /// timed: one read for all the ticks, and its answer taken.
    #[tokio::test]
    async fn a_read_slower_than_a_tick_is_kept_until_it_ends() {
        let m = Metrics::new();
        let broker = Arc::new(Slow { slow: READ_WAIT * 3 / 2, reads: AtomicUsize::new(0) });
        let waiting = vec![PartitionPosition { topic: "events".into(), partition: 0, committed: 0, end: 10_080 }];
        m.set_consumer_positions(vec![("ingestion", waiting)]);
        m.set_positions("ingestion", broker.clone());
        m.tick().await;
        assert_eq!(m.reads_under_way(), 1, "the first tick leaves its read running");
        assert_eq!(m.latest_positions()[0].committed, 0);
        let mut ticks = 1;
        while m.latest_positions()[0].committed == 0 && ticks < 5 {
            m.tick().await;
            ticks += 1;
        }
        assert_eq!(m.latest_positions()[0].committed, 10_080, "a later tick used the read that ended");
        assert_eq!(m.reads_under_way(), 0);
        assert_eq!(broker.reads.load(Ordering::Relaxed), 1, "one read over {ticks} ticks, not one per tick");
    }
}
