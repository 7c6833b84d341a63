//! runEveryMinute, runEveryHour and runEveryDay, on exactly one instance.
//!
//! As in the original: the instance holding the lock
//! `plugin-server:locks:schedule` (in Redis, or in process when embedded)
//! runs the tasks. Without Redis the lock is a row of Postgres
//! (`phs_lock`), which every instance of a deployment shares, so instances
//! on Postgres and Kafka alone still run each tick once. The lock lives
//! SCHEDULE_LOCK_TTL seconds; its holder
//! extends it every TTL/2 and the others try to take it every TTL/10, so
//! when the holder dies another takes over within a TTL. Tasks fire at the
//! start of each minute, hour and day (UTC). A (task, plugin config) pair
//! still running from the previous firing is skipped, not queued.
//!
//! Every instance, lock holder or not, sets up the plugins that have tasks
//! or jobs eagerly, as the original did, so their setupPlugin runs without
//! waiting for an event.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use tokio_util::sync::CancellationToken;

use super::WorkerSettings;
use crate::cache::Cache;
use crate::plugins::runner::PluginRunner;
use crate::store::Store;

pub const LOCK_KEY: &str = "plugin-server:locks:schedule";

/// Where the schedule lock is kept.
pub enum LockHome {
    /// Redis, as the original: `plugin-server:locks:schedule`.
    Cache(Arc<dyn Cache>),
    /// The database, when there is no Redis.
    Store(Arc<dyn Store>),
}

impl LockHome {
    /// Redis when the cache is shared; else Postgres, as an in-process cache
    /// would give every instance a lock of its own. Embedded, the SQLite file
    /// is one instance's, and its one writer has better things to do.
    pub fn of(cache: Arc<dyn Cache>, store: Arc<dyn Store>) -> Self {
        if cache.backend() == "redis" || store.backend() != "postgres" {
            LockHome::Cache(cache)
        } else {
            LockHome::Store(store)
        }
    }

    /// Takes `key` for `owner`, or extends it, for `ttl`; true when `owner` holds it.
    async fn lock(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, String> {
        match self {
            LockHome::Cache(cache) => cache.lock(key, owner, ttl).await.map_err(|e| e.to_string()),
            LockHome::Store(store) => store.lock(key, owner, ttl).await.map_err(|e| e.to_string()),
        }
    }

    async fn unlock(&self, key: &str, owner: &str) -> Result<bool, String> {
        match self {
            LockHome::Cache(cache) => cache.unlock(key, owner).await.map_err(|e| e.to_string()),
            LockHome::Store(store) => store.unlock(key, owner).await.map_err(|e| e.to_string()),
        }
    }
}

pub struct Scheduler {
    runner: Arc<PluginRunner>,
    lock: LockHome,
    owner: String,
    key: String,
    ttl: Duration,
    tick: Option<Duration>,
    /// (task, plugin config) pairs running now.
    running: Arc<Mutex<HashSet<(String, i64)>>>,
}

impl Scheduler {
    pub fn new(runner: Arc<PluginRunner>, lock: LockHome, settings: &WorkerSettings) -> Arc<Self> {
        Arc::new(Scheduler {
            runner,
            lock,
            owner: settings.instance_id.clone(),
            key: settings.schedule_lock_key.clone(),
            ttl: settings.schedule_lock_ttl,
            tick: settings.schedule_tick,
            running: Arc::default(),
        })
    }

    /// Takes or extends the schedule lock; true while this instance holds it.
    pub async fn hold_lock(&self) -> bool {
        match self.lock.lock(&self.key, &self.owner, self.ttl).await {
            Ok(held) => held,
            Err(err) => {
                tracing::warn!(%err, "could not take the schedule lock");
                false
            }
        }
    }

    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut held = false;
        let mut next = self.first_firing(Utc::now());
        let mut ticks: u64 = 0;
        let mut last_lock = tokio::time::Instant::now() - self.ttl;
        let mut last_setup = tokio::time::Instant::now() - Duration::from_secs(3600);
        loop {
            // Eager setup of plugins with tasks or jobs; new configs are picked up every 10 s.
            if last_setup.elapsed() >= Duration::from_secs(10) {
                last_setup = tokio::time::Instant::now();
                self.setup_eagerly().await;
            }
            let lock_every = if held { self.ttl / 2 } else { self.ttl / 10 };
            if last_lock.elapsed() >= lock_every {
                last_lock = tokio::time::Instant::now();
                let now_held = self.hold_lock().await;
                if now_held != held {
                    tracing::info!(held = now_held, "schedule lock");
                }
                held = now_held;
            }
            // The lock is this instance's only until a TTL after the extension was asked for (the
            // store's expiry is no earlier): an extension that came late (a slow store, a long eager
            // setup) must not leave two instances firing at once.
            let lock_valid = held && last_lock.elapsed() < self.ttl;
            let now = Utc::now();
            if now >= next {
                ticks += 1;
                if lock_valid {
                    for task in self.due_tasks(next, ticks) {
                        self.fire(task).await;
                    }
                }
                next = match self.tick {
                    Some(t) => now + t,
                    None => next + chrono::Duration::minutes(1),
                };
            }
            let until_next = (next - Utc::now()).to_std().unwrap_or_default();
            let nap = until_next.min(self.ttl / 10).max(Duration::from_millis(10));
            tokio::select! {
                _ = tokio::time::sleep(nap) => {}
                _ = stop.cancelled() => break,
            }
        }
        if held {
            let _ = self.lock.unlock(&self.key, &self.owner).await;
        }
    }

    fn first_firing(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self.tick {
            Some(t) => now + t,
            None => {
                let minute = now.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(now);
                minute + chrono::Duration::minutes(1)
            }
        }
    }

    /// Which tasks fire at `at`: every minute; on the hour; at midnight. With
    /// a test tick, a tick is a minute and 60 ticks an hour.
    fn due_tasks(&self, at: DateTime<Utc>, ticks: u64) -> Vec<&'static str> {
        let (hour, day) = match self.tick {
            Some(_) => (ticks % 60 == 0, ticks % 1440 == 0),
            None => (at.minute() == 0, at.minute() == 0 && at.hour() == 0),
        };
        let mut due = vec!["runEveryMinute"];
        if hour {
            due.push("runEveryHour");
        }
        if day {
            due.push("runEveryDay");
        }
        due
    }

    async fn setup_eagerly(&self) {
        for p in self.runner.all_plugins().await {
            let caps = p.vm().capabilities();
            if !caps.scheduled_tasks.is_empty() || !caps.jobs.is_empty() {
                self.runner.ensure_setup(&p).await;
            }
        }
    }

    /// Starts `task` for every plugin config that has it and is not still running it.
    pub async fn fire(&self, task: &'static str) {
        for p in self.runner.all_plugins().await {
            if !p.vm().capabilities().scheduled_tasks.iter().any(|t| t == task) {
                continue;
            }
            let key = (task.to_string(), p.config().id);
            if !self.running.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone()) {
                tracing::debug!(task, config = p.config().id, "skipped: the previous run is still going");
                continue;
            }
            let (runner, running) = (self.runner.clone(), self.running.clone());
            tokio::spawn(async move {
                crate::plugins::delivery::run_task(&runner, &p, task).await;
                running.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
            });
        }
    }
}
