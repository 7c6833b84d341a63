//! The dry run: read the selection, decode and filter each message, look up
//! its team, and run the team's processEvent chain on it in the overlay.
//!
//! Decoding and filtering run on one task; the plugins run on `shards`
//! tasks, each with plugin states (Lua VMs) of its own, so every core is
//! used. Events of one (token, distinct_id) go to the same shard and stay in
//! order. Reports come back numbered and are handed out in read order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::diff::diff;
use super::overlay::{Overlay, Recorder, SideEffect};
use super::report::{Compared, EventReport, Fate, Steps, Summary};
use super::select::{self, Selected};
use super::{Options, ReplayError};
use crate::pipeline::persons::Persons;
use crate::pipeline::shards::shard_of;
use crate::pipeline::team::TeamCache;
use crate::pipeline::{normalize, prepare};
use crate::plugins::runner::{Outcome, PluginRunner, RunnerOptions};
use crate::store::{StoreError, Team};

/// A decoded event of a known team, ready for the plugins.
pub(super) struct Job {
    pub(super) team: Arc<Team>,
    event: Map<String, Value>,
}

/// The plugin runners of one shard: the installed plugins, and with
/// `--compare` the local version beside them.
struct Shard {
    installed: (Arc<PluginRunner>, Arc<Recorder>),
    local: Option<(Arc<PluginRunner>, Arc<Recorder>)>,
    /// The persons stage over the overlay, with `--persons`.
    persons: Option<Persons>,
    filters: Arc<super::Filters>,
    teams: Arc<TeamCache>,
}

/// The overlays a run needs: the installed plugins' (with `--plugin-dir`
/// already swapped in), and the local one's for `--compare`.
pub struct Overlays {
    pub installed: Overlay,
    pub local: Option<Overlay>,
}

fn runner(overlay: &Overlay, base: &RunnerOptions) -> (Arc<PluginRunner>, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let mut options = base.clone();
    options.fetch.outbound = Some(overlay.outbound(&recorder));
    let runner = PluginRunner::new(
        overlay.backends(&recorder),
        Some(overlay.producer(&recorder)),
        options,
        uuid::Uuid::now_v7(),
    );
    (runner, recorder)
}

