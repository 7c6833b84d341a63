//! The ingestion pipeline: source -> normalize -> team -> plugins -> prepare
//! -> persons -> sink, then commit.
//!
//! A batch is read from the source, each message goes through the stages,
//! the surviving rows (events, and the person, distinct id and group rows
//! their persons step changed) are written to the sink, the written events
//! are queued for onEvent/exportEvents ([`crate::wire::Handoff`]),
//! messages that cannot be ingested go to the dead-letter queue, and only
//! then is the highest offset of every partition in the batch committed:
//! at-least-once, never at-most-once. Every failure decides by its kind
//! ([`crate::error::ErrorKind`]): a transient one is retried with backoff
//! before anything is committed, so an outage pauses consumption instead of
//! losing events; a data one is narrowed down to the messages at fault
//! (`bisect`), which are dead-lettered while the rest flows on; a fatal one
//! stops the pipeline. The loop (`run`) reads and processes the next batch
//! while the current one is written.
//!
//! Within a batch, events of one (team, distinct_id) are processed in order
//! and different keys concurrently. The same loop runs embedded (local log ->
//! SQLite) and in production (Kafka -> ClickHouse and the ClickHouse topics).

mod bisect;
pub mod capture;
pub mod definitions;
pub mod handoff;
pub mod normalize;
pub mod overflow;
pub mod persons;
pub mod prepare;
mod retry;
mod run;
pub mod shards;
pub mod sink;
pub mod slow_lane;
pub mod source;
pub mod team;

use std::sync::Arc;

use self::shards::{Messages, Stages, on_every, shard_of};
use self::sink::{DeadLetter, DeadLetterQueue, EventSink, SinkBatch};
use self::team::TeamCache;
use crate::metrics::{self, Stage};
use crate::plugins::runner::PluginRunner;

/// Messages read per batch.
pub const BATCH: usize = 5000;

/// The overflow lane reads at most this often unless its batches are
/// full. Its events (slow teams', hot keys') trickle in a few at a time,
/// and each batch is a round of writes and a commit, fsyncs included,
/// that share the database with the main pipeline's: gathered, they cost
/// it one round per period instead of one per trickle, and the lane's
/// events wait at most this much longer.
pub const OVERFLOW_LINGER: std::time::Duration = std::time::Duration::from_millis(500);

/// Times a batch is processed again at once after a persons conflict.
const CONFLICT_RETRIES: usize = 5;

/// An event waiting for its key's turn, with its place in the batch.
struct Keyed {
    index: usize,
    anonymize_ips: bool,
    /// Its team's token, which the overflow lane's key is made of.
    token: String,
    event: serde_json::Map<String, serde_json::Value>,
}

pub struct Pipeline {
    /// What the shards run: team lookup, plugins, persons, overflow.
    stages: Stages,
    pub sink: Arc<dyn EventSink>,
    pub dlq: Arc<dyn DeadLetterQueue>,
    /// Hands written events to onEvent/exportEvents (the async side), if any.
    pub handoff: Option<Arc<dyn crate::wire::Handoff>>,
    /// Gets every processed batch, to keep event and property definitions.
    definitions: Option<Arc<definitions::Definitions>>,
    /// Whether this pipeline's source is the one whose lag `phs top` shows.
    /// Names this consumer's lag in the metrics: `ingestion` or `overflow`.
    consumer: &'static str,
    /// The least time between two polls after a batch that was not full
    /// (the overflow lane's: [`OVERFLOW_LINGER`]); none for the main topic.
    linger: Option<std::time::Duration>,
    /// Shards a batch is processed on (WORKER_CONCURRENCY).
    shards: usize,
}

/// What [`Pipeline::process`] made of a batch. Messages are named by their
/// index in the batch, which the loop keeps until the batch is committed.
struct Staged {
    rows: SinkBatch,
    letters: Vec<Refused>,
    /// Messages of hot keys, with their keys, for the overflow topic.
    rerouted: Vec<(String, usize)>,
    /// For each of `rows.events`, the index of its message in the batch.
    origins: Vec<usize>,
    /// The persons' resync marks that `rows` settle once written ([`persons::Persons::settle`]).
    marks: Vec<i64>,
}

/// A message of the batch that cannot be ingested, and why: a dead letter
/// once it is paired with its message.
struct Refused {
    index: usize,
    reason: &'static str,
    detail: String,
    stage: &'static str,
    team_id: Option<i64>,
}

impl Refused {
    fn letter<'m>(&self, messages: &'m [crate::wire::Message]) -> DeadLetter<'m> {
        DeadLetter {
            message: &messages[self.index],
            reason: self.reason,
            detail: self.detail.clone(),
            stage: self.stage,
            team_id: self.team_id,
        }
    }
}

impl Pipeline {
    /// A pipeline on one shard, one key at a time, until
    /// [`Pipeline::with_shards`] says otherwise. `plugins` should have a Lua
    /// state per shard ([`crate::plugins::runner::RunnerOptions::states`]).
    pub fn new(
        teams: Arc<TeamCache>,
        plugins: Arc<PluginRunner>,
        persons: Arc<persons::Persons>,
        sink: Arc<dyn EventSink>,
        dlq: Arc<dyn DeadLetterQueue>,
    ) -> Self {
        Pipeline {
            stages: Stages {
                teams,
                plugins,
                persons,
                overflow: None,
                slow: None,
                worker: metrics::global().worker(0),
                tasks: 1,
            },
            sink,
            dlq,
            handoff: None,
            definitions: None,
            consumer: "ingestion",
            linger: None,
            shards: 1,
        }
    }

