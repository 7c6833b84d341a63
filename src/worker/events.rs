//! onEvent and exportEvents on written events, with the original's retry
//! rules (the later PostHog versions, which cut the retries down):
//!
//! - onEvent: only a `RetryError` is retried, 3 attempts in all, waiting
//!   3 s then 6 s. Other errors are logged and stored on the plugin config.
//! - exportEvents: events are buffered per plugin config and exported in
//!   one call when the buffer holds `exportEventsBufferBytes` of JSON
//!   (default 1 MiB, clamped to 1 B..100 MiB), when its oldest event is
//!   `exportEventsBufferSeconds` old (default 10 s, clamped to 1..600 s),
//!   when the config's state is replaced (config change, disable), and on
//!   shutdown. Events named in `exportEventsToIgnore` (a comma list) are
//!   left out. A `RetryError` re-enqueues the batch as a durable job after
//!   6, 12, then 24 s; after a third failed retry the batch is dropped with a
//!   log entry. Other errors drop the batch with a log entry.
//!
//! The `$events` jobs whose events sit in a buffer are finished only once
//! the buffer is exported (or handed to a retry job), so a crash before
//! that leaves them to run again: exports are at least once too.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::plugins::CallError;
use crate::plugins::logs::{LogLevel, LogSource};
use crate::plugins::runner::{Loaded, PluginRunner};
use crate::store::{JobQueue, NewJob};

/// Attempts of one onEvent call when it raises RetryError.
pub const ON_EVENT_ATTEMPTS: u32 = 3;
/// The wait before the second attempt; it doubles after each.
pub const ON_EVENT_BACKOFF: Duration = Duration::from_secs(3);
/// Retries of an exportEvents batch that raised RetryError.
pub const EXPORT_RETRIES: i32 = 3;

/// Runs onEvent on each event in turn, retrying a RetryError.
pub async fn on_event(runner: &PluginRunner, p: &Loaded, events: &[Value]) {
    for event in events {
        let mut wait = ON_EVENT_BACKOFF;
        for attempt in 1..=ON_EVENT_ATTEMPTS {
            match p.vm().on_event(event).await {
                Ok(()) => break,
                Err(CallError::Retry(message)) if attempt < ON_EVENT_ATTEMPTS => {
                    let note = format!(
                        "onEvent asked to retry ({message}); attempt {} of {ON_EVENT_ATTEMPTS} in {} s",
                        attempt + 1,
                        wait.as_secs()
                    );
                    runner.log(p, LogSource::System, LogLevel::Warn, note);
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => {
                    let message = match &e {
                        CallError::Retry(m) => format!("onEvent failed after {ON_EVENT_ATTEMPTS} attempts: {m}"),
                        other => format!("onEvent failed: {other}"),
                    };
                    let source = if e.is_limit() { LogSource::System } else { LogSource::Plugin };
                    runner.log(p, source, LogLevel::Error, message.clone());
                    runner.record_error(p, &message, Some(event)).await;
                    break;
                }
            }
        }
    }
}

/// The export settings of one plugin config, read from its config values.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportLimits {
    pub bytes: usize,
    pub age: Duration,
    pub ignore: HashSet<String>,
}

impl ExportLimits {
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
}

struct Buffer {
    plugin: Arc<Loaded>,
    limits: ExportLimits,
    events: Vec<Value>,
    bytes: usize,
    /// The `$events` jobs to finish once these events are exported.
    jobs: Vec<i64>,
    since: Instant,
}

/// The export buffers of every plugin config on this instance.
pub struct Exports {
    runner: Arc<PluginRunner>,
    store: Arc<dyn JobQueue>,
    buffers: Mutex<HashMap<i64, Buffer>>,
}

impl Exports {
    pub fn new(runner: Arc<PluginRunner>, store: Arc<dyn JobQueue>) -> Arc<Self> {
        Arc::new(Exports { runner, store, buffers: Mutex::new(HashMap::new()) })
    }

