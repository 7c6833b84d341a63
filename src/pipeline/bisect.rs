//! Finding the events at fault when a batch fails for a data reason. A
//! batch that a stage or a sink refuses is split in halves, each retried on
//! its own, down to the single messages that fail; those become dead letters
//! with the reason, and the rest of the batch goes on. Transient failures
//! are retried at every level, and a fatal one stops the pipeline.
//!
//! Splitting keeps the order guarantee: the first half is processed (and
//! its persons written) before the second, and within a half the stages
//! keep batch order per (team, distinct_id).

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;

use super::retry::{Retried, retry};
use super::shards::Messages;
use super::sink::{EventSink, SinkBatch};
use super::{Pipeline, Refused, Staged};
use crate::error::{ErrorKind, Kinded, PipeError};
use crate::store::StoreError;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why the pipeline stops: shutdown, or a failure no retry can fix.
#[derive(Debug)]
pub enum Halt {
    Stopped,
    Fatal(String),
}

/// Why processing a batch failed.
#[derive(Debug)]
pub(super) enum Failure {
    Store(StoreError),
    /// A stage panicked on this input: a bug, but one batch must not stop every team.
    Panic(String),
}

impl Failure {
    fn reason(&self) -> &'static str {
        match self {
            Failure::Store(_) => "store_refused",
            Failure::Panic(_) => "internal_error",
        }
    }
}

impl Kinded for Failure {
    fn kind(&self) -> ErrorKind {
        match self {
            Failure::Store(e) => e.kind(),
            Failure::Panic(_) => ErrorKind::Data,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Store(e) => write!(f, "{e}"),
            Failure::Panic(p) => write!(f, "processing panicked: {p}"),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl Pipeline {
    /// Runs the stages on `messages`, retrying transient failures; a data
    /// failure is narrowed down to the messages at fault, which come back as
    /// dead letters.
    pub(super) fn stage<'a>(
        &'a self,
        messages: Messages,
        stop: &'a CancellationToken,
    ) -> Boxed<'a, Result<Staged, Halt>> {
        Box::pin(async move {
            let attempt = || AssertUnwindSafe(self.process_fresh(&messages)).catch_unwind().map(flatten);
            match retry(self.worker(), Some(stop), "process a batch", attempt).await {
                Retried::Done(s) => Ok(s),
                Retried::Stopped => Err(Halt::Stopped),
                Retried::Refused(f) if f.kind() == ErrorKind::Fatal => Err(Halt::Fatal(format!("processing: {f}"))),
                Retried::Refused(f) if messages.len() == 1 => {
                    let m = &messages[0];
                    tracing::warn!(partition = m.partition, offset = m.offset, reason = f.reason(), error = %f,
                        "a message cannot be processed; it goes to the dead-letter queue");
                    Ok(Staged::dead(f.reason(), f.to_string(), "process"))
                }
                Retried::Refused(f) => {
                    tracing::info!(error = %f, size = messages.len(), "a batch was refused; halving it to find the cause");
                    let mid = messages.len() / 2;
                    let (first, second) = messages.split(mid);
                    let first = self.stage(first, stop).await?;
                    let second = self.stage(second, stop).await?;
                    Ok(first.then(second, mid))
                }
            }
        })
    }

    /// Writes `batch` to the sink. Events the sink refuses for a data reason
    /// are found by halving and returned as (index in `batch.events` plus
    /// `offset`, error); person and group rows it refuses on their own are
    /// logged and skipped, since no message stands behind them.
    pub(super) fn write_rows<'a>(
        &'a self,
        batch: Arc<SinkBatch>,
        offset: usize,
        stop: Option<&'a CancellationToken>,
    ) -> Boxed<'a, Result<Vec<(usize, String)>, Halt>> {
        Box::pin(async move {
            let write = || write_elsewhere(self.sink.clone(), batch.clone());
            let err = match retry(self.worker(), stop, "write events", write).await {
                Retried::Done(()) => return Ok(Vec::new()),
                Retried::Stopped => return Err(Halt::Stopped),
                Retried::Refused(e) if e.kind == ErrorKind::Fatal => return Err(Halt::Fatal(format!("sink: {e}"))),
                Retried::Refused(e) => e,
            };
            let others = batch.persons.len() + batch.distinct_ids.len() + batch.groups.len();
            match (batch.events.len(), others) {
                (0, _) => {
                    tracing::error!(error = %err, rows = others,
                        "the sink refused person, distinct id or group rows; they are skipped");
                    crate::metrics::global().dropped("sink_refused_rows", others as u64);
                    Ok(Vec::new())
                }
                (1, 0) => Ok(vec![(offset, err.to_string())]),
                (n, _) => {
                    // The non-event rows stay with the first half; a lone event is split from them.
                    let mid = if n == 1 { 0 } else { n / 2 };
                    let first = SinkBatch {
                        events: batch.events[..mid].to_vec(),
                        persons: batch.persons.clone(),
                        distinct_ids: batch.distinct_ids.clone(),
                        groups: batch.groups.clone(),
                    };
                    let second = SinkBatch { events: batch.events[mid..].to_vec(), ..SinkBatch::default() };
                    let mut refused = self.write_rows(Arc::new(first), offset, stop).await?;
                    refused.extend(self.write_rows(Arc::new(second), offset + mid, stop).await?);
                    Ok(refused)
                }
            }
        })
    }
}

fn flatten<T>(r: Result<Result<T, StoreError>, Box<dyn std::any::Any + Send>>) -> Result<T, Failure> {
    match r {
        Ok(r) => r.map_err(Failure::Store),
        Err(p) => Err(Failure::Panic(crate::error::panic_message(&*p))),
    }
}

impl Staged {
    /// A batch of one message that cannot be processed.
    fn dead(reason: &'static str, detail: String, stage: &'static str) -> Self {
        Staged {
            rows: SinkBatch::default(),
            letters: vec![Refused { index: 0, reason, detail, stage, team_id: None }],
            rerouted: Vec::new(),
            origins: Vec::new(),
            marks: Vec::new(),
        }
    }

    /// This half followed by `next`, whose messages start at `offset`.
    fn then(mut self, next: Staged, offset: usize) -> Self {
        self.rows.events.extend(next.rows.events);
        self.rows.persons.extend(next.rows.persons);
        self.rows.distinct_ids.extend(next.rows.distinct_ids);
        self.rows.groups.extend(next.rows.groups);
        self.letters.extend(next.letters.into_iter().map(|l| Refused { index: l.index + offset, ..l }));
        self.rerouted.extend(next.rerouted.into_iter().map(|(key, i)| (key, i + offset)));
        self.origins.extend(next.origins.into_iter().map(|i| i + offset));
        self.marks.extend(next.marks);
        self
    }
}

/// Writes `batch` to `sink` on a task of its own, so that turning rows into
/// the sink's format runs on another core than the next batch's processing.
async fn write_elsewhere(sink: Arc<dyn EventSink>, batch: Arc<SinkBatch>) -> Result<(), PipeError> {
    match tokio::spawn(async move { sink.write(&batch).await }).await {
        Ok(r) => r,
        // A panic while encoding rows is the rows' fault: halving finds the one.
        Err(e) if e.is_panic() => Err(PipeError::data(
            "write events (the writing task panicked)",
            crate::error::panic_message(&*e.into_panic()),
        )),
        Err(e) => Err(PipeError::transient("write events (the writing task failed)", e)),
    }
}