/// Runs the dry run, handing each selected event's report to `out` in read
/// order, until the selection ends or `stop` is cancelled.
pub async fn run(
    options: &Options,
    teams: Arc<TeamCache>,
    overlays: &Overlays,
    read: Arc<AtomicU64>,
    stop: CancellationToken,
    mut out: impl FnMut(EventReport, &super::Redactor) -> bool,
) -> Result<Summary, ReplayError> {
    let mut reader = select::open(&options.selector).await?;
    // After the selection is checked, so a wrong origin is reported as such first.
    let redactor = super::secrets(overlays.installed.real_plugins().as_ref()).await?;
    options.on_total(reader.total());
    // Messages and reports travel in batches: one wake-up per batch, not per event.
    let (results_tx, mut results) = mpsc::channel::<Result<Vec<(u64, Option<EventReport>)>, ReplayError>>(64);
    let mut shards = Vec::new();
    let filters = Arc::new(options.filters.clone());
    for _ in 0..options.shards.max(1) {
        let installed = runner(&overlays.installed, &options.runner);
        let persons = overlays
            .installed
            .person_store(&installed.1)
            .map(|store| Persons::new(store, crate::config::DISTINCT_ID_READ_AHEAD));
        let shard = Shard {
            installed,
            local: overlays.local.as_ref().map(|o| runner(o, &options.runner)),
            persons,
            filters: filters.clone(),
            teams: teams.clone(),
        };
        let (tx, rx) = mpsc::channel::<Vec<(u64, Selected)>>(8);
        tokio::spawn(work(shard, rx, results_tx.clone()));
        shards.push(tx);
    }
    drop(results_tx);
    // Reading stays on one task and parses only each message's key, so
    // decoding, filters and plugins all run on the shards.
    let dispatch = {
        let stop = stop.clone();
        let read = read.clone();
        tokio::spawn(async move {
            let mut seq = 0u64;
            loop {
                let batch = tokio::select! {
                    b = reader.next() => b?,
                    _ = stop.cancelled() => return Ok(true),
                };
                let Some(batch) = batch else { return Ok(false) };
                read.fetch_add(batch.len() as u64, Ordering::Relaxed);
                let mut parts: Vec<Vec<(u64, Selected)>> = shards.iter().map(|_| Vec::new()).collect();
                for message in batch {
                    let shard = shard_of(&message.payload, parts.len());
                    parts[shard].push((seq, message));
                    seq += 1;
                }
                for (shard, part) in shards.iter().zip(parts) {
                    if !part.is_empty() && shard.send(part).await.is_err() {
                        return Ok(true);
                    }
                }
            }
        })
    };
    let started = std::time::Instant::now();
    let mut summary = Summary::default();
    let mut waiting = BTreeMap::new();
    // Messages handed out in read order so far: what the summary counts as read.
    let mut next = 0u64;
    let (mut closed_early, mut limited) = (false, false);
    'collect: while let Some(reports) = results.recv().await {
        waiting.extend(reports?);
        while let Some(report) = waiting.remove(&next) {
            next += 1;
            let Some(report) = report else { continue };
            summary.add(&report);
            if !out(report, &redactor) {
                // The reader of our output went away: stop reading too.
                closed_early = true;
            }
            if options.limit.is_some_and(|l| summary.matched >= l) {
                limited = true;
            }
            if closed_early || limited {
                stop.cancel();
                break 'collect;
            }
        }
    }
    drop(results);
    let interrupted = match dispatch.await {
        Ok(Ok(interrupted)) => interrupted,
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(ReplayError::Failed(format!("the replay reader failed: {e}"))),
    };
    summary.read = next;
    summary.interrupted = interrupted && !closed_early && !limited;
    let logs = overlays.installed.logs() + overlays.local.as_ref().map_or(0, Overlay::logs);
    summary.finish(started.elapsed(), logs);
    Ok(summary)
}

/// Decodes and filters a message: None when the filters leave it out, a
/// finished report when it goes no further (invalid, unknown team), else
/// the job for a shard.
pub(super) async fn classify(
    message: &Selected,
    filters: &super::Filters,
    teams: &TeamCache,
) -> Result<Option<Result<Job, Box<EventReport>>>, ReplayError> {
    if let (Some(want), Some((reason, _))) = (&filters.reason, &message.letter)
        && want != reason
    {
        return Ok(None);
    }
    let decoded = match normalize::decode(&message.payload) {
        Ok(d) => d,
        // An event that cannot be read matches no filter on its contents.
        Err(_) if filters.on_contents() => return Ok(None),
        Err(e) => {
            let mut r = EventReport::of(message, Fate::Invalid);
            r.error = Some(format!("{}: {e}", e.reason()));
            return Ok(Some(Err(Box::new(r))));
        }
    };
    let field = |k: &str| decoded.event.get(k).and_then(Value::as_str).unwrap_or_default();
    if filters.token.as_ref().is_some_and(|t| *t != decoded.token)
        || filters.distinct_id.as_ref().is_some_and(|d| d != field("distinct_id"))
        || filters.event.as_ref().is_some_and(|e| e != field("event"))
        || filters.uuid.as_ref().is_some_and(|u| !u.eq_ignore_ascii_case(field("uuid")))
    {
        return Ok(None);
    }
    let team = teams
        .by_token(&decoded.token)
        .await
        .map_err(|e| ReplayError::Failed(format!("looking up the team of an event: {e}")))?;
    let Some(team) = team else {
        let mut r = EventReport::of(message, Fate::UnknownTeam).naming(&decoded.event);
        r.error = Some(format!("no team has the API token `{}`", decoded.token));
        return Ok(Some(Err(Box::new(r))));
    };
    let mut event = decoded.event;
    if team.anonymize_ips {
        event.insert("ip".into(), Value::Null);
    }
    Ok(Some(Ok(Job { team, event })))
}

