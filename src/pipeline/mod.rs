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
pub mod normalize;
pub mod overflow;
pub mod persons;
pub mod prepare;
mod retry;
mod run;
pub mod sink;
pub mod source;
pub mod team;

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt, stream};

use self::sink::{DeadLetter, DeadLetterQueue, EventSink, SinkBatch};
use self::team::TeamCache;
use crate::metrics::{self, Stage, WorkerStats};
use crate::plugins::runner::{Outcome, PluginRunner};

/// Messages read per batch.
pub const BATCH: usize = 5000;

/// Messages decoded between yields to the runtime.
const YIELD_EVERY: usize = 256;

/// Times a batch is processed again at once after a persons conflict.
const CONFLICT_RETRIES: usize = 5;

/// (team, distinct_id) keys processed at once within a batch, unless set
/// with [`Pipeline::with_keys_in_parallel`].
const KEYS_IN_PARALLEL: usize = 32;

/// An event waiting for its key's turn, with its place in the batch.
struct Keyed {
    index: usize,
    anonymize_ips: bool,
    event: serde_json::Map<String, serde_json::Value>,
}

pub struct Pipeline {
    /// Shared with the capture endpoint, which checks tokens against the same cache.
    pub teams: Arc<TeamCache>,
    pub plugins: Arc<PluginRunner>,
    pub persons: Arc<persons::Persons>,
    pub sink: Arc<dyn EventSink>,
    pub dlq: Arc<dyn DeadLetterQueue>,
    /// Hands written events to onEvent/exportEvents (the async side), if any.
    pub handoff: Option<Arc<dyn crate::wire::Handoff>>,
    /// Reroutes hot keys' messages (the main pipeline only).
    overflow: Option<Arc<overflow::Overflow>>,
    /// Gets every processed batch, to keep event and property definitions.
    definitions: Option<Arc<definitions::Definitions>>,
    /// Whether this pipeline's source is the one whose lag `phs top` shows.
    reports_lag: bool,
    worker: Arc<WorkerStats>,
    keys_in_parallel: usize,
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
    pub fn new(
        teams: Arc<TeamCache>,
        plugins: Arc<PluginRunner>,
        persons: Arc<persons::Persons>,
        sink: Arc<dyn EventSink>,
        dlq: Arc<dyn DeadLetterQueue>,
    ) -> Self {
        Pipeline {
            teams,
            plugins,
            persons,
            sink,
            dlq,
            handoff: None,
            overflow: None,
            definitions: None,
            reports_lag: true,
            worker: metrics::global().worker(0),
            keys_in_parallel: KEYS_IN_PARALLEL,
        }
    }

    /// After each batch is written and before it is committed, its events are
    /// queued durably for onEvent/exportEvents: at-least-once delivery to them.
    /// How many (team, distinct_id) keys of a batch run at once (at least 1).
    pub fn with_keys_in_parallel(mut self, n: usize) -> Self {
        self.keys_in_parallel = n.max(1);
        self
    }

    /// Sends keys over their burst to the overflow topic.
    pub fn with_overflow(mut self, overflow: Arc<overflow::Overflow>) -> Self {
        self.overflow = Some(overflow);
        self
    }

    /// Makes this the pipeline of the overflow topic: worker 1 in the
    /// metrics, and its lag not reported as the main topic's.
    pub fn consuming_overflow(mut self) -> Self {
        self.worker = metrics::global().worker(1);
        self.reports_lag = false;
        self
    }

    pub fn with_definitions(mut self, definitions: Arc<definitions::Definitions>) -> Self {
        self.definitions = Some(definitions);
        self
    }

    pub fn with_handoff(mut self, handoff: Arc<dyn crate::wire::Handoff>) -> Self {
        self.handoff = Some(handoff);
        self
    }

