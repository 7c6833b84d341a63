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
//!
//! At shutdown no new batch is read, and the batch in hand is written and
//! committed before `run` returns: its writes and commit are retried without
//! regard to the stop, so a stop never leaves written-but-uncommitted events
//! to be delivered twice. The shutdown timeout bounds that drain.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::bisect::Halt;
use super::retry::{Retried, retry};
use super::shards::Messages;
use super::sink::{DeadLetter, SinkBatch};
use super::source::Source;
use super::{BATCH, Pipeline, Refused, Staged};
use crate::error::{ErrorKind, Kinded};
use crate::metrics::{self, Stage};
use crate::wire::Message;

/// What a failing poll is reported as.
const READ: &str = "read the source";

/// A processed batch waiting for its writes and commit.
struct Processed {
    read: usize,
    /// Shared with the task that writes it to the sinks.
    batch: Arc<SinkBatch>,
    /// The batch's messages, kept until it is committed: dead letters and the
    /// overflow topic send them as read, and an event a sink refuses is
    /// dead-lettered as the message it came from (`origins`, per event row).
    messages: Arc<[Message]>,
    letters: Vec<Refused>,
    /// Hot keys' messages (by index) for the overflow topic, with their keys.
    rerouted: Vec<(String, usize)>,
    origins: Vec<usize>,
    /// The highest offset of each partition in the batch.
    offsets: Vec<(i32, i64)>,
    /// Persons' resync marks that the batch's rows settle.
    marks: Vec<i64>,
}

/// What reading the next batch gave.
enum Next {
    Batch(Processed),
    /// Nothing arrived, or reading failed (logged, after a pause).
    Nothing,
    Halted(Halt),
}

