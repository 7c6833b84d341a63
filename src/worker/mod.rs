//! The async side of the server: what runs after events are stored, and
//! what runs on a clock rather than on an event.
//!
//! - [`handoff`]: the pipeline's hook. After a batch is written and before
//!   its offset is committed, the batch's events are put on the durable job
//!   queue, one `$events` job per plugin config with onEvent or
//!   exportEvents. Ingestion pays one insert per batch and never waits for
//!   a plugin; delivery to onEvent and exportEvents is at least once.
//! - [`events`]: the exportEvents buffers of those jobs' events (flushed on
//!   size, age, teardown and shutdown). How onEvent, exportEvents, jobs and
//!   tasks are called and retried (RetryError: onEvent 3 attempts, 3 s
//!   doubling; exportEvents re-enqueued after 6, 12, 24 s) is
//!   [`crate::plugins::delivery`]'s, which `phs plugins test` uses too.
//! - [`jobs`]: the job worker, which claims due jobs (safely across
//!   instances) and runs them: plugin jobs, `$events`, export retries.
//! - [`schedule`]: runEveryMinute/Hour/Day on exactly one instance, under a
//!   lock in the cache.
//!
//! On Kafka the hand-off is a topic instead (`crate::pipeline::handoff`),
//! and [`stream`] consumes it: onEvent and exportEvents run there, and the
//! job queue keeps plugin jobs and export retries.

pub mod events;
pub mod handoff;
pub mod jobs;
pub mod leases;
pub mod schedule;
pub mod stream;

use std::sync::Arc;
use std::time::Duration;

use crate::cache::Cache;
use crate::plugins::runner::PluginRunner;
use crate::store::Store;
use crate::supervisor::Supervisor;
use crate::wire::Source;

pub use handoff::EventHandoff;

/// Settings of the async side.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How long the scheduler lock lives without being extended (SCHEDULE_LOCK_TTL).
    pub schedule_lock_ttl: Duration,
    /// A test-only stand-in for the minute of runEveryMinute (PHS_SCHEDULE_TICK_MS),
    /// so tests need not wait for the clock.
    pub schedule_tick: Option<Duration>,
    /// How often the job worker looks for due jobs.
    pub job_poll: Duration,
    /// Identifies this instance as the lock owner.
    pub instance_id: String,
    /// onEvent lanes per plugin config on the stream (PHS_ON_EVENT_CONCURRENCY).
    pub on_event_lanes: usize,
    /// The cache key of the schedule lock: [`schedule::LOCK_KEY`] in
    /// production; tests sharing a Redis use their own.
    pub schedule_lock_key: String,
}

impl WorkerSettings {
    /// Settings for `phs serve`, with two test-only environment variables
    /// (not flags, so they stay out of `--help` and the completions):
    /// `PHS_SCHEDULE_TICK_MS`, the scheduler's "minute" in milliseconds, so
    /// tests can trigger runEveryMinute without waiting for the clock; and
    /// `PHS_SCHEDULE_LOCK_KEY`, so tests sharing a Redis do not contend for
    /// the one schedule lock of a cluster.
    pub fn for_serve(schedule_lock_ttl: Duration, on_event_lanes: usize, instance_id: String) -> Result<Self, String> {
        let tick = match std::env::var("PHS_SCHEDULE_TICK_MS") {
            Ok(v) => Some(
                v.parse::<u64>()
                    .ok()
                    .filter(|ms| *ms >= 10)
                    .map(Duration::from_millis)
                    .ok_or_else(|| format!("PHS_SCHEDULE_TICK_MS={v}: expected milliseconds, at least 10"))?,
            ),
            Err(_) => None,
        };
        Ok(WorkerSettings {
            schedule_lock_ttl,
            schedule_tick: tick,
            job_poll: Duration::from_millis(500),
            on_event_lanes,
            instance_id,
            schedule_lock_key: std::env::var("PHS_SCHEDULE_LOCK_KEY").unwrap_or_else(|_| schedule::LOCK_KEY.into()),
        })
    }
}

/// What of the async side one instance runs (PLUGIN_SERVER_MODE).
pub struct Parts {
    /// The job worker: plugin jobs, export retries and (embedded) `$events`.
    pub jobs: bool,
    pub scheduler: bool,
    /// On Kafka: the stored-events topic's consumer, and the hooks it runs.
    pub stream: Option<(Box<dyn Source>, stream::Hooks)>,
}

/// Starts the `parts` this instance runs, and the export sweeper, under
/// `tasks`; after their stop, the job worker and the stream flush the
/// export buffers.
pub fn start(
    settings: WorkerSettings,
    parts: Parts,
    store: Arc<dyn Store>,
    cache: Arc<dyn Cache>,
    runner: Arc<PluginRunner>,
    tasks: &mut Supervisor,
) {
    let stop = tasks.stop();
    let leases = leases::Leases::new(store.clone());
    let exports = events::Exports::new(runner.clone(), leases.clone());
    tasks.spawn_infallible("export sweeper", exports.clone().sweep(stop.clone()));
    if let Some((source, hooks)) = parts.stream {
        let stream = stream::Stream::new(runner.clone(), exports.clone(), settings.on_event_lanes, hooks);
        tasks.spawn("stored-events stream", stream.run(source, stop.clone()));
    }
    if parts.scheduler {
        let lock = schedule::LockHome::of(cache, store.clone());
        let scheduler = schedule::Scheduler::new(runner.clone(), lock, &settings);
        tasks.spawn_infallible("scheduler", scheduler.run(stop.clone()));
    }
    if parts.jobs {
        let worker = jobs::JobWorker::new(leases.clone(), runner, exports.clone(), settings.job_poll);
        tasks.spawn_infallible("job lease heartbeat", leases.heartbeat(stop.clone()));
        tasks.spawn_infallible("job worker", async move {
            worker.run(stop).await;
            exports.flush_all().await;
        });
    }
}
