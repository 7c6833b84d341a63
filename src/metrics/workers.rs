//! Per-worker activity: which stage a worker is in, since when it holds its
//! batch, and how much of its time went to batches (the busy ratio).

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Instant;

use super::global;

/// The pipeline's stages, as timed and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    Poll,
    Normalize,
    Team,
    Plugins,
    Persons,
    Write,
    DeadLetters,
    Commit,
    /// A whole batch, from read to commit.
    Batch,
}

impl Stage {
    pub const ALL: [Stage; 9] = [
        Stage::Poll,
        Stage::Normalize,
        Stage::Team,
        Stage::Plugins,
        Stage::Persons,
        Stage::Write,
        Stage::DeadLetters,
        Stage::Commit,
        Stage::Batch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Poll => "poll",
            Stage::Normalize => "normalize",
            Stage::Team => "team",
            Stage::Plugins => "plugins",
            Stage::Persons => "persons",
            Stage::Write => "write",
            Stage::DeadLetters => "dead_letters",
            Stage::Commit => "commit",
            Stage::Batch => "batch",
        }
    }
}

const IDLE: u8 = u8::MAX;

fn name(stage: u8) -> &'static str {
    Stage::ALL.get(stage as usize).map_or("idle", |s| s.as_str())
}

pub struct WorkerStats {
    pub id: u32,
    /// Micros spent on finished batches.
    busy: AtomicU64,
    /// Micros since the registry epoch, plus one, when the batch in hand was read; 0 when idle.
    batch_since: AtomicU64,
    /// The stage of the reading half: poll, then processing the next batch.
    stage: AtomicU8,
    /// The stage of the writing half, which writes the batch in hand while
    /// the reading half polls and processes the next one; IDLE when none.
    write_stage: AtomicU8,
    in_hand: AtomicU64,
    /// The calls of this worker being retried, by what they do: the write of
    /// one batch and the processing of the next can fail at the same time.
    failing: Mutex<Vec<Failing>>,
    /// Micros since the registry epoch, plus one, when the batch being
    /// processed (not yet in hand) was polled; 0 when none is.
    processing_since: AtomicU64,
}

/// A call that keeps failing: what, since when, and its latest error.
#[derive(Debug, Clone)]
pub struct Failing {
    pub what: &'static str,
    pub since: Instant,
    pub error: String,
}

impl WorkerStats {
    pub(super) fn new(id: u32) -> Self {
        WorkerStats {
            id,
            busy: AtomicU64::new(0),
            batch_since: AtomicU64::new(0),
            stage: AtomicU8::new(IDLE),
            write_stage: AtomicU8::new(IDLE),
            in_hand: AtomicU64::new(0),
            failing: Mutex::new(Vec::new()),
            processing_since: AtomicU64::new(0),
        }
    }

    /// A batch of `n` messages was read and is now in hand.
    pub fn begin_batch(&self, n: usize) {
        let m = global();
        m.events_in.add(n as u64);
        m.batch_size.record(n as u64);
        self.in_hand.store(n as u64, Ordering::Relaxed);
        self.batch_since.store(m.micros_since_epoch(Instant::now()) + 1, Ordering::Relaxed);
    }

    /// The batch in hand is committed (or abandoned at shutdown).
    pub fn end_batch(&self) {
        let m = global();
        let since = self.batch_since.swap(0, Ordering::Relaxed);
        if since > 0 {
            let took = m.micros_since_epoch(Instant::now()).saturating_sub(since - 1);
            self.busy.fetch_add(took, Ordering::Relaxed);
            m.stage(Stage::Batch).record(took);
        }
        self.in_hand.store(0, Ordering::Relaxed);
        self.stage.store(IDLE, Ordering::Relaxed);
        self.write_stage.store(IDLE, Ordering::Relaxed);
    }

    /// Runs `work` as `stage` of this worker, timing it.
    pub async fn timed<T>(&self, stage: Stage, work: impl Future<Output = T>) -> T {
        self.stage.store(stage as u8, Ordering::Relaxed);
        let start = Instant::now();
        let out = work.await;
        global().stage(stage).record_duration(start.elapsed());
        out
    }

    /// The synchronous [`timed`](Self::timed).
    pub fn timed_sync<T>(&self, stage: Stage, work: impl FnOnce() -> T) -> T {
        self.stage.store(stage as u8, Ordering::Relaxed);
        let start = Instant::now();
        let out = work();
        global().stage(stage).record_duration(start.elapsed());
        out
    }