impl Pipeline {
    /// Consumes until `stop` is cancelled, finishing the batch in hand; an
    /// error is a failure that no retry can fix, and the reason to exit.
    pub async fn run(&self, mut source: Box<dyn Source>, stop: CancellationToken) -> Result<(), String> {
        if let Some(positions) = source.positions() {
            metrics::global().set_positions(self.consumer, positions);
        }
        let w = self.worker();
        let mut in_hand: Option<Processed> = None;
        // When the next poll may start, given the linger and the last batch.
        let mut paced_until: Option<Instant> = None;
        loop {
            let reading = !stop.is_cancelled();
            let next = async {
                if !reading {
                    return (Instant::now(), Next::Halted(Halt::Stopped));
                }
                if let Some(at) = paced_until {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = stop.cancelled() => return (Instant::now(), Next::Halted(Halt::Stopped)),
                    }
                }
                (Instant::now(), self.next_batch(source.as_mut(), &stop).await)
            };
            let (written, (polled_at, next)) = match &in_hand {
                Some(p) => tokio::join!(self.write(p), next),
                None => (Ok(Vec::new()), next.await),
            };
            let full = matches!(&next, Next::Batch(p) if p.read >= BATCH);
            paced_until = self.linger.filter(|_| !full).map(|linger| polled_at + linger);
            if let Some(p) = in_hand.take() {
                let refused = match written {
                    Ok(refused) => refused,
                    Err(Halt::Fatal(why)) => return Err(why),
                    Err(Halt::Stopped) => return Ok(()),
                };
                // A Kafka batch spans partitions: each one's highest offset is committed.
                let commit = || source.commit(&p.offsets);
                match w.timed(Stage::Commit, retry(w, None, "commit offsets", commit)).await {
                    Retried::Done(()) => {}
                    Retried::Refused(e) => return Err(format!("committing offsets: {e}")),
                    Retried::Stopped => return Ok(()),
                }
                w.end_batch();
                metrics::global().progressed(self.consumer);
                metrics::global().committed(
                    p.read,
                    p.batch.events.len() - refused.len(),
                    p.rerouted.len(),
                    p.letters.iter().map(|l| l.reason).chain(refused.iter().copied()),
                );
            }
            match next {
                Next::Batch(p) => {
                    // Counted as in hand from here: the previous batch was just committed.
                    w.begin_batch(p.read);
                    in_hand = Some(p);
                }
                Next::Nothing if reading => {}
                Next::Nothing | Next::Halted(Halt::Stopped) => return Ok(()),
                Next::Halted(Halt::Fatal(why)) => return Err(why),
            }
        }
    }

    /// Reads a batch and runs the stages on it.
    async fn next_batch(&self, source: &mut dyn Source, stop: &CancellationToken) -> Next {
        let w = self.worker();
        let polled = tokio::select! {
            b = w.timed(Stage::Poll, source.poll(BATCH, Duration::from_millis(200))) => b,
            _ = stop.cancelled() => return Next::Halted(Halt::Stopped),
        };
        if let Some(failed_for) = polled.as_ref().ok().and_then(|_| w.recovered(READ)) {
            tracing::info!(failed_for_s = failed_for.as_secs(), "reading the source works again");
        }
        let messages = match polled {
            Ok(m) if m.is_empty() => return Next::Nothing,
            Ok(m) => m,
            Err(err) if err.kind() == ErrorKind::Fatal => {
                return Next::Halted(Halt::Fatal(format!("reading the source: {err}")));
            }
            Err(err) => {
                // Once per streak: an unreachable broker fails every poll, once a second, for as long as it is out.
                if w.failed(READ, err.to_string()) {
                    tracing::warn!(%err, "reading the source failed; retrying every second until it passes");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                return Next::Nothing;
            }
        };
        // A dependency failing mid-batch (the database, for team lookups)
        // retries the whole batch: nothing is written or committed until it passes.
        let messages: Arc<[Message]> = messages.into();
        w.processing(true);
        let staged = self.stage(Messages::new(messages.clone()), stop).await;
        w.processing(false);
        let Staged { rows: batch, letters, rerouted, origins, marks } = match staged {
            Ok(s) => s,
            Err(halt) => return Next::Halted(halt),
        };
        Next::Batch(Processed {
            read: messages.len(),
            letters,
            rerouted,
            offsets: crate::wire::highest_offsets(&messages),
            origins,
            messages,
            batch: Arc::new(batch),
            marks,
        })
    }

    /// Writes a processed batch everywhere it goes before its commit. Each
    /// write is retried while its failure is transient; events a sink refuses
    /// become dead letters (their reasons are returned for the metrics).
    async fn write(&self, p: &Processed) -> Result<Vec<&'static str>, Halt> {
        let w = self.worker();
        if let Some(d) = &self.definitions {
            d.observe(p.batch.clone());
        }
        // Hot keys' messages go to the overflow topic beside the sinks' writes,
        // not after them: both only have to be done before the commit.
        let rerouted: Vec<(String, &Message)> = p.rerouted.iter().map(|(k, i)| (k.clone(), &p.messages[*i])).collect();
        let (refused, not_rerouted) = tokio::join!(
            w.timed_write(Stage::Write, self.write_rows(p.batch.clone(), 0, None)),
            self.reroute_each(&rerouted)
        );
        let (refused, not_rerouted) = (refused?, not_rerouted?);
        let mut letters: Vec<DeadLetter> = p.letters.iter().map(|l| l.letter(&p.messages)).collect();
        for (index, error) in &refused {
            let message = &p.messages[p.origins[*index]];
            tracing::warn!(partition = message.partition, offset = message.offset, %error,
                "the sink refused an event; it goes to the dead-letter queue");
            letters.push(DeadLetter {
                message,
                reason: "sink_refused",
                detail: error.clone(),
                stage: "write",
                team_id: Some(p.batch.events[*index].team_id),
            });
        }
        let written: std::borrow::Cow<[crate::wire::EventRow]> = if refused.is_empty() {
            (&p.batch.events[..]).into()
        } else {
            let skip: std::collections::HashSet<usize> = refused.iter().map(|(i, _)| *i).collect();
            p.batch.events.iter().enumerate().filter(|(i, _)| !skip.contains(i)).map(|(_, e)| e.clone()).collect()
        };
        // Its person rows are in the sinks now: a crash from here on needs no resync.
        self.stages.persons.settle(&p.marks).await;
        self.hand_off_each(&written).await?;
        for (key, message) in not_rerouted {
            tracing::warn!(%key, "the overflow topic refused a message; it goes to the dead-letter queue");
            letters.push(DeadLetter {
                message,
                reason: "overflow_refused",
                detail: "the overflow topic refused the message".into(),
                stage: "overflow",
                team_id: None,
            });
        }
        w.timed_write(Stage::DeadLetters, self.send_letters(&letters)).await?;
        Ok(refused.iter().map(|_| "sink_refused").collect())
    }

    /// Queues the written events for onEvent/exportEvents; when the queue
    /// refuses the batch for a data reason, each event is queued alone and
    /// the ones still refused are logged and skipped (they are stored; only
    /// their onEvent/exportEvents is lost, which is better than a stalled partition).
    async fn hand_off_each(&self, events: &[crate::wire::EventRow]) -> Result<(), Halt> {
        let Some(h) = &self.handoff else { return Ok(()) };
        match refusal(retry(self.worker(), None, "queue events for onEvent/exportEvents", || h.enqueue(events)).await)?
        {
            None => return Ok(()),
            Some(err) => tracing::warn!(%err, "the job queue refused a batch; queueing its events one by one"),
        }
        for e in events {
            let one = std::slice::from_ref(e);
            if let Some(err) =
                refusal(retry(self.worker(), None, "queue an event for onEvent", || h.enqueue(one)).await)?
            {
                tracing::error!(%err, uuid = %e.uuid, "the job queue refused an event; its onEvent/exportEvents is skipped");
                metrics::global().dropped("handoff_refused", 1);
            }
        }
        Ok(())
    }

    /// Sends hot keys' messages to the overflow topic; returns the ones it
    /// refuses for a data reason, one by one.
    async fn reroute_each<'p>(&self, messages: &[(String, &'p Message)]) -> Result<Vec<(String, &'p Message)>, Halt> {
        let Some(o) = &self.stages.overflow else { return Ok(Vec::new()) };
        if refusal(retry(self.worker(), None, "reroute hot keys to the overflow topic", || o.send(messages)).await)?
            .is_none()
        {
            return Ok(Vec::new());
        }
        let mut refused = Vec::new();
        for m in messages {
            let one = std::slice::from_ref(m);
            if refusal(retry(self.worker(), None, "reroute a hot key's message", || o.send(one)).await)?.is_some() {
                refused.push(m.clone());
            }
        }
        Ok(refused)
    }

    /// Sends dead letters; a letter the queue refuses on its own (too large
    /// for the dead-letter topic, say) is logged in full and dropped.
    async fn send_letters(&self, letters: &[DeadLetter<'_>]) -> Result<(), Halt> {
        if refusal(retry(self.worker(), None, "write dead letters", || self.dlq.send(letters)).await)?.is_none() {
            return Ok(());
        }
        for l in letters {
            let one = std::slice::from_ref(l);
            if let Some(err) = refusal(retry(self.worker(), None, "write a dead letter", || self.dlq.send(one)).await)?
            {
                tracing::error!(%err, reason = l.reason, detail = %l.detail, partition = l.message.partition,
                    offset = l.message.offset, payload = %String::from_utf8_lossy(&l.message.payload),
                    "the dead-letter queue refused a message; it is dropped");
                metrics::global().dropped("dead_letter_refused", 1);
            }
        }
        Ok(())
    }
}

/// A retry without a stop: done (None), refused for a data reason (the
/// error), or a fatal failure that halts.
fn refusal<E: Kinded + std::fmt::Display>(r: Retried<(), E>) -> Result<Option<E>, Halt> {
    match r {
        Retried::Done(()) => Ok(None),
        Retried::Refused(e) if e.kind() == ErrorKind::Fatal => Err(Halt::Fatal(e.to_string())),
        Retried::Refused(e) => Ok(Some(e)),
        Retried::Stopped => Err(Halt::Stopped),
    }
}