    /// Processes each batch on `shards` tasks (at least 1), each running
    /// `tasks` of its (team, distinct_id) keys at once.
    pub fn with_shards(mut self, shards: usize, tasks: usize) -> Self {
        self.shards = shards.max(1);
        self.stages.tasks = tasks.max(1);
        self
    }

    /// Sends keys over their burst to the overflow topic.
    pub fn with_overflow(mut self, overflow: Arc<overflow::Overflow>) -> Self {
        self.stages.overflow = Some(overflow);
        self
    }

    /// Shares the slow teams between the main pipeline, which cuts their
    /// calls at the budget and sends them to the overflow topic (given
    /// [`Pipeline::with_overflow`]), and the overflow one, which runs them.
    pub fn with_slow_lane(mut self, slow: Arc<slow_lane::SlowTeams>) -> Self {
        self.stages.slow = Some(slow);
        self
    }

    /// Makes this the pipeline of the overflow topic: worker 1 in the
    /// metrics, its lag reported beside the main topic's, its polls paced
    /// by [`OVERFLOW_LINGER`].
    pub fn consuming_overflow(mut self) -> Self {
        self.stages.worker = metrics::global().worker(1);
        self.consumer = "overflow";
        self.linger = Some(OVERFLOW_LINGER);
        self
    }

    pub fn with_definitions(mut self, definitions: Arc<definitions::Definitions>) -> Self {
        self.definitions = Some(definitions);
        self
    }

    /// After each batch is written and before it is committed, its events are
    /// queued durably for onEvent/exportEvents: at-least-once delivery to them.
    pub fn with_handoff(mut self, handoff: Arc<dyn crate::wire::Handoff>) -> Self {
        self.handoff = Some(handoff);
        self
    }

    fn worker(&self) -> &metrics::WorkerStats {
        &self.stages.worker
    }

    /// [`Pipeline::process`], redone at once when its persons conflicted with
    /// another writer (the retry decides from fresh reads); other failures,
    /// and conflicts that keep coming, go to the caller's backoff.
    async fn process_fresh(&self, messages: &Messages) -> Result<Staged, crate::store::StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.process(messages).await {
                Err(crate::store::StoreError::Conflict(why)) if attempt < CONFLICT_RETRIES => {
                    tracing::debug!(%why, attempt, "persons changed concurrently; processing the batch again");
                }
                other => return other,
            }
        }
    }

    /// Runs the stages on a batch: the rows to write and the dead letters.
    ///
    /// Every shard sorts its messages into keys, the batch's persons (and
    /// those of the ids they would merge with) are read in one query per
    /// team, then every shard runs its keys; see [`shards`]. Events of one
    /// (team, distinct_id) go through plugins and persons in batch order,
    /// and the rows come back in batch order.
    async fn process(&self, messages: &Messages) -> Result<Staged, crate::store::StoreError> {
        let w = self.worker();
        let mut mine: Vec<Vec<usize>> = vec![Vec::new(); self.shards];
        for (index, m) in messages.iter().enumerate() {
            mine[shard_of(&m.payload, self.shards)].push(index);
        }
        let sorting = mine.into_iter().enumerate().filter(|(_, mine)| !mine.is_empty()).map(|(slot, mine)| {
            let (stages, messages) = (self.stages.clone(), messages.clone());
            async move { Ok((slot, stages.sort(&messages, &mine).await?)) }
        });
        let mut sorted = on_every(sorting).await?;
        let (mut letters, mut rerouted) = (Vec::new(), Vec::new());
        for (_, s) in &mut sorted {
            letters.append(&mut s.letters);
            rerouted.append(&mut s.rerouted);
        }
        let persons = Arc::new(self.stages.persons.batch());
        let mut ids: Vec<(i64, &str)> = Vec::new();
        for ((team, id), events) in sorted.iter().flat_map(|(_, s)| &s.keys) {
            // Personless events read no person: a key with only those needs no read.
            let personless = |k: &Keyed| {
                k.event.get("properties").and_then(|p| p.as_object()).is_some_and(persons::ids::is_personless)
            };
            if events.iter().all(personless) {
                continue;
            }
            ids.push((*team, id));
            ids.extend(events.iter().filter_map(|k| persons::ids::other_distinct_id(&k.event)).map(|o| (*team, o)));
        }
        ids.sort_unstable();
        ids.dedup();
        w.timed(Stage::Persons, self.stages.persons.prefetch(&persons, &ids)).await?;
        let running = sorted.into_iter().map(|(slot, s)| {
            let (stages, persons) = (self.stages.clone(), persons.clone());
            async move { stages.run(slot, s.keys, &persons).await }
        });
        let mut done: Vec<shards::Done> = Vec::new();
        for mut ran in on_every(running).await? {
            done.append(&mut ran.done);
            rerouted.append(&mut ran.rerouted);
        }
        done.sort_unstable_by_key(|(index, _, _)| *index);
        // A key's events reach the overflow topic in batch order, whichever pass sent them.
        rerouted.sort_unstable_by_key(|(_, index)| *index);
        // Every shard is done with it (on_every waited for all), so this is its only holder.
        let Some(persons) = Arc::into_inner(persons) else {
            return Err(crate::store::StoreError::Conflict("the batch's persons are still in use".into()));
        };
        let mut batch = SinkBatch::default();
        let mut changes = w.timed(Stage::Persons, self.stages.persons.flush(persons)).await?;
        let marks = std::mem::take(&mut changes.marks);
        changes.into_batch(&mut batch);
        let mut origins = Vec::with_capacity(done.len());
        for (index, row, changes) in done {
            changes.into_batch(&mut batch);
            batch.events.push(row);
            origins.push(index);
        }
        Ok(Staged { rows: batch, letters, rerouted, origins, marks })
    }
}
