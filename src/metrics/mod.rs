//! Metrics: what the pipeline counts and times, read by `/metrics`
//! (Prometheus text), `/_snapshot` (the JSON `phs top` polls), `/_health`
//! (staleness) and the StatsD exporter.
//!
//! One registry per process ([`global`]): the event path records with
//! relaxed atomics only; per-plugin-config and per-worker stats are handed
//! out once as `Arc`s and kept by their owner, so no lookup happens per
//! event. A [`sampler`] task turns counters into rates, lag history and busy
//! ratios once a second.

pub mod dependencies;
pub mod health;
pub mod primitives;
pub mod prometheus;
pub mod report;
pub mod sampler;
pub mod statsd;
pub mod workers;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use self::primitives::{Counter, Histogram, MICROS, SIZES};
pub use self::workers::{Stage, WorkerStats};
use crate::wire::Positions;

/// Recent plugin errors kept for `phs top`.
const RECENT_ERRORS: usize = 200;

pub struct Metrics {
    /// When this registry was created: the zero of every stored instant.
    epoch: Instant,
    /// Messages read from the source; on an instance that only runs the
    /// async stream, stored events read from its topic.
    pub events_in: Counter,
    /// Events written to the sink; on an instance that only runs the async
    /// stream, events handed to plugins' onEvent or exportEvents (once per plugin config).
    pub events_out: Counter,
    /// Events of hot keys and slow teams sent to the overflow topic.
    pub events_overflowed: Counter,
    /// Teams in the slow lane now (see `pipeline::slow_lane`).
    pub slow_lane_teams: AtomicI64,
    dropped: Mutex<BTreeMap<String, u64>>,
    dead_letters: Mutex<BTreeMap<String, u64>>,
    /// What the start-up check of the embedded files found, by (file, what) (see `migrate::recover`).
    recovery: Mutex<BTreeMap<(String, String), u64>>,
    stages: Vec<Histogram>,
    pub batch_size: Histogram,
    workers: Mutex<Vec<Arc<WorkerStats>>>,
    plugins: Mutex<BTreeMap<i64, Arc<PluginStats>>>,
    errors: Mutex<VecDeque<phs_report::PluginError>>,
    /// Plugin log entries waiting to be written.
    pub plugin_log_queue: AtomicI64,
    /// Per consumer (ingestion, the stored-events stream): where its lag is read.
    positions: Mutex<BTreeMap<&'static str, Arc<dyn Positions>>>,
    /// Per consumer, micros since `epoch` of its last sign of progress: a
    /// commit, or no lag at all. A consumer not in it counts from `epoch`.
    last_progress: Mutex<BTreeMap<&'static str, u64>>,
    /// Why a supervised task ended before shutdown, once one has.
    ended: Mutex<Option<String>>,
    /// The external services, as the dependency monitor last probed them.
    dependencies: Mutex<Vec<dependencies::Dependency>>,
    pub sampler: sampler::Sampler,
}

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's registry.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            epoch: Instant::now(),
            ended: Mutex::default(),
            dependencies: Mutex::default(),
            events_in: Counter::default(),
            events_out: Counter::default(),
            events_overflowed: Counter::default(),
            slow_lane_teams: AtomicI64::new(0),
            dropped: Mutex::default(),
            dead_letters: Mutex::default(),
            recovery: Mutex::default(),
            stages: Stage::ALL.iter().map(|_| Histogram::new(MICROS)).collect(),
            batch_size: Histogram::new(SIZES),
            workers: Mutex::default(),
            plugins: Mutex::default(),
            errors: Mutex::default(),
            plugin_log_queue: AtomicI64::new(0),
            positions: Mutex::default(),
            last_progress: Mutex::default(),
            sampler: sampler::Sampler::default(),
        }
    }

    fn micros_since_epoch(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_micros() as u64
    }

    pub fn stage(&self, stage: Stage) -> &Histogram {
        &self.stages[stage as usize]
    }

    /// Events that will not reach the sink, by reason (`plugin`, or a dead-letter reason).
    pub fn dropped(&self, reason: &str, n: u64) {
        *lock(&self.dropped).entry(reason.to_string()).or_default() += n;
    }

    pub fn dead_letter(&self, reason: &str) {
        *lock(&self.dead_letters).entry(reason.to_string()).or_default() += 1;
        self.dropped(reason, 1);
    }

    /// A batch of `read` messages is committed: `written` events reached the
    /// sink, `overflowed` went to the overflow topic, one dead letter per
    /// reason given, and plugins dropped the rest. Counted only once
    /// committed, so a retried batch is not counted twice.
    pub fn committed<'a>(
        &self,
        read: usize,
        written: usize,
        overflowed: usize,
        dead_letters: impl Iterator<Item = &'a str>,
    ) {
        self.events_out.add(written as u64);
        self.events_overflowed.add(overflowed as u64);
        let mut letters = 0;
        for reason in dead_letters {
            self.dead_letter(reason);
            letters += 1;
        }
        let by_plugins = read.saturating_sub(written + overflowed + letters);
        if by_plugins > 0 {
            self.dropped("plugin", by_plugins as u64);
        }
    }

    pub fn dropped_counts(&self) -> Vec<(String, u64)> {
        lock(&self.dropped).iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    pub fn dead_letter_counts(&self) -> Vec<(String, u64)> {
        lock(&self.dead_letters).iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Counts what recovering an embedded file at start did (`rows_recovered`, `rows_skipped`, ...).
    pub fn recovery(&self, file: &str, what: &str, n: u64) {
        *lock(&self.recovery).entry((file.to_string(), what.to_string())).or_default() += n;
    }

    pub fn recovery_counts(&self) -> Vec<((String, String), u64)> {
        lock(&self.recovery).iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// The stats of pipeline worker `id`, created on first use.
    pub fn worker(&self, id: u32) -> Arc<WorkerStats> {
        let mut workers = lock(&self.workers);
        if let Some(w) = workers.iter().find(|w| w.id == id) {
            return w.clone();
        }
        let w = Arc::new(WorkerStats::new(id));
        workers.push(w.clone());
        w
    }

    pub fn workers(&self) -> Vec<Arc<WorkerStats>> {
        lock(&self.workers).clone()
    }

    /// The stats of a plugin config, created on first use and kept across reloads.
    pub fn plugin(&self, config_id: i64, team_id: i64, plugin: &str) -> Arc<PluginStats> {
        let mut plugins = lock(&self.plugins);
        let stats = plugins.entry(config_id).or_insert_with(|| {
            Arc::new(PluginStats {
                config_id,
                team_id,
                plugin: plugin.to_string(),
                calls: Counter::default(),
                errors: Counter::default(),
                duration: Histogram::new(MICROS),
                memory: AtomicU64::new(0),
                disabled: AtomicBool::new(false),
            })
        });
        // A reload (re-enabled config) starts healthy.
        stats.disabled.store(false, Ordering::Relaxed);
        stats.clone()
    }

    pub fn plugins(&self) -> Vec<Arc<PluginStats>> {
        lock(&self.plugins).values().cloned().collect()
    }

    /// Counts a plugin error and keeps it, with its traceback and event, for `phs top`.
    pub fn plugin_error(&self, p: &PluginStats, error: &str, event: Option<&serde_json::Value>) {
        p.errors.add(1);
        let (message, traceback) = error.split_once('\n').unwrap_or((error, ""));
        let mut errors = lock(&self.errors);
        if errors.len() == RECENT_ERRORS {
            errors.pop_back();
        }
        errors.push_front(phs_report::PluginError {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            team_id: p.team_id,
            config_id: p.config_id,
            plugin: p.plugin.clone(),
            message: message.trim().to_string(),
            traceback: traceback.trim_end().to_string(),
            event: event.cloned(),
        });
    }

    pub fn recent_errors(&self) -> Vec<phs_report::PluginError> {
        lock(&self.errors).iter().cloned().collect()
    }

    /// Where a consumer's lag is read from (its committed offsets and log
    /// ends); `consumer` names it, so a restarted one replaces its entry.
    pub fn set_positions(&self, consumer: &'static str, positions: Arc<dyn Positions>) {
        lock(&self.positions).insert(consumer, positions);
    }

    /// Every consumer set, with where its positions are read.
    pub fn positions(&self) -> Vec<(&'static str, Arc<dyn Positions>)> {
        lock(&self.positions).iter().map(|(c, p)| (*c, p.clone())).collect()
    }

    /// `consumer` handled a batch (or has nothing to handle): resets its staleness.
    pub fn progressed(&self, consumer: &'static str) {
        lock(&self.last_progress).insert(consumer, self.micros_since_epoch(Instant::now()));
    }

    /// How long since `consumer`'s last sign of progress.
    pub fn since_progress(&self, consumer: &str) -> Duration {
        let now = self.micros_since_epoch(Instant::now());
        let last = lock(&self.last_progress).get(consumer).copied().unwrap_or(0);
        Duration::from_micros(now.saturating_sub(last))
    }
}

/// Calls, errors, duration and memory of one plugin config.
pub struct PluginStats {
    pub config_id: i64,
    pub team_id: i64,
    pub plugin: String,
    pub calls: Counter,
    pub errors: Counter,
    pub duration: Histogram,
    memory: AtomicU64,
    disabled: AtomicBool,
}

impl PluginStats {
    /// Records one call; true when it is time to refresh the memory figure.
    pub fn call(&self, took: Duration) -> bool {
        self.duration.record_duration(took);
        let n = self.calls.get();
        self.calls.add(1);
        // Reading the VM's memory takes its lock; once per 64 calls is plenty for a dashboard.
        n % 64 == 0
    }
    pub fn set_memory(&self, bytes: usize) {
        self.memory.store(bytes as u64, Ordering::Relaxed);
    }
    pub fn memory(&self) -> u64 {
        self.memory.load(Ordering::Relaxed)
    }
    pub fn disable(&self) {
        self.disabled.store(true, Ordering::Relaxed);
    }
    pub fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_committed_batch_splits_into_written_dead_lettered_and_dropped_by_plugins() {
        let m = Metrics::new();
        m.committed(10, 7, 0, ["malformed_data"].into_iter());
        m.committed(3, 3, 0, std::iter::empty());
        assert_eq!(m.events_out.get(), 10);
        assert_eq!(m.dead_letter_counts(), vec![("malformed_data".to_string(), 1)]);
        assert_eq!(m.dropped_counts(), vec![("malformed_data".to_string(), 1), ("plugin".to_string(), 2)]);
    }

    #[test]
    fn plugin_errors_keep_message_traceback_and_event_newest_first() {
        let m = Metrics::new();
        let p = m.plugin(4, 2, "broken");
        m.plugin_error(&p, "index.lua:3: boom\nstack traceback:\n\tindex.lua:3: in function 'processEvent'", None);
        m.plugin_error(&p, "second", Some(&serde_json::json!({"event": "x"})));
        let errors = m.recent_errors();
        assert_eq!(p.errors.get(), 2);
        assert_eq!((errors[0].message.as_str(), errors[0].event.is_some()), ("second", true));
        assert_eq!(errors[1].message, "index.lua:3: boom");
        assert!(errors[1].traceback.starts_with("stack traceback:"), "{:?}", errors[1].traceback);
        for _ in 0..RECENT_ERRORS {
            m.plugin_error(&p, "more", None);
        }
        assert_eq!(m.recent_errors().len(), RECENT_ERRORS, "the list is bounded");
    }
}