/// A shard's loop: each job through the plugins, in the order received.
type Reports = Result<Vec<(u64, Option<EventReport>)>, ReplayError>;

async fn work(shard: Shard, mut messages: mpsc::Receiver<Vec<(u64, Selected)>>, results: mpsc::Sender<Reports>) {
    while let Some(batch) = messages.recv().await {
        let mut done = Vec::with_capacity(batch.len());
        for (seq, message) in batch {
            let report = match classify(&message, &shard.filters, &shard.teams).await {
                Ok(None) => None,
                Ok(Some(Err(report))) => Some(*report),
                Ok(Some(Ok(job))) => Some(shard.run(&message, job).await),
                Err(e) => {
                    let _ = results.send(Err(e)).await;
                    return;
                }
            };
            done.push((seq, report));
        }
        if results.send(Ok(done)).await.is_err() {
            return;
        }
    }
}

impl Shard {
    /// One event through the plugins (both versions with `--compare`) and, with `--persons`, the persons stage.
    async fn run(&self, message: &Selected, job: Job) -> EventReport {
        let mut report = EventReport::of(message, Fate::Ingested).naming(&job.event);
        report.team_id = Some(job.team.id);
        let local_input = self.local.as_ref().map(|_| job.event.clone());
        let (runner, recorder) = &self.installed;
        let (steps, output) = chain(runner, job.team.id, job.event).await;
        report.steps = steps;
        if let (Some(persons), Some(event)) = (&self.persons, &output) {
            let mut row = prepare::prepare(event.clone(), job.team.id, job.team.anonymize_ips, chrono::Utc::now());
            if let Err(e) = person_changes(persons, &mut row).await {
                report.persons.push(json!({"error": e.to_string()}));
            }
        }
        let (person_writes, effects): (Vec<_>, Vec<_>) =
            recorder.take().into_iter().partition(|e| matches!(e, SideEffect::Person { .. }));
        report.persons.extend(person_writes.into_iter().filter_map(|e| match e {
            SideEffect::Person { change, detail } => Some(json!({"change": change, "detail": detail})),
            _ => None,
        }));
        report.side_effects = effects;
        report.fate = if output.is_some() { Fate::Ingested } else { Fate::Dropped };
        if let (Some((runner, recorder)), Some(input)) = (&self.local, local_input) {
            let (local_steps, local_output) = chain(runner, job.team.id, input).await;
            recorder.take();
            let empty = Map::new();
            let differences = diff(output.as_ref().unwrap_or(&empty), local_output.as_ref().unwrap_or(&empty));
            report.compare = Some(Compared { local_steps, local_output, differences });
        }
        report.output = output;
        report
    }
}

/// Times an event's persons step is redone when another shard's write to
/// the same persons got there first, as the pipeline redoes a batch.
const PERSON_CONFLICTS: usize = 5;

/// The persons stage on one event, as a batch of its own.
async fn person_changes(persons: &Persons, row: &mut crate::wire::EventRow) -> Result<(), StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let batch = persons.batch();
        let outcome = async {
            persons.process(row, &batch).await?;
            persons.flush(batch).await
        };
        match outcome.await {
            Err(StoreError::Conflict(_)) if attempt < PERSON_CONFLICTS => continue,
            other => return other.map(|_| ()),
        }
    }
}

/// One event through a runner's processEvent chain: the steps, and the
/// event that comes out (None: dropped).
async fn chain(
    runner: &PluginRunner,
    team_id: i64,
    event: Map<String, Value>,
) -> (Vec<super::report::StepReport>, Option<Map<String, Value>>) {
    let mut steps = Steps::default();
    let outcome = runner.process_traced(team_id, event, &mut steps).await;
    let output = match outcome {
        Outcome::Event(e) => Some(e),
        // The steps say which dependency was out; a dry run has no batch to retry.
        Outcome::Dropped { .. } | Outcome::Unavailable { .. } | Outcome::Slow { .. } => None,
    };
    (steps.0, output)
}