    /// Buffers the events of one `$events` job; exports when the buffer is full.
    pub async fn add(&self, p: Arc<Loaded>, events: Vec<Value>, job_id: i64) {
        let mut ready = Vec::new();
        {
            let mut buffers = self.buffers.lock().await;
            let id = p.config().id;
            // A new state for the config (its settings changed): the old buffer goes out first.
            if buffers.get(&id).is_some_and(|b| !Arc::ptr_eq(&b.plugin, &p)) {
                ready.extend(buffers.remove(&id));
            }
            let b = buffers.entry(id).or_insert_with(|| Buffer {
                limits: ExportLimits::from_config(&p.config().config),
                plugin: p.clone(),
                events: Vec::new(),
                bytes: 0,
                jobs: Vec::new(),
                since: Instant::now(),
            });
            for e in events {
                let name = e.get("event").and_then(Value::as_str).unwrap_or_default();
                if !b.limits.ignore.contains(name) {
                    b.bytes += e.to_string().len();
                    b.events.push(e);
                }
            }
            b.jobs.push(job_id);
            if b.bytes >= b.limits.bytes {
                ready.extend(buffers.remove(&id));
            }
        }
        for b in ready {
            self.flush(b).await;
        }
    }

    /// Flushes buffers that are old enough or whose state was replaced,
    /// every 250 ms until `stop`.
    pub async fn sweep(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = stop.cancelled() => return,
            }
            let candidates: Vec<(i64, i64, Arc<Loaded>, bool)> = {
                let buffers = self.buffers.lock().await;
                buffers
                    .iter()
                    .map(|(id, b)| {
                        (*id, b.plugin.config().team_id, b.plugin.clone(), b.since.elapsed() >= b.limits.age)
                    })
                    .collect()
            };
            for (id, team_id, plugin, old) in candidates {
                let replaced =
                    !old && self.runner.plugin(team_id, id).await.is_none_or(|current| !Arc::ptr_eq(&current, &plugin));
                if old || replaced {
                    let taken = self.buffers.lock().await.remove(&id);
                    if let Some(b) = taken {
                        self.flush(b).await;
                    }
                }
            }
        }
    }

    /// Exports everything buffered (on shutdown).
    pub async fn flush_all(&self) {
        let all: Vec<Buffer> = self.buffers.lock().await.drain().map(|(_, b)| b).collect();
        for b in all {
            self.flush(b).await;
        }
    }

    async fn flush(&self, b: Buffer) {
        if !b.events.is_empty() {
            self.export(&b.plugin, b.events, 0).await;
        }
        for id in b.jobs {
            if let Err(err) = self.store.finish_job(id).await {
                tracing::warn!(job = id, %err, "could not finish an exported events job; it will run again");
            }
        }
    }

    /// Calls exportEvents on a batch; a RetryError schedules retry
    /// `retries_done + 1` as a durable job, up to [`EXPORT_RETRIES`].
    pub async fn export(&self, p: &Loaded, events: Vec<Value>, retries_done: i32) {
        let n = events.len();
        let result = if self.runner.ensure_setup(p).await {
            p.vm().export_events(&events).await
        } else {
            Err(CallError::Plugin { message: "setupPlugin failed".into() })
        };
        match result {
            Ok(()) => {}
            Err(CallError::Retry(message)) if retries_done < EXPORT_RETRIES => {
                let retry = retries_done + 1;
                let wait = Duration::from_secs(3 << retry);
                let job = NewJob {
                    team_id: p.config().team_id,
                    plugin_config_id: p.config().id,
                    name: super::EXPORT_RETRY_JOB.into(),
                    payload: json!({ "events": events }),
                    attempt: retry,
                    run_at: chrono::Utc::now() + wait,
                };
                let note = match self.store.enqueue_jobs(&[job]).await {
                    Ok(()) => format!(
                        "exportEvents asked to retry ({message}); retry {retry} of {EXPORT_RETRIES} of {n} events in {} s",
                        wait.as_secs()
                    ),
                    Err(err) => format!(
                        "exportEvents asked to retry ({message}) but the retry could not be queued ({err}); {n} events dropped"
                    ),
                };
                self.runner.log(p, LogSource::System, LogLevel::Warn, note);
            }
            Err(e) => {
                let message = match &e {
                    CallError::Retry(m) => {
                        format!("exportEvents failed after {EXPORT_RETRIES} retries ({m}); {n} events dropped")
                    }
                    other => format!("exportEvents failed ({other}); {n} events dropped"),
                };
                self.runner.log(p, LogSource::System, LogLevel::Error, message.clone());
                self.runner.record_error(p, &message, None).await;
            }
        }
    }
}
