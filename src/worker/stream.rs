//! The async side on Kafka: a consumer of the stored-events topic
//! (`clickhouse_events_json`, or phs's own when the ClickHouse topics are
//! off: `crate::pipeline::handoff`), in a consumer group of its own, so
//! `PLUGIN_SERVER_MODE=async` instances share its partitions as ingestion
//! instances share theirs.
//!
//! For each batch read, the events of teams with onEvent or exportEvents
//! plugins go to those hooks:
//! - onEvent runs on [`Stream::lanes`] lanes per plugin config at once, each
//!   a Lua state of its own; one distinct id's events go to one lane, in
//!   order. At most [`CALLS_AT_ONCE`] lanes run on an instance.
//! - exportEvents' buffers ([`super::events`]) take the events at once and
//!   flush on their own size and age, not waiting for onEvent.
//!
//! An offset is committed only once onEvent ran on its event (or gave up by
//! the retry rules) and the export buffer holding it flushed (or queued a
//! durable retry): a crash reads everything after the last commit again, so
//! both hooks see every event at least once, and a buffer's events are in
//! another instance's hands within the group's session timeout (10 s), not
//! after a lease. An outage of the cache or storage a hook needs holds the
//! batch, which is tried again; a message that is not a stored event is
//! logged, counted and skipped.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::events::{Exports, Settle};
use crate::error::{ErrorKind, Kinded};
use crate::metrics;
use crate::plugins::delivery::{self, Waits};
use crate::plugins::runner::{Loaded, PluginRunner};
use crate::wire::stored::plugin_event_from_json;
use crate::wire::{Message, Source, highest_offsets};

/// This consumer's name in the metrics (lag, staleness).
const CONSUMER: &str = "stored events";
/// Messages read per batch.
const BATCH: usize = 2000;
/// onEvent lanes running at once on one instance, over all plugin configs.
pub const CALLS_AT_ONCE: usize = 64;
/// The pause before a batch held by an outage is tried again.
const OUTAGE_PAUSE: Duration = Duration::from_secs(1);
/// How often positions are committed while nothing else happens.
const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// Which hooks a stream runs: both (PLUGIN_SERVER_MODE `async` or unset),
/// or one (`async-onevent`, `async-exports`), each in a consumer group of its
/// own so that both still see every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hooks {
    pub on_event: bool,
    pub exports: bool,
}

impl Hooks {
    /// The consumer group's suffix.
    pub fn group(&self) -> &'static str {
        match (self.on_event, self.exports) {
            (true, false) => "async-onevent",
            (false, true) => "async-exports",
            _ => "async",
        }
    }
}

pub struct Stream {
    runner: Arc<PluginRunner>,
    exports: Arc<Exports>,
    hooks: Hooks,
    /// onEvent lanes per plugin config.
    lanes: usize,
    calls: Arc<Semaphore>,
}

impl Stream {
    pub fn new(runner: Arc<PluginRunner>, exports: Arc<Exports>, lanes: usize, hooks: Hooks) -> Self {
        Stream { runner, exports, hooks, lanes: lanes.max(1), calls: Arc::new(Semaphore::new(CALLS_AT_ONCE)) }
    }

