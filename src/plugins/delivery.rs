//! How the async hooks are called, retried and reported: onEvent,
//! exportEvents, plugin jobs and runEvery* tasks, with the log entries and
//! the errors stored on the plugin config. The worker calls these on its
//! clock and job queue; `phs plugins test` calls the same ones with the
//! waits skipped, so a fixture proves what the server does.
//!
//! The rules are the original's (its later versions, which cut the retries
//! down):
//! - onEvent: only a `RetryError` is retried, [`ON_EVENT_ATTEMPTS`] attempts
//!   in all, waiting 3 s then 6 s. Other errors are logged and stored.
//! - exportEvents: a `RetryError` re-enqueues the batch as a durable
//!   [`EXPORT_RETRY_JOB`] after 6, 12, then 24 s; after [`EXPORT_RETRIES`]
//!   failed retries, or any other error, the batch is dropped with a log
//!   entry.
//! - plugin jobs and tasks run once; a failure is logged and stored (the
//!   original's graphile jobs had `maxAttempts: 1`).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::CallError;
use super::logs::{LogLevel, LogSource};
use super::runner::{Loaded, PluginRunner};
use crate::store::{JobQueue, NewJob};

/// Job names phs enqueues for itself; plugin job names never start with `$`.
pub const EVENTS_JOB: &str = "$events";
pub const EXPORT_RETRY_JOB: &str = "$exportEventsWithRetry";

/// Attempts of one onEvent call when it raises RetryError.
pub const ON_EVENT_ATTEMPTS: u32 = 3;
/// The wait before the second attempt; it doubles after each.
pub const ON_EVENT_BACKOFF: Duration = Duration::from_secs(3);
/// Retries of an exportEvents batch that raised RetryError.
pub const EXPORT_RETRIES: i32 = 3;

/// The wait before export retry `retry` (1-based): 6, 12, 24 s.
pub fn export_retry_wait(retry: i32) -> Duration {
    Duration::from_secs(3 << retry.clamp(0, 16))
}

/// Whether the waits between attempts are slept (the server) or skipped
/// (`phs plugins test`, where only their number matters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waits {
    Slept,
    Skipped,
}

