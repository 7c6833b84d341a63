//! The exportEvents buffers of written events: events are buffered per
//! plugin config and exported in one call when the buffer holds
//! `exportEventsBufferBytes` of JSON (default 1 MiB, clamped to
//! 1 B..100 MiB), when its oldest event is `exportEventsBufferSeconds` old
//! (default 10 s, clamped to 1..600 s), when the config's state is replaced
//! (config change, disable), and on shutdown. Events named in
//! `exportEventsToIgnore` (a comma list) are left out. The call and its
//! RetryError rules are [`crate::plugins::delivery`]'s, shared with
//! `phs plugins test`.
//!
//! What brought the events in is settled only once the buffer is exported
//! (or handed to a retry job), so a crash before that hands them over again:
//! exports are at least once too. Embedded, that is the `$events` jobs,
//! finished then (their leases are heartbeated meanwhile, so another worker
//! takes them within seconds of a crash). On Kafka it is the positions of
//! the stream's messages ([`Settle::Positions`]): the stream commits no
//! offset at or past the lowest one still held here ([`Exports::lowest_held`]),
//! so another instance reads them again after a crash.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};
use tokio_util::sync::CancellationToken;

use super::leases::Leases;
use crate::plugins::delivery::{self, ExportLimits};
use crate::plugins::runner::{Loaded, PluginRunner};

/// What to settle once a buffer's events are exported.
#[derive(Debug, Clone, PartialEq)]
pub enum Settle {
    /// Finish this `$events` job.
    Job(i64),
    /// Let the stream commit past these `(partition, offset)` positions.
    Positions(Vec<(i32, i64)>),
}

struct Buffer {
    plugin: Arc<Loaded>,
    limits: ExportLimits,
    events: Vec<Value>,
    bytes: usize,
    /// What brought these events, settled once they are exported.
    settle: Vec<Settle>,
    since: Instant,
}

/// The export buffers of every plugin config on this instance.
pub struct Exports {
    runner: Arc<PluginRunner>,
    leases: Arc<Leases>,
    buffers: Mutex<HashMap<i64, Buffer>>,
    /// Stream positions whose events are not yet exported, with how many
    /// buffers (or flushes under way) hold each.
    held: std::sync::Mutex<BTreeMap<(i32, i64), usize>>,
    /// Flushes of full buffers run beside whoever filled them, at most
    /// [`FLUSHES_AT_ONCE`]; one more waits, which holds back the intake.
    flushing: Arc<Semaphore>,
}

/// Full buffers exported at once in the background.
const FLUSHES_AT_ONCE: u32 = 2;

/// Events with their JSON sizes, measured here (the job queue's events).
pub fn sized(events: Vec<Value>) -> Vec<(Value, usize)> {
    events
        .into_iter()
        .map(|e| {
            let bytes = e.to_string().len();
            (e, bytes)
        })
        .collect()
}

impl Exports {
    pub fn new(runner: Arc<PluginRunner>, leases: Arc<Leases>) -> Arc<Self> {
        Arc::new(Exports {
            runner,
            leases,
            buffers: Mutex::new(HashMap::new()),
            held: Default::default(),
            flushing: Arc::new(Semaphore::new(FLUSHES_AT_ONCE as usize)),
        })
    }

    /// The lowest position of each partition whose events are not yet exported.
    pub fn lowest_held(&self) -> BTreeMap<i32, i64> {
        let mut lowest = BTreeMap::new();
        for &(partition, offset) in self.holds().keys() {
            lowest.entry(partition).or_insert(offset);
        }
        lowest
    }

    fn holds(&self) -> std::sync::MutexGuard<'_, BTreeMap<(i32, i64), usize>> {
        // A panic while holding the map leaves a valid map: recover it.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Buffers events (of one `$events` job, or of stream messages) with
    /// their JSON sizes; a buffer this fills is exported in the background,
    /// so the caller reads on (the exports' CPU is another core's).
    pub async fn add(self: &Arc<Self>, p: Arc<Loaded>, events: Vec<(Value, usize)>, settle: Settle) {
        if let Settle::Positions(positions) = &settle {
            let mut held = self.holds();
            for position in positions {
                *held.entry(*position).or_default() += 1;
            }
        }
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
                settle: Vec::new(),
                since: Instant::now(),
            });
            for (e, bytes) in events {
                if b.limits.exports(&e) {
                    b.bytes += bytes;
                    b.events.push(e);
                }
            }
            b.settle.push(settle);
            if b.bytes >= b.limits.bytes {
                ready.extend(buffers.remove(&id));
            }
        }
        for b in ready {
            let permit = self.flushing.clone().acquire_owned().await.expect("the semaphore is never closed");
            let me = self.clone();
            tokio::spawn(async move {
                let flushed = AssertUnwindSafe(me.flush(b)).catch_unwind().await;
                drop(permit);
                // A flush that panicked still holds its events' positions, so nothing past them is
                // committed again: say so and fail liveness, and a restart reads them again.
                if let Err(panic) = flushed {
                    let err = crate::error::panic_message(&*panic);
                    tracing::error!(%err, "an export buffer's flush panicked; its events wait for a restart");
                    crate::metrics::global().task_ended(format!("an export buffer's flush panicked: {err}"));
                }
            });
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
                // A list that cannot be read now says nothing about the config: the buffer stays.
                let replaced = !old
                    && self
                        .runner
                        .plugin(team_id, id)
                        .await
                        .is_ok_and(|current| current.is_none_or(|current| !Arc::ptr_eq(&current, &plugin)));
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
        // And the background flushes under way.
        let _ = self.flushing.acquire_many(FLUSHES_AT_ONCE).await;
    }

    async fn flush(&self, b: Buffer) {
        if !b.events.is_empty() {
            self.export(&b.plugin, b.events, 0).await;
        }
        for settle in b.settle {
            match settle {
                Settle::Job(id) => self.leases.finish(id).await,
                Settle::Positions(positions) => {
                    let mut held = self.holds();
                    for position in positions {
                        if let std::collections::btree_map::Entry::Occupied(mut e) = held.entry(position) {
                            *e.get_mut() -= 1;
                            if *e.get() == 0 {
                                e.remove();
                            }
                        }
                    }
                }
            }
        }
    }

    /// Calls exportEvents on a batch, queueing a retry on a RetryError.
    pub async fn export(&self, p: &Loaded, events: Vec<Value>, retries_done: i32) {
        delivery::export(&self.runner, self.leases.store(), p, events, retries_done).await;
    }
}
