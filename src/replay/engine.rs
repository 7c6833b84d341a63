//! The dry run: read the selection, decode and filter each message, look up
//! its team, and run the team's processEvent chain on it in the overlay.
//!
//! Decoding and filtering run on one task; the plugins run on `shards`
//! tasks, each with plugin states (Lua VMs) of its own, so every core is
//! used. Events of one (token, distinct_id) go to the same shard and stay in
//! order. Reports come back numbered and are handed out in read order.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
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
use crate::pipeline::team::TeamCache;
use crate::pipeline::{normalize, prepare};
use crate::plugins::runner::{Outcome, PluginRunner, RunnerOptions};
use crate::store::{StoreError, Team};

/// An event on its way to a shard, numbered in read order.
pub(super) struct Job {
    seq: u64,
    message: Selected,
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
    mut out: impl FnMut(EventReport) -> bool,
) -> Result<Summary, ReplayError> {
    let mut reader = select::open(&options.selector).await?;
    options.on_total(reader.total());
    // Jobs and reports travel in batches: one wake-up per batch, not per event.
    let (results_tx, mut results) = mpsc::channel::<Vec<(u64, EventReport)>>(64);
    let mut shards = Vec::new();
    for _ in 0..options.shards.max(1) {
        let installed = runner(&overlays.installed, &options.runner);
        let persons = overlays.installed.person_store(&installed.1).map(|store| Persons::new(store, 10_000));
        let shard = Shard { installed, local: overlays.local.as_ref().map(|o| runner(o, &options.runner)), persons };
        let (tx, rx) = mpsc::channel::<Vec<Job>>(8);
        tokio::spawn(work(shard, rx, results_tx.clone()));
        shards.push(tx);
    }
    let filters = options.filters.clone();
    let limit = options.limit;
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
                let mut jobs: Vec<Vec<Job>> = shards.iter().map(|_| Vec::new()).collect();
                let mut finished = Vec::new();
                let mut limited = false;
                for message in batch {
                    if limit.is_some_and(|l| seq >= l) {
                        limited = true;
                        break;
                    }
                    read.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = classify(message, &filters, &teams, seq).await? else { continue };
                    seq += 1;
                    match job {
                        Err(report) => finished.push((seq - 1, *report)),
                        Ok(job) => {
                            let mut h = std::collections::hash_map::DefaultHasher::new();
                            (job.team.id, job.event.get("distinct_id").and_then(Value::as_str)).hash(&mut h);
                            jobs[(h.finish() % shards.len() as u64) as usize].push(job);
                        }
                    }
                }
                if !finished.is_empty() && results_tx.send(finished).await.is_err() {
                    return Ok(true);
                }
                for (shard, jobs) in shards.iter().zip(jobs) {
                    if !jobs.is_empty() && shard.send(jobs).await.is_err() {
                        return Ok(true);
                    }
                }
                if limited {
                    return Ok(false);
                }
            }
        })
    };
    let started = std::time::Instant::now();
    let mut summary = Summary::default();
    let mut waiting = BTreeMap::new();
    let mut next = 0u64;
    let mut closed_early = false;
    while let Some(reports) = results.recv().await {
        waiting.extend(reports);
        while let Some(report) = waiting.remove(&next) {
            next += 1;
            summary.add(&report);
            if !closed_early && !out(report) {
                // The reader of our output went away: stop reading too.
                closed_early = true;
                stop.cancel();
            }
        }
    }
    let interrupted = match dispatch.await {
        Ok(Ok(interrupted)) => interrupted,
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(ReplayError::Failed(format!("the replay reader failed: {e}"))),
    };
    summary.read = read.load(Ordering::Relaxed);
    summary.interrupted = interrupted && !closed_early;
    let logs = overlays.installed.logs() + overlays.local.as_ref().map_or(0, Overlay::logs);
    summary.finish(started.elapsed(), logs);
    Ok(summary)
}

/// Decodes and filters a message: None when the filters leave it out, a
/// finished report when it goes no further (invalid, unknown team), else
/// the job for a shard.
pub(super) async fn classify(
    message: Selected,
    filters: &super::Filters,
    teams: &TeamCache,
    seq: u64,
) -> Result<Option<Result<Job, Box<EventReport>>>, ReplayError> {
    if let (Some(want), Some((reason, _))) = (&filters.reason, &message.letter)
        && want != reason
    {
        return Ok(None);
    }
    let bare = |fate, error: Option<String>| EventReport {
        partition: message.partition,
        offset: message.offset,
        fate,
        uuid: None,
        team_id: None,
        event: None,
        distinct_id: None,
        dead_letter: message.letter.as_ref().map(|(reason, detail)| json!({"reason": reason, "detail": detail})),
        error,
        steps: Vec::new(),
        output: None,
        side_effects: Vec::new(),
        compare: None,
        persons: Vec::new(),
    };
    let decoded = match normalize::decode(&message.payload) {
        Ok(d) => d,
        // An event that cannot be read matches no filter on its contents.
        Err(_) if filters.on_contents() => return Ok(None),
        Err(e) => return Ok(Some(Err(Box::new(bare(Fate::Invalid, Some(format!("{}: {e}", e.reason()))))))),
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
        let mut r = bare(Fate::UnknownTeam, Some(format!("no team has the API token `{}`", decoded.token)));
        let field = |k: &str| Some(field(k).to_string());
        (r.uuid, r.event, r.distinct_id) = (field("uuid"), field("event"), field("distinct_id"));
        return Ok(Some(Err(Box::new(r))));
    };
    let mut event = decoded.event;
    if team.anonymize_ips {
        event.insert("ip".into(), Value::Null);
    }
    Ok(Some(Ok(Job { seq, message, team, event })))
}

/// A shard's loop: each job through the plugins, in the order received.
async fn work(shard: Shard, mut jobs: mpsc::Receiver<Vec<Job>>, results: mpsc::Sender<Vec<(u64, EventReport)>>) {
    while let Some(batch) = jobs.recv().await {
        let mut done = Vec::with_capacity(batch.len());
        for job in batch {
            done.push((job.seq, shard.run(job).await));
        }
        if results.send(done).await.is_err() {
            return;
        }
    }
}

impl Shard {
    /// One event through the plugins (both versions with `--compare`) and, with `--persons`, the persons stage.
    async fn run(&self, job: Job) -> EventReport {
        let shard = self;
        let field = |k: &str| job.event.get(k).and_then(Value::as_str).map(String::from);
        let mut report = EventReport {
            partition: job.message.partition,
            offset: job.message.offset,
            fate: Fate::Ingested,
            uuid: field("uuid"),
            team_id: Some(job.team.id),
            event: field("event"),
            distinct_id: field("distinct_id"),
            dead_letter: job.message.letter.as_ref().map(|(r, d)| json!({"reason": r, "detail": d})),
            error: None,
            steps: Vec::new(),
            output: None,
            side_effects: Vec::new(),
            compare: None,
            persons: Vec::new(),
        };
        let local_input = shard.local.as_ref().map(|_| job.event.clone());
        let (runner, recorder) = &shard.installed;
        let (steps, output) = chain(runner, job.team.id, job.event).await;
        report.steps = steps;
        if let (Some(persons), Some(event)) = (&shard.persons, &output) {
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
        if let (Some((runner, recorder)), Some(input)) = (&shard.local, local_input) {
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
        Outcome::Dropped { .. } => None,
    };
    (steps.0, output)
}