    /// [`Pipeline::process`], redone at once when its persons conflicted with
    /// another writer (the retry decides from fresh reads); other failures,
    /// and conflicts that keep coming, go to the caller's backoff.
    async fn process_fresh(&self, messages: &[crate::wire::Message]) -> Result<Staged, crate::store::StoreError> {
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
    /// Events of one (team, distinct_id) go through plugins and persons in
    /// batch order; different keys run concurrently, so one busy person does
    /// not hold up the others, and the rows come back in batch order.
    async fn process(&self, messages: &[crate::wire::Message]) -> Result<Staged, crate::store::StoreError> {
        let mut letters = Vec::new();
        let mut rerouted = Vec::new();
        let mut keys: HashMap<(i64, String), Vec<Keyed>> = HashMap::new();
        let w = &self.worker;
        for (index, m) in messages.iter().enumerate() {
            if index % YIELD_EVERY == YIELD_EVERY - 1 {
                // Decoding a batch awaits nothing else: let the writing and polling tasks on this thread run.
                tokio::task::yield_now().await;
            }
            let decoded = match w.timed_sync(Stage::Normalize, || normalize::decode(&m.payload)) {
                Ok(d) => d,
                Err(e) => {
                    letters.push(Refused {
                        index,
                        reason: e.reason(),
                        detail: e.to_string(),
                        stage: "normalize",
                        team_id: None,
                    });
                    continue;
                }
            };
            let distinct_id = decoded.event.get("distinct_id").and_then(|d| d.as_str()).unwrap_or_default();
            if let Some(key) = self.overflow.as_ref().and_then(|o| o.reroute_key(&decoded.token, distinct_id)) {
                rerouted.push((key, index));
                continue;
            }
            let Some(team) = w.timed(Stage::Team, self.teams.by_token(&decoded.token)).await? else {
                letters.push(Refused {
                    index,
                    reason: "unknown_token",
                    detail: format!("no team has the API token `{}`", decoded.token),
                    stage: "team",
                    team_id: None,
                });
                continue;
            };
            let mut event = decoded.event;
            if team.anonymize_ips {
                event.insert("ip".into(), serde_json::Value::Null);
            }
            let distinct_id = event.get("distinct_id").and_then(|d| d.as_str()).unwrap_or_default().to_string();
            keys.entry((team.id, distinct_id)).or_default().push(Keyed {
                index,
                anonymize_ips: team.anonymize_ips,
                event,
            });
        }
        // The persons of the batch's distinct ids, and of the ids they would
        // merge with, are read in one query per team.
        let persons = self.persons.batch();
        let mut teams: HashMap<i64, Vec<&str>> = HashMap::new();
        for ((team, id), events) in &keys {
            // Personless events read no person: a key with only those needs no read.
            let personless = |k: &Keyed| {
                k.event.get("properties").and_then(|p| p.as_object()).is_some_and(persons::ids::is_personless)
            };
            if events.iter().all(personless) {
                continue;
            }
            let ids = teams.entry(*team).or_default();
            ids.push(id);
            ids.extend(events.iter().filter_map(|k| persons::ids::other_distinct_id(&k.event)));
        }
        for (team, mut ids) in teams {
            ids.sort_unstable();
            ids.dedup();
            w.timed(Stage::Persons, self.persons.prefetch(&persons, team, &ids)).await?;
        }
        let mut done: Vec<(usize, crate::wire::EventRow, persons::Changes)> = stream::iter(keys)
            .map(|((team_id, _), events)| self.process_key(team_id, events, &persons))
            .buffer_unordered(self.keys_in_parallel)
            .try_concat()
            .await?;
        done.sort_unstable_by_key(|(index, _, _)| *index);
        let mut batch = SinkBatch::default();
        w.timed(Stage::Persons, self.persons.flush(persons)).await?.into_batch(&mut batch);
        let mut origins = Vec::with_capacity(done.len());
        for (index, row, changes) in done {
            changes.into_batch(&mut batch);
            batch.events.push(row);
            origins.push(index);
        }
        Ok(Staged { rows: batch, letters, rerouted, origins })
    }

    /// The events of one (team, distinct_id), in order: plugins, prepare, persons.
    async fn process_key(
        &self,
        team_id: i64,
        events: Vec<Keyed>,
        persons: &persons::Batch,
    ) -> Result<Vec<(usize, crate::wire::EventRow, persons::Changes)>, crate::store::StoreError> {
        let mut out = Vec::with_capacity(events.len());
        let w = &self.worker;
        for Keyed { index, anonymize_ips, event } in events {
            match w.timed(Stage::Plugins, self.plugins.process(team_id, event)).await {
                Outcome::Event(e) => {
                    let mut row = prepare::prepare(e, team_id, anonymize_ips, chrono::Utc::now());
                    let changes = w.timed(Stage::Persons, self.persons.process(&mut row, persons)).await?;
                    out.push((index, row, changes));
                }
                Outcome::Dropped { by } => tracing::debug!(plugin = %by, "event dropped by a plugin"),
            }
        }
        Ok(out)
    }
}