    /// Reads and hands on batches until `stop`; then flushes the export
    /// buffers and commits what they released.
    pub async fn run(self, mut source: Box<dyn Source>, stop: CancellationToken) -> Result<(), String> {
        // Its lag is shown beside ingestion's (`phs top`, /metrics), and judged by /_health.
        if let Some(positions) = source.positions() {
            metrics::global().set_positions(CONSUMER, positions);
        }
        // Per partition: the last offset whose batch is handled, and the last one committed.
        let mut handled: BTreeMap<i32, i64> = BTreeMap::new();
        let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
        let mut last_commit = tokio::time::Instant::now();
        // Since when reading has failed: logged once per streak, as an
        // unreachable broker fails every poll for as long as it is out.
        let mut failing_since: Option<tokio::time::Instant> = None;
        while !stop.is_cancelled() {
            let batch = tokio::select! {
                polled = source.poll(BATCH, Duration::from_millis(500)) => polled,
                _ = stop.cancelled() => break,
            };
            if let Some(since) = failing_since.filter(|_| batch.is_ok()) {
                failing_since = None;
                tracing::info!(failed_for_s = since.elapsed().as_secs(), "reading the stored-events topic works again");
            }
            match batch {
                Ok(batch) if !batch.is_empty() => {
                    metrics::global().events_in.add(batch.len() as u64);
                    if !self.handle(&batch, &stop).await {
                        break;
                    }
                    for (partition, offset) in highest_offsets(&batch) {
                        handled.insert(partition, offset);
                    }
                    metrics::global().progressed(CONSUMER);
                }
                Ok(_) => {}
                Err(err) if err.kind == ErrorKind::Fatal => return Err(err.to_string()),
                Err(err) => {
                    if failing_since.is_none() {
                        tracing::warn!(%err, "reading the stored-events topic failed; retrying every second until it passes");
                        failing_since = Some(tokio::time::Instant::now());
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(OUTAGE_PAUSE) => {}
                        _ = stop.cancelled() => break,
                    }
                }
            }
            if last_commit.elapsed() >= COMMIT_EVERY {
                self.commit(source.as_ref(), &handled, &mut committed).await;
                last_commit = tokio::time::Instant::now();
            }
        }
        self.exports.flush_all().await;
        self.commit(source.as_ref(), &handled, &mut committed).await;
        Ok(())
    }

    /// Commits, per partition, up to the last handled offset but before the
    /// lowest one an export buffer still holds.
    async fn commit(&self, source: &dyn Source, handled: &BTreeMap<i32, i64>, committed: &mut BTreeMap<i32, i64>) {
        let held = self.exports.lowest_held();
        let mut positions = Vec::new();
        for (&partition, &offset) in handled {
            let upto = match held.get(&partition) {
                Some(&lowest) => offset.min(lowest - 1),
                None => offset,
            };
            if upto >= 0 && committed.get(&partition).is_none_or(|&c| upto > c) {
                positions.push((partition, upto));
            }
        }
        if positions.is_empty() {
            return;
        }
        match source.commit(&positions).await {
            Ok(()) => committed.extend(positions),
            Err(err) => tracing::warn!(%err, "committing the stored-events topic failed; tried again later"),
        }
    }

