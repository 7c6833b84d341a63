//! A batch's processing spread over every core. Each message goes to one
//! of `WORKER_CONCURRENCY` shards by the hash of its (token, distinct_id),
//! and each shard is a task of its own with Lua states of its own (as the
//! original's worker threads were), so shards run at the same time on
//! different cores and never wait for each other's plugin state.
//!
//! A batch passes the shards twice. First every shard decodes its messages,
//! looks up their teams and groups them by key; then, once the batch's
//! persons are read ahead in one query per team, every shard runs its keys
//! through plugins, prepare and persons, `TASKS_PER_WORKER` keys at once.
//! Events of one key are in one shard and go one after another, so their
//! order holds; the rows come back named by their place in the batch.

use std::borrow::Cow;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, Range};
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt, stream};

use super::slow_lane::SlowTeams;
use super::team::TeamCache;
use super::{Keyed, Refused, normalize, overflow, persons, prepare};
use crate::metrics::{Stage, WorkerStats};
use crate::plugins::runner::{Outcome, PluginRunner};
use crate::store::StoreError;
use crate::wire::{EventRow, Message};

/// Messages decoded between yields to the runtime.
const YIELD_EVERY: usize = 256;

/// Part of a polled batch, shared with the shards' tasks without copying
/// it; halving a batch (`bisect`) narrows the range.
#[derive(Clone)]
pub struct Messages {
    all: Arc<[Message]>,
    range: Range<usize>,
}

impl Messages {
    pub fn new(all: Arc<[Message]>) -> Messages {
        let range = 0..all.len();
        Messages { all, range }
    }

    /// The messages from `at` on (`..at` with `before`), counted within this part.
    pub fn split(&self, at: usize) -> (Messages, Messages) {
        let mid = self.range.start + at;
        let first = Messages { all: self.all.clone(), range: self.range.start..mid };
        (first, Messages { all: self.all.clone(), range: mid..self.range.end })
    }
}

impl Deref for Messages {
    type Target = [Message];
    fn deref(&self) -> &[Message] {
        &self.all[self.range.clone()]
    }
}

/// The shard of a message: a hash of the key it will be processed under.
/// Only the capture message's outer `token` and `distinct_id` are read (the
/// `data` string is skipped), and the distinct id is made safe and cut as
/// `normalize` does, so every message of one (team, distinct_id) lands on
/// the same shard. A message that is not a capture message is refused in
/// whichever shard it lands.
pub fn shard_of(payload: &[u8], shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    #[derive(serde::Deserialize)]
    struct Key<'a> {
        #[serde(borrow, default)]
        token: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        distinct_id: Option<Cow<'a, str>>,
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match serde_json::from_slice::<Key>(payload) {
        Ok(k) => {
            k.token.hash(&mut h);
            normalize::distinct_id_key(k.distinct_id.as_deref().unwrap_or_default()).hash(&mut h);
        }
        Err(_) => payload.len().hash(&mut h),
    }
    (h.finish() % shards as u64) as usize
}

/// What one shard made of its messages in the first pass.
#[derive(Default)]
pub(super) struct Sorted {
    /// Its events by (team, distinct_id), each key's in batch order.
    pub(super) keys: Vec<((i64, String), Vec<Keyed>)>,
    pub(super) letters: Vec<Refused>,
    /// Hot keys' messages (by index) for the overflow topic, with their keys.
    pub(super) rerouted: Vec<(String, usize)>,
}

/// An event through every stage: its index in the batch, its row, and the
/// rows its persons step produced.
pub(super) type Done = (usize, EventRow, persons::Changes);

/// What the second pass made of keys: events through every stage, and
/// slow teams' messages (by index) for the overflow lane, with their keys.
#[derive(Default)]
pub(super) struct Ran {
    pub(super) done: Vec<Done>,
    pub(super) rerouted: Vec<(String, usize)>,
}

/// The stages the shards run, shared by their tasks.
#[derive(Clone)]
pub(super) struct Stages {
    pub(super) teams: Arc<TeamCache>,
    pub(super) plugins: Arc<PluginRunner>,
    pub(super) persons: Arc<persons::Persons>,
    /// Where hot keys and slow teams go; None in the overflow lane itself.
    pub(super) overflow: Option<Arc<overflow::Overflow>>,
    /// Slow teams: the main pipeline cuts and reroutes them, the overflow
    /// lane keeps them marked while their calls stay slow.
    pub(super) slow: Option<Arc<SlowTeams>>,
    pub(super) worker: Arc<WorkerStats>,
    /// Keys one shard runs at once (TASKS_PER_WORKER).
    pub(super) tasks: usize,
}

