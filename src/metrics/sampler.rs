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
}

#[derive(Default)]
struct State {
    samples: VecDeque<Sample>,
    /// The last positions read, and the lag history per (topic, partition).
    positions: Vec<PartitionPosition>,
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
        let positions = match self.positions() {
            Some(p) => match tokio::time::timeout(Duration::from_secs(2), p.positions()).await {
                Ok(Ok(list)) => Some(list),
                Ok(Err(err)) => {
                    tracing::debug!(%err, "could not read consumer positions");
                    None
                }
                Err(_) => None,
            },
            None => Some(Vec::new()),
        };
        let mut state = lock(&self.sampler.state);
        if let Some(list) = positions {
            state.positions = list;
        }
        if state.positions.iter().all(|p| p.end <= p.committed) {
            self.progressed();
        }
        let sample = self.sample(&state.positions);
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

    /// The positions of the last sample.
    pub fn latest_positions(&self) -> Vec<PartitionPosition> {
        lock(&self.sampler.state).positions.clone()
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
            positions: state.positions.clone(),
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
