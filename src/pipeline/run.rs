//! The consume loop: poll a batch, process it, write it to every sink, then
//! commit its offsets.
//!
//! Two batches are in flight at once: while batch N is written (events,
//! onEvent/exportEvents hand-off, dead letters), batch N+1 is read and
//! processed. The sinks' round trips then hide behind the next batch's CPU
//! work instead of adding to it. The order that makes at-least-once hold is
//! kept: batch N's offsets are committed only after all of N is written,
//! and batch N+1's writes start only after N's commit, so a commit never
//! covers an unwritten event and offsets only move forward.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::sink::{DeadLetter, EventSink, SinkBatch, SinkError};
use super::source::{self, Message, Source};
use super::{BATCH, Pipeline, Staged};
use crate::metrics::{self, Stage};

/// A processed batch waiting for its writes and commit.
struct Processed {
    read: usize,
    /// Shared with the task that writes it to the sinks.
    batch: Arc<SinkBatch>,
    letters: Vec<Letter>,
    /// Hot keys' messages for the overflow topic, with their keys.
    rerouted: Vec<(String, Message)>,
    /// The highest offset of each partition in the batch.
    offsets: Vec<(i32, i64)>,
}

/// A dead letter that owns its message, so the batch's messages can be
/// dropped (or the next batch read) before the letter is sent.
struct Letter {
    message: Message,
    reason: String,
    detail: String,
    stage: String,
    team_id: Option<i64>,
}

impl Letter {
    fn owned(l: DeadLetter<'_>) -> Self {
        Letter {
            message: l.message.clone(),
            reason: l.reason.to_string(),
            detail: l.detail,
            stage: l.stage.to_string(),
            team_id: l.team_id,
        }
    }

    fn borrowed(&self) -> DeadLetter<'_> {
        DeadLetter {
            message: &self.message,
            reason: &self.reason,
            detail: self.detail.clone(),
            stage: &self.stage,
            team_id: self.team_id,
        }
    }
}

/// What reading the next batch gave.
enum Next {
    Batch(Processed),
    /// Nothing arrived, or reading failed (logged, after a pause).
    Nothing,
    /// Stopped while reading or processing.
    Stopped,
}

impl Pipeline {
    /// Consumes until `stop` is cancelled, finishing the batches in hand.
    pub async fn run(&self, mut source: Box<dyn Source>, stop: CancellationToken) {
        if self.reports_lag
            && let Some(positions) = source.positions()
        {
            metrics::global().set_positions(positions);
        }
        let w = &self.worker;
        let mut in_hand: Option<Processed> = None;
        loop {
            let reading = !stop.is_cancelled();
            let next = async { if reading { self.next_batch(source.as_mut(), &stop).await } else { Next::Stopped } };
            let (written, next) = match &in_hand {
                Some(p) => tokio::join!(self.write(p, &stop), next),
                None => (true, next.await),
            };
            if let Some(p) = in_hand.take() {
                // A Kafka batch spans partitions: each one's highest offset is committed.
                let done = written
                    && w.timed(Stage::Commit, self.retry(&stop, "commit", || source.commit(&p.offsets)))
                        .await
                        .is_some();
                w.end_batch();
                if !done {
                    break;
                }
                metrics::global().committed(
                    p.read,
                    p.batch.events.len(),
                    p.rerouted.len(),
                    p.letters.iter().map(|l| l.reason.as_str()),
                );
            }
            match next {
                Next::Batch(p) => {
                    // Counted as in hand from here: the previous batch was just committed.
                    w.begin_batch(p.read);
                    in_hand = Some(p);
                }
                Next::Nothing if reading => {}
                Next::Nothing | Next::Stopped => break,
            }
        }
    }

    /// Reads a batch and runs the stages on it.
    async fn next_batch(&self, source: &mut dyn Source, stop: &CancellationToken) -> Next {
        let w = &self.worker;
        let polled = tokio::select! {
            b = w.timed(Stage::Poll, source.poll(BATCH, Duration::from_millis(200))) => b,
            _ = stop.cancelled() => return Next::Stopped,
        };
        let messages = match polled {
            Ok(m) if m.is_empty() => return Next::Nothing,
            Ok(m) => m,
            Err(err) => {
                tracing::warn!(%err, "reading the source failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                return Next::Nothing;
            }
        };
        // A dependency failing mid-batch (the database, for team lookups)
        // retries the whole batch: nothing is written or committed until it passes.
        let Some(Staged { rows: batch, letters, rerouted }) =
            self.retry(stop, "processing a batch", || self.process_fresh(&messages)).await
        else {
            return Next::Stopped;
        };
        Next::Batch(Processed {
            read: messages.len(),
            letters: letters.into_iter().map(Letter::owned).collect(),
            rerouted: rerouted.into_iter().map(|(key, m)| (key, m.clone())).collect(),
            offsets: source::highest_offsets(&messages),
            batch: Arc::new(batch),
        })
    }

    /// Writes a processed batch everywhere it goes before its commit, each
    /// write retried until it succeeds; false when stopped first.
    async fn write(&self, p: &Processed, stop: &CancellationToken) -> bool {
        let w = &self.worker;
        let letters: Vec<DeadLetter> = p.letters.iter().map(Letter::borrowed).collect();
        let rerouted: Vec<(String, &Message)> = p.rerouted.iter().map(|(k, m)| (k.clone(), m)).collect();
        let write = || write_elsewhere(self.sink.clone(), p.batch.clone());
        w.timed(Stage::Write, self.retry(stop, "write events", write)).await.is_some()
            && self.retry(stop, "queue events for onEvent/exportEvents", || self.hand_off(&p.batch)).await.is_some()
            && w.timed(Stage::DeadLetters, self.retry(stop, "write dead letters", || self.dlq.send(&letters)))
                .await
                .is_some()
            && self.retry(stop, "reroute hot keys to the overflow topic", || self.reroute(&rerouted)).await.is_some()
    }
}

/// Writes `batch` to `sink` on a task of its own, so that turning rows into
/// the sink's format runs on another core than the next batch's processing.
async fn write_elsewhere(sink: Arc<dyn EventSink>, batch: Arc<SinkBatch>) -> Result<(), SinkError> {
    tokio::spawn(async move { sink.write(&batch).await })
        .await
        .map_err(|e| SinkError { context: "write events (the writing task failed)", source: Box::new(e) })?
}