    /// Runs `work` as `stage` of the writing half, timing it. Kept apart from
    /// the reading half's stage: the two run at once, and one field for both
    /// showed a written batch waiting on the next poll as `dead_letters`.
    pub async fn timed_write<T>(&self, stage: Stage, work: impl Future<Output = T>) -> T {
        self.write_stage.store(stage as u8, Ordering::Relaxed);
        let start = Instant::now();
        let out = work.await;
        global().stage(stage).record_duration(start.elapsed());
        self.write_stage.store(IDLE, Ordering::Relaxed);
        out
    }

    /// What the worker is doing: the write of the batch in hand while there
    /// is one, else the reading half's stage.
    pub fn stage_name(&self) -> &'static str {
        match self.write_stage.load(Ordering::Relaxed) {
            IDLE => self.reading_stage_name(),
            s => name(s),
        }
    }

    /// The reading half's stage (poll, or processing the next batch).
    pub fn reading_stage_name(&self) -> &'static str {
        name(self.stage.load(Ordering::Relaxed))
    }

    pub fn in_hand(&self) -> u64 {
        self.in_hand.load(Ordering::Relaxed)
    }

    /// Micros spent on batches so far, counting the one in hand.
    pub fn busy_micros(&self) -> u64 {
        let since = self.batch_since.load(Ordering::Relaxed);
        let current = if since > 0 { global().micros_since_epoch(Instant::now()).saturating_sub(since - 1) } else { 0 };
        self.busy.load(Ordering::Relaxed) + current
    }

    /// A polled batch is being processed (`true`), or is done with (`false`).
    pub fn processing(&self, started: bool) {
        let since = if started { global().micros_since_epoch(Instant::now()) + 1 } else { 0 };
        self.processing_since.store(since, Ordering::Relaxed);
    }

    /// How long the batch being processed has taken so far.
    pub fn processing_for(&self) -> Option<std::time::Duration> {
        since(&self.processing_since)
    }

    /// `what` failed (again) with `error` and will be retried.
    /// True when this starts a streak of failures (`what` was not failing already).
    pub fn failed(&self, what: &'static str, error: String) -> bool {
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        match failing.iter_mut().find(|f| f.what == what) {
            Some(f) => {
                f.error = error;
                false
            }
            None => {
                failing.push(Failing { what, since: Instant::now(), error });
                true
            }
        }
    }

    /// `what` passed (or was given up): how long it had been failing, if it was.
    pub fn recovered(&self, what: &'static str) -> Option<std::time::Duration> {
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        let since = failing.iter().find(|f| f.what == what).map(|f| f.since.elapsed());
        failing.retain(|f| f.what != what);
        since
    }

    /// The call that has been failing longest, if any.
    pub fn failing(&self) -> Option<Failing> {
        self.failing.lock().unwrap_or_else(|p| p.into_inner()).first().cloned()
    }

    /// How long the batch in hand has been held; None when idle.
    pub fn holding_for(&self) -> Option<std::time::Duration> {
        since(&self.batch_since)
    }
}

/// The time since a `*_since` mark (micros since the epoch plus one; 0: none).
fn since(mark: &AtomicU64) -> Option<std::time::Duration> {
    let since = mark.load(Ordering::Relaxed);
    (since > 0).then(|| {
        std::time::Duration::from_micros(global().micros_since_epoch(Instant::now()).saturating_sub(since - 1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writing half and the reading half run at once: the stage shown is
    /// the write while it runs, then the poll it waits on, not the last stage
    /// the write timed (which showed a written batch as held in `dead_letters`).
    #[tokio::test]
    async fn a_write_beside_a_poll_shows_the_write_then_the_poll() {
        let w = WorkerStats::new(7);
        let (release_write, write_done) = tokio::sync::oneshot::channel::<()>();
        let (release_poll, poll_done) = tokio::sync::oneshot::channel::<()>();
        let both = async {
            tokio::join!(
                w.timed_write(Stage::DeadLetters, async { write_done.await.unwrap() }),
                w.timed(Stage::Poll, async { poll_done.await.unwrap() })
            )
        };
        let check = async {
            tokio::task::yield_now().await;
            assert_eq!(w.stage_name(), "dead_letters");
            assert_eq!(w.reading_stage_name(), "poll");
            release_write.send(()).unwrap();
            tokio::task::yield_now().await;
            assert_eq!(w.stage_name(), "poll", "the write is over; the batch waits on the poll");
            release_poll.send(()).unwrap();
        };
        tokio::join!(both, check);
    }

    #[test]
    fn concurrent_failures_recover_one_by_one() {
        let w = WorkerStats::new(99);
        w.failed("write events", "down".into());
        w.failed("process a batch", "locked".into());
        w.recovered("process a batch");
        assert_eq!(w.failing().map(|f| f.what), Some("write events"), "the write still fails");
        w.recovered("write events");
        assert!(w.failing().is_none());
    }
}