impl Stages {
    /// The first pass: decodes the messages at `mine`, reroutes hot keys,
    /// looks up teams, and groups the events by key.
    pub(super) async fn sort(&self, messages: &Messages, mine: &[usize]) -> Result<Sorted, StoreError> {
        let mut out = Sorted::default();
        let mut keys: std::collections::HashMap<(i64, String), Vec<Keyed>> = Default::default();
        let w = &self.worker;
        for (n, &index) in mine.iter().enumerate() {
            if n % YIELD_EVERY == YIELD_EVERY - 1 {
                // Decoding awaits nothing else: let the other tasks on this thread run.
                tokio::task::yield_now().await;
            }
            let decoded = match w.timed_sync(Stage::Normalize, || normalize::decode(&messages[index].payload)) {
                Ok(d) => d,
                Err(e) => {
                    let (reason, detail) = (e.reason(), e.to_string());
                    out.letters.push(Refused { index, reason, detail, stage: "normalize", team_id: None });
                    continue;
                }
            };
            let distinct_id = decoded.event.get("distinct_id").and_then(|d| d.as_str()).unwrap_or_default();
            if let Some(key) = self.overflow.as_ref().and_then(|o| o.reroute_key(&decoded.token, distinct_id)) {
                out.rerouted.push((key, index));
                continue;
            }
            let Some(team) = w.timed(Stage::Team, self.teams.by_token(&decoded.token)).await? else {
                out.letters.push(Refused {
                    index,
                    reason: "unknown_token",
                    detail: format!("no team has the API token `{}`", decoded.token),
                    stage: "team",
                    team_id: None,
                });
                continue;
            };
            let mut event = decoded.event;
            let distinct_id = event.get("distinct_id").and_then(|d| d.as_str()).unwrap_or_default().to_string();
            if self.slow_lane().is_some_and(|s| s.is_slow(team.id)) {
                out.rerouted.push((overflow::key(&decoded.token, &distinct_id), index));
                continue;
            }
            if team.anonymize_ips {
                event.insert("ip".into(), serde_json::Value::Null);
            }
            keys.entry((team.id, distinct_id)).or_default().push(Keyed {
                index,
                anonymize_ips: team.anonymize_ips,
                token: decoded.token,
                event,
            });
        }
        out.keys = keys.into_iter().collect();
        Ok(out)
    }

    /// The slow teams this pipeline sends to the overflow lane: only the
    /// main one, and only with somewhere to send them.
    fn slow_lane(&self) -> Option<&SlowTeams> {
        self.overflow.as_ref().and(self.slow.as_deref())
    }

    /// The second pass: the keys' events through plugins (on this shard's
    /// Lua states, `slot`), prepare and persons, [`Stages::tasks`] keys at once.
    pub(super) async fn run(
        &self,
        slot: usize,
        keys: Vec<((i64, String), Vec<Keyed>)>,
        persons: &persons::Batch,
    ) -> Result<Ran, StoreError> {
        stream::iter(keys)
            .map(|(key, events)| self.run_key(slot, key, events, persons))
            .buffer_unordered(self.tasks.max(1))
            .try_fold(Ran::default(), |mut all, mut ran| async move {
                all.done.append(&mut ran.done);
                all.rerouted.append(&mut ran.rerouted);
                Ok(all)
            })
            .await
    }