    /// Hands a batch's events to their plugins. False when `stop` came
    /// while an outage held it: it is read again after a restart.
    async fn handle(&self, batch: &[Message], stop: &CancellationToken) -> bool {
        // Each event with its message's place in the batch.
        let mut by_team: BTreeMap<i64, Vec<(usize, Value)>> = BTreeMap::new();
        for (i, m) in batch.iter().enumerate() {
            match plugin_event_from_json(&m.payload) {
                // onSnapshot, not onEvent, was the original's hook for recordings.
                Ok((_, event)) if event["event"] == "$snapshot" => {}
                Ok((team_id, event)) => by_team.entry(team_id).or_default().push((i, event)),
                Err(reason) => {
                    tracing::warn!(partition = m.partition, offset = m.offset, %reason,
                        "a message of the stored-events topic is not a stored event; skipped");
                    metrics::global().dropped("async_unreadable", 1);
                }
            }
        }
        // Each event goes to its team's configs: once to the export buffer of each with exportEvents,
        // once to a lane of each with onEvent. The last of them takes it, the others a copy.
        let mut work: Vec<(Arc<Loaded>, Vec<usize>)> = Vec::new();
        let mut read: Vec<Option<(Value, usize)>> = vec![None; batch.len()];
        let mut uses = vec![0usize; batch.len()];
        for (team_id, events) in by_team {
            let Some(plugins) = self.async_plugins(team_id, stop).await else { return false };
            let plugins: Vec<_> = plugins.into_iter().filter(|p| self.runs_on(p)).collect();
            if plugins.is_empty() {
                continue;
            }
            let indices: Vec<usize> = events.iter().map(|(i, _)| *i).collect();
            for p in plugins {
                for &i in &indices {
                    uses[i] += usize::from(self.exports_on(&p)) + usize::from(self.on_event_on(&p));
                }
                work.push((p, indices.clone()));
            }
            for (i, event) in events {
                read[i] = Some((event, batch[i].payload.len()));
            }
        }
        let mut take = |i: usize| {
            uses[i] -= 1;
            if uses[i] == 0 { read[i].take() } else { read[i].clone() }.expect("each use was counted")
        };
        let handed = work.iter().map(|(_, indices)| indices.len() as u64).sum();
        let mut exports = Vec::new();
        let mut lanes = Vec::new();
        for (p, indices) in &work {
            if self.exports_on(p) {
                let mut lowest: BTreeMap<i32, i64> = BTreeMap::new();
                for &i in indices {
                    let o = lowest.entry(batch[i].partition).or_insert(batch[i].offset);
                    *o = (*o).min(batch[i].offset);
                }
                // Sized as stored: the topic's row is the event's JSON, give or take its person columns.
                let events = indices.iter().map(|&i| take(i)).collect();
                exports.push(self.exports.add(p.clone(), events, Settle::Positions(lowest.into_iter().collect())));
            }
            if self.on_event_on(p) {
                let mut by_lane: HashMap<usize, Vec<Value>> = HashMap::new();
                for &i in indices {
                    let (event, _) = take(i);
                    by_lane.entry(self.lane_of(&event)).or_default().push(event);
                }
                lanes.extend(by_lane.into_iter().map(|(lane, events)| self.on_event(p, lane, events, stop)));
            }
        }
        let (_, ran) = tokio::join!(join_all(exports), join_all(lanes));
        let finished = ran.into_iter().all(|finished| finished);
        if finished {
            metrics::global().events_out.add(handed);
        }
        finished
    }

    fn exports_on(&self, p: &Loaded) -> bool {
        self.hooks.exports && p.vm().has("exportEvents")
    }

    fn on_event_on(&self, p: &Loaded) -> bool {
        self.hooks.on_event && p.vm().has("onEvent")
    }

    /// Whether this stream runs any of the config's hooks.
    fn runs_on(&self, p: &Loaded) -> bool {
        self.exports_on(p) || self.on_event_on(p)
    }

    /// One distinct id's events go to one lane, so they reach onEvent in order.
    fn lane_of(&self, event: &Value) -> usize {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        event["distinct_id"].as_str().unwrap_or_default().hash(&mut h);
        (h.finish() % self.lanes as u64) as usize
    }

    /// Runs onEvent on one lane's events, waiting out outages from where
    /// they stopped it. False when `stop` came first.
    async fn on_event(&self, p: &Loaded, lane: usize, mut events: Vec<Value>, stop: &CancellationToken) -> bool {
        let _slot = self.calls.acquire().await.expect("the semaphore is never closed");
        loop {
            match delivery::on_event(&self.runner, p, lane, &events, Waits::Slept).await {
                Ok(()) => return true,
                Err(stopped) => {
                    tracing::warn!(config = p.config().id, reason = %stopped.reason,
                        "onEvent met an outage; its events wait");
                    events.drain(..stopped.handled);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(OUTAGE_PAUSE) => {}
                _ = stop.cancelled() => return false,
            }
        }
    }

    /// The team's async plugins, waiting while its list cannot be read.
    /// None when `stop` came first.
    async fn async_plugins(&self, team_id: i64, stop: &CancellationToken) -> Option<Vec<Arc<Loaded>>> {
        loop {
            match self.runner.async_plugins(team_id).await {
                Ok(plugins) => return Some(plugins),
                Err(err) if err.kind() == ErrorKind::Transient => {
                    tracing::warn!(team_id, %err, "the team's plugins cannot be read; its events wait");
                }
                Err(err) => {
                    tracing::error!(team_id, %err, "the team's plugins cannot be loaded; its events are skipped");
                    return Some(Vec::new());
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(OUTAGE_PAUSE) => {}
                _ = stop.cancelled() => return None,
            }
        }
    }
}
