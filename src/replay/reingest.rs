//! `phs replay --reingest`: the selected events through the whole pipeline
//! and its sinks again, as `phs serve` builds it ([`crate::server::Ingestion`]).
//! Each event keeps its uuid, so the SQLite store replaces its first copy
//! and ClickHouse's ReplacingMergeTree collapses the two.
//!
//! The selection is fed to the pipeline as a [`Source`] whose commit does
//! not touch any consumer's offsets. From the dead-letter table, a letter
//! that now passes is removed from it once its batch is committed, and one
//! refused again stays as it was (it is not dead-lettered a second time);
//! the summary counts both by the original reason.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::engine::classify;
use super::select::{self, Reader, Selected};
use super::{Filters, ReplayError};
use crate::error::PipeError;
use crate::pipeline::sink::{DeadLetter, DeadLetterQueue};
use crate::pipeline::source::Source;
use crate::pipeline::source::local_log::LocalLog;
use crate::pipeline::team::TeamCache;
use crate::server::Ingestion;
use crate::wire::Message;

/// What a re-ingest would touch, for the confirmation.
#[derive(Debug, Default, Serialize)]
pub struct Plan {
    pub events: u64,
    /// Events per team id.
    pub teams: BTreeMap<i64, u64>,
    /// Selected but left out: invalid or of no team (they stay dead letters).
    pub skipped: u64,
}

/// Per original dead-letter reason: how many passed now, and the reasons of
/// those refused again.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Outcome {
    pub passed: u64,
    pub failed: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub read: u64,
    pub reingested: u64,
    /// Refused by the pipeline, by reason.
    pub refused: BTreeMap<String, u64>,
    /// Replaying dead letters: by the reason each was first refused for.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub dead_letters: BTreeMap<String, Outcome>,
    pub interrupted: bool,
}

/// What becomes of a selected message in a re-ingest.
enum Admit {
    /// The filters leave it out.
    Filtered,
    /// Invalid or of no team, read from the log: it was dead-lettered when
    /// first read, and is not sent again.
    Skipped,
    /// Sent to the pipeline (a valid event's team, when it has one).
    Sent(Option<i64>),
}

/// From the log only valid events of known teams go to the pipeline; from
/// the dead-letter table every selected letter does, to see which pass now.
async fn admit(message: &Selected, filters: &Filters, teams: &TeamCache, letters: bool) -> Result<Admit, ReplayError> {
    Ok(match classify(message, filters, teams).await? {
        None => Admit::Filtered,
        Some(Ok(job)) => Admit::Sent(Some(job.team.id)),
        Some(Err(_)) if letters => Admit::Sent(None),
        Some(Err(_)) => Admit::Skipped,
    })
}

/// Reads the selection once and counts what a re-ingest would send.
pub async fn plan(
    selector: &select::Selector,
    filters: &Filters,
    limit: Option<u64>,
    teams: &TeamCache,
) -> Result<Plan, ReplayError> {
    let letters = matches!(selector.origin, select::Origin::DeadLetters(_));
    let mut reader = select::open(selector).await?;
    let mut plan = Plan::default();
    while let Some(batch) = reader.next().await? {
        for m in batch {
            if limit.is_some_and(|l| plan.events >= l) {
                return Ok(plan);
            }
            match admit(&m, filters, teams, letters).await? {
                Admit::Sent(team) => {
                    plan.events += 1;
                    if let Some(team) = team {
                        *plan.teams.entry(team).or_default() += 1;
                    }
                }
                Admit::Skipped => plan.skipped += 1,
                Admit::Filtered => {}
            }
        }
    }
    Ok(plan)
}

/// What the pipeline dead-lettered, by message position.
type Refusals = Arc<Mutex<HashMap<(i32, i64), String>>>;

/// The pipeline's dead-letter queue during a re-ingest: refusals are noted;
/// they reach the real queue only when the messages came from the log.
struct Noting {
    real: Option<Arc<dyn DeadLetterQueue>>,
    refused: Refusals,
}