    /// The events of one (team, distinct_id), in order. In the main
    /// pipeline, from the first whose plugins ran past their budget (or
    /// once the team is slow) on, they go to the overflow lane.
    async fn run_key(
        &self,
        slot: usize,
        (team_id, distinct_id): (i64, String),
        events: Vec<Keyed>,
        persons: &persons::Batch,
    ) -> Result<Ran, StoreError> {
        let mut out = Ran { done: Vec::with_capacity(events.len()), rerouted: Vec::new() };
        let w = &self.worker;
        let lane = self.slow_lane();
        for Keyed { index, anonymize_ips, token, event } in events {
            if lane.is_some_and(|s| s.is_slow(team_id)) {
                out.rerouted.push((overflow::key(&token, &distinct_id), index));
                continue;
            }
            let (outcome, took) = match (lane, &self.slow) {
                // A slow team in the overflow lane: its calls take the cores only when the main
                // pipeline leaves them. A hot key's calls there (a team that is not slow) run as
                // the main pipeline's do: they are bursty, not costly.
                (None, Some(slow)) if slow.is_slow(team_id) => {
                    let plugins = self.plugins.clone();
                    let call = async move { plugins.process_on(slot, team_id, event, None, &mut ()).await };
                    w.timed(Stage::Plugins, slow.run_low(call)).await
                }
                _ => {
                    let budget = lane.map(SlowTeams::budget);
                    w.timed(Stage::Plugins, self.plugins.process_on(slot, team_id, event, budget, &mut ())).await
                }
            };
            // A chain that took long where no cut reaches (setupPlugin, converting what it
            // returned) makes its team slow too, from its next event on; in the overflow lane,
            // a team whose calls are still slow stays slow.
            if let Some(slow) = &self.slow
                && (matches!(outcome, Outcome::Slow { .. }) || took > slow.budget().wall)
                && slow.mark(team_id)
                && lane.is_some()
            {
                let plugins = match &outcome {
                    Outcome::Slow { by } => by.as_str(),
                    _ => "its plugins",
                };
                tracing::warn!(
                    team_id,
                    plugin = plugins,
                    budget_ms = slow.budget().wall.as_millis() as u64,
                    "its plugins ran past their budget; the team's events go to the overflow lane"
                );
            }
            match outcome {
                Outcome::Event(e) => {
                    let mut row = prepare::prepare(e, team_id, anonymize_ips, chrono::Utc::now());
                    let changes = w.timed(Stage::Persons, self.persons.process(&mut row, persons)).await?;
                    out.done.push((index, row, changes));
                }
                Outcome::Dropped { by } => tracing::debug!(plugin = %by, "event dropped by a plugin"),
                Outcome::Unavailable { by, error } => {
                    // The service first: reports cut long reasons short (phs top at 120 columns).
                    return Err(StoreError::Unavailable(format!("{error} (for plugin {by})")));
                }
                Outcome::Slow { .. } => out.rerouted.push((overflow::key(&token, &distinct_id), index)),
            }
            // A plugin call or a person step that awaits nothing never gives the thread back, and
            // with a shard on every runtime thread the capture endpoint, the writes and commits,
            // and /_health would wait for the whole pass.
            tokio::task::yield_now().await;
        }
        Ok(out)
    }
}

/// Runs `work` on tasks of their own (so on every core) and waits for all
/// of them, even when one fails: none may still be using the batch's
/// persons when the caller retries or flushes it. A task's panic is raised
/// again here, where the batch's panic handling (`bisect`) sees it.
pub(super) async fn on_every<T, F>(work: impl IntoIterator<Item = F>) -> Result<Vec<T>, StoreError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, StoreError>> + Send + 'static,
{
    let handles: Vec<_> = work.into_iter().map(tokio::spawn).collect();
    let (mut out, mut failed, mut panicked) = (Vec::with_capacity(handles.len()), None, None);
    for h in handles {
        match h.await {
            Ok(Ok(t)) => out.push(t),
            Ok(Err(e)) => {
                failed.get_or_insert(e);
            }
            Err(e) if e.is_panic() => {
                panicked.get_or_insert(e.into_panic());
            }
            // Only a runtime shutting down cancels a task; the batch is redone if anything.
            Err(e) => {
                failed.get_or_insert(StoreError::Conflict(format!("a shard's task was cancelled: {e}")));
            }
        }
    }
    if let Some(p) = panicked {
        std::panic::resume_unwind(p);
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(token: &str, distinct_id: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "uuid": "u", "distinct_id": distinct_id, "token": token, "data": "{\"event\":\"x\"}",
            "site_url": "", "now": "", "ip": null,
        }))
        .unwrap_or_default()
    }

    #[test]
    fn one_key_always_lands_on_one_shard() {
        for n in [1, 2, 3, 8] {
            for id in ["a", "b", "user-42", "ü"] {
                let shard = shard_of(&message("tok", id), n);
                assert!(shard < n);
                assert_eq!(shard_of(&message("tok", id), n), shard);
            }
        }
        // Ids that normalize to the same distinct id are one key.
        let long = "x".repeat(250);
        let cut = "x".repeat(200);
        assert_eq!(shard_of(&message("t", &long), 7), shard_of(&message("t", &cut), 7));
        assert_eq!(shard_of(&message("t", "a\0b"), 7), shard_of(&message("t", "a\u{FFFD}b"), 7));
    }

    #[test]
    fn keys_spread_over_the_shards() {
        let mut seen = [0usize; 4];
        for i in 0..1000 {
            seen[shard_of(&message("tok", &format!("user-{i}")), 4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 150), "{seen:?}");
    }

    #[test]
    fn not_a_capture_message_still_has_a_shard() {
        assert!(shard_of(b"\xff\xfe not json", 4) < 4);
        assert!(shard_of(b"[1,2]", 4) < 4);
    }
}