/// Runs onEvent on each event in turn on the config's state for `lane`
/// (once set up), retrying a RetryError. Err with the reason when setup or
/// a call met an outage of the cache or storage: that is not the plugin's
/// failure, and the events from there on are not handled, so the caller
/// hands them over again later.
pub async fn on_event(runner: &PluginRunner, p: &Loaded, lane: usize, events: &[Value], waits: Waits) -> Outage {
    if !p.vm().has("onEvent") {
        return Ok(());
    }
    let vm = match runner.lane(p, lane).await {
        Ok(Some(vm)) => vm,
        Ok(None) => return Ok(()),
        Err(reason) => return Err(Stopped { handled: 0, reason }),
    };
    for (handled, event) in events.iter().enumerate() {
        // Disabled for hitting its limits (below): the rest of the job would
        // hold this worker slot for as long again.
        if p.is_disabled() {
            return Ok(());
        }
        let mut wait = ON_EVENT_BACKOFF;
        for attempt in 1..=ON_EVENT_ATTEMPTS {
            let started = std::time::Instant::now();
            let result = vm.on_event(event).await;
            if let Err(CallError::Unavailable(reason)) = &result {
                return Err(Stopped { handled, reason: reason.clone() });
            }
            p.record_call(vm, started.elapsed()).await;
            match result {
                Ok(()) => {
                    runner.count_limits(p, "onEvent", None).await;
                    break;
                }
                Err(CallError::Retry(message)) if attempt < ON_EVENT_ATTEMPTS => {
                    let note = format!(
                        "onEvent asked to retry ({message}); attempt {} of {ON_EVENT_ATTEMPTS} in {} s",
                        attempt + 1,
                        wait.as_secs()
                    );
                    runner.log(p, LogSource::System, LogLevel::Warn, note);
                    if waits == Waits::Slept {
                        tokio::time::sleep(wait).await;
                    }
                    wait *= 2;
                }
                Err(e) => {
                    let message = match &e {
                        CallError::Retry(_) => format!("onEvent failed after {ON_EVENT_ATTEMPTS} attempts: {e}"),
                        other => format!("onEvent failed: {other}"),
                    };
                    report(runner, p, &e, message, Some(event)).await;
                    // After the error is stored: a disable's reason replaces it.
                    runner.count_limits(p, "onEvent", Some(&e)).await;
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Err: an outage of a service the hook needed stopped the calls.
pub type Outage = Result<(), Stopped>;

/// Where an outage stopped a run of calls, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Stopped {
    /// Events handled before the outage; the rest were not.
    pub handled: usize,
    pub reason: String,
}

/// The export settings of one plugin config, read from its config values.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportLimits {
    /// Buffered JSON bytes that trigger an export (`exportEventsBufferBytes`).
    pub bytes: usize,
    /// Age of the oldest buffered event that triggers one (`exportEventsBufferSeconds`).
    pub age: Duration,
    /// Event names left out (`exportEventsToIgnore`, a comma list).
    pub ignore: HashSet<String>,
}

impl ExportLimits {
    /// Defaults 1 MiB (clamped to 1 B..100 MiB) and 10 s (clamped to 1..600 s).
    pub fn from_config(config: &Value) -> Self {
        let number = |key: &str| {
            config.get(key).and_then(|v| match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
        };
        let bytes = number("exportEventsBufferBytes").unwrap_or(1024.0 * 1024.0).clamp(1.0, 100.0 * 1024.0 * 1024.0);
        let secs = number("exportEventsBufferSeconds").unwrap_or(10.0).clamp(1.0, 600.0);
        let ignore = config
            .get("exportEventsToIgnore")
            .and_then(Value::as_str)
            .map(|s| s.split(',').map(|e| e.trim().to_string()).filter(|e| !e.is_empty()).collect())
            .unwrap_or_default();
        ExportLimits { bytes: bytes as usize, age: Duration::from_secs_f64(secs), ignore }
    }

    pub fn exports(&self, event: &Value) -> bool {
        !self.ignore.contains(event.get("event").and_then(Value::as_str).unwrap_or_default())
    }
}

/// Calls exportEvents on a batch; a RetryError queues retry
/// `retries_done + 1` on `queue`, up to [`EXPORT_RETRIES`].
pub async fn export(runner: &PluginRunner, queue: &dyn JobQueue, p: &Loaded, events: Vec<Value>, retries_done: i32) {
    let n = events.len();
    let result = if runner.ensure_setup(p).await {
        let started = std::time::Instant::now();
        let result = p.vm().export_events(&events).await;
        p.record_call(p.vm(), started.elapsed()).await;
        result
    } else {
        Err(CallError::Plugin { message: "setupPlugin failed".into() })
    };
    match result {
        Ok(()) => {}
        Err(CallError::Retry(message)) if retries_done < EXPORT_RETRIES => {
            let retry = retries_done + 1;
            let wait = export_retry_wait(retry);
            let job = NewJob {
                team_id: p.config().team_id,
                plugin_config_id: p.config().id,
                name: EXPORT_RETRY_JOB.into(),
                payload: json!({ "events": events }),
                attempt: retry,
                run_at: chrono::Utc::now() + wait,
            };
            let note = match queue.enqueue_jobs(&[job]).await {
                Ok(()) => format!(
                    "exportEvents asked to retry ({message}); retry {retry} of {EXPORT_RETRIES} of {n} events in {} s",
                    wait.as_secs()
                ),
                Err(err) => format!(
                    "exportEvents asked to retry ({message}) but the retry could not be queued ({err}); {n} events dropped"
                ),
            };
            runner.log(p, LogSource::System, LogLevel::Warn, note);
        }
        Err(e) => {
            let message = match &e {
                CallError::Retry(_) => {
                    format!("exportEvents failed after {EXPORT_RETRIES} retries ({e}); {n} events dropped")
                }
                other => format!("exportEvents failed ({other}); {n} events dropped"),
            };
            runner.log(p, LogSource::System, LogLevel::Error, message.clone());
            runner.record_error(p, &message, None).await;
            // After the error is stored: a disable's reason replaces it.
            runner.count_limits(p, "exportEvents", Some(&e)).await;
            return;
        }
    }
    runner.count_limits(p, "exportEvents", None).await;
}

/// Runs a queued job other than [`EVENTS_JOB`] (whose events the worker
/// buffers for export): an export retry, or one of the plugin's jobs.
pub async fn run_job(runner: &PluginRunner, queue: &dyn JobQueue, p: &Loaded, job: &NewJob) {
    if job.name == EXPORT_RETRY_JOB {
        let events = job.payload.get("events").and_then(Value::as_array).cloned().unwrap_or_default();
        return export(runner, queue, p, events, job.attempt).await;
    }
    if runner.ensure_setup(p).await {
        let result = p.vm().run_job(&job.name, &job.payload).await;
        if let Err(e) = &result {
            let message = format!("job {} failed: {e}", job.name);
            report(runner, p, e, message, None).await;
        }
        runner.count_limits(p, &format!("job {}", job.name), result.as_ref().err()).await;
    }
}

/// Runs a scheduled task (`runEveryMinute`, ...) once set up.
pub async fn run_task(runner: &PluginRunner, p: &Loaded, task: &str) {
    if runner.ensure_setup(p).await {
        let result = p.vm().run_task(task).await;
        if let Err(e) = &result {
            report(runner, p, e, format!("{task} failed: {e}"), None).await;
        }
        runner.count_limits(p, task, result.as_ref().err()).await;
    }
}

/// Logs a failed call (a limit as the system's entry, else the plugin's)
/// and stores it on the config.
async fn report(runner: &PluginRunner, p: &Loaded, e: &CallError, message: String, event: Option<&Value>) {
    let source = if e.is_limit() { LogSource::System } else { LogSource::Plugin };
    runner.log(p, source, LogLevel::Error, message.clone());
    runner.record_error(p, &message, event).await;
}