#[async_trait]
impl DeadLetterQueue for Noting {
    async fn send(&self, letters: &[DeadLetter<'_>]) -> Result<(), PipeError> {
        if let Some(real) = &self.real {
            real.send(letters).await?;
        }
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        for l in letters {
            refused.insert((l.message.partition, l.message.offset), l.reason.to_string());
        }
        Ok(())
    }
}

/// A message handed to the pipeline: its (partition, offset), and the
/// reason it was first refused for when it is a dead letter.
type Delivered = ((i32, i64), Option<String>);

/// The selection as the pipeline's source.
struct Selection {
    reader: Box<dyn Reader>,
    filters: Filters,
    teams: Arc<TeamCache>,
    limit: Option<u64>,
    letters: Option<LocalLog>,
    /// Messages handed out and not yet committed.
    delivered: Mutex<Vec<Delivered>>,
    pending: Vec<Selected>,
    refused: Refusals,
    summary: Arc<Mutex<Summary>>,
    progress: indicatif::ProgressBar,
    /// Cancelled when the selection is exhausted, so the pipeline drains and returns.
    done: CancellationToken,
    sent: u64,
}

#[async_trait]
impl Source for Selection {
    async fn poll(&mut self, max: usize, _wait: Duration) -> Result<Vec<Message>, PipeError> {
        let mut out = Vec::new();
        while out.len() < max {
            if self.limit.is_some_and(|l| self.sent >= l) {
                self.done.cancel();
                break;
            }
            let Some(m) = self.pending.pop() else {
                if !out.is_empty() {
                    break;
                }
                match self.reader.next().await {
                    Ok(Some(mut batch)) => {
                        batch.reverse();
                        self.pending = batch;
                        continue;
                    }
                    Ok(None) => {
                        self.done.cancel();
                        break;
                    }
                    Err(e) => return Err(PipeError::transient("read the replay selection", e)),
                }
            };
            self.progress.inc(1);
            self.summary.lock().unwrap_or_else(|p| p.into_inner()).read += 1;
            let admitted = admit(&m, &self.filters, &self.teams, self.letters.is_some()).await;
            if !matches!(admitted.map_err(|e| PipeError::transient("filter the replay selection", e))?, Admit::Sent(_))
            {
                continue;
            }
            self.sent += 1;
            self.delivered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(((m.partition, m.offset), m.letter.map(|(reason, _)| reason)));
            out.push(Message { partition: m.partition, offset: m.offset, payload: m.payload });
        }
        Ok(out)
    }

    /// Moves no consumer offset: settles what the committed messages became.
    async fn commit(&self, positions: &[(i32, i64)]) -> Result<(), PipeError> {
        let upto: HashMap<i32, i64> = positions.iter().copied().collect();
        let refused = std::mem::take(&mut *self.refused.lock().unwrap_or_else(|p| p.into_inner()));
        let mut passed = Vec::new();
        {
            let mut delivered = self.delivered.lock().unwrap_or_else(|p| p.into_inner());
            let (settled, waiting): (Vec<_>, Vec<_>) =
                delivered.drain(..).partition(|(at, _)| upto.get(&at.0).is_some_and(|o| at.1 <= *o));
            *delivered = waiting;
            let mut summary = self.summary.lock().unwrap_or_else(|p| p.into_inner());
            for (at, first) in &settled {
                let now = refused.get(at);
                match now {
                    Some(reason) => *summary.refused.entry(reason.clone()).or_default() += 1,
                    None => summary.reingested += 1,
                }
                if let Some(first) = first {
                    let o = summary.dead_letters.entry(first.clone()).or_default();
                    match now {
                        Some(reason) => *o.failed.entry(reason.clone()).or_default() += 1,
                        None => {
                            o.passed += 1;
                            passed.push(at.1);
                        }
                    }
                }
            }
        }
        if let Some(log) = &self.letters {
            log.remove_dead_letters(&passed).await?;
        }
        Ok(())
    }
}

/// Re-ingests the selection through `ingestion`'s pipeline until it is
/// exhausted or `stop` is cancelled.
pub async fn run(
    mut ingestion: Ingestion,
    selector: &select::Selector,
    filters: Filters,
    limit: Option<u64>,
    progress: indicatif::ProgressBar,
    stop: CancellationToken,
) -> Result<Summary, ReplayError> {
    let letters = match &selector.origin {
        select::Origin::DeadLetters(dir) => {
            Some(LocalLog::open(dir).await.map_err(|e| ReplayError::Failed(format!("opening the dead letters: {e}")))?)
        }
        _ => None,
    };
    let reader = select::open(selector).await?;
    if let Some(total) = reader.total() {
        progress.set_length(total);
    }
    let refused = Refusals::default();
    let real = letters.is_none().then(|| ingestion.dlq.clone());
    ingestion.dlq = Arc::new(Noting { real, refused: refused.clone() });
    let summary = Arc::new(Mutex::new(Summary::default()));
    let done = stop.child_token();
    let source = Selection {
        reader,
        filters,
        teams: ingestion.teams.clone(),
        limit,
        letters,
        delivered: Mutex::default(),
        pending: Vec::new(),
        refused,
        summary: summary.clone(),
        progress: progress.clone(),
        done: done.clone(),
        sent: 0,
    };
    // As many shards as the runner has states per config (one per core, see the command).
    let pipeline = ingestion.pipeline(ingestion.runner.states(), crate::config::TASKS_PER_WORKER);
    let writer = tokio::spawn(crate::pipeline::definitions::writer::run(ingestion.definitions.clone(), done.clone()));
    // The writer's last write waits until it alone holds the definitions.
    drop(ingestion);
    let result = pipeline.run(Box::new(source), done).await;
    drop(pipeline);
    let _ = writer.await;
    progress.finish_and_clear();
    result.map_err(|why| ReplayError::Failed(format!("re-ingesting stopped: {why}")))?;
    let mut summary = std::mem::take(&mut *summary.lock().unwrap_or_else(|p| p.into_inner()));
    summary.interrupted = stop.is_cancelled();
    Ok(summary)
}
