//! Slow teams. Every event of a batch waits for the batch's slowest
//! processEvent call, so one plugin that spins, waits on a server that
//! never answers or captures in a loop would hold up every team's events
//! for as long as its limits allow (500 ms of CPU, 2 s of wall time), and
//! again on each call until it is disabled. The main pipeline gives each
//! event's processEvent chain a budget instead (PHS_SLOW_LANE_MS): a call
//! that runs past it is cut, and its event, with the rest of that team's
//! events from then on, goes unchanged to the overflow lane, where the
//! second pipeline runs them with the full limits (where an offender is
//! disabled as before). As
//! PostHog's HogWatcher does for its functions, a team leaves the slow lane
//! once its calls there have stayed within the budget for [`SLOW_FOR`].
//!
//! The cut call ran part of the way: its side effects (a capture, a fetch)
//! may happen again when the event runs in the overflow lane, as after a
//! crash. A team's events in the two lanes are ingested concurrently, so a
//! person's events may be applied out of order around a switch, as for hot
//! keys.
//!
//! Cutting the call frees the batch, not the cores: an offender that spins
//! for its 500 ms in the overflow lane would take them from the main
//! pipeline all the same, and a Lua call that runs without awaiting keeps
//! its runtime thread (and the tasks queued behind it) for as long. So slow
//! teams' plugin calls in the overflow lane run on threads of their own
//! under Linux's SCHED_IDLE policy: the main pipeline's threads get the
//! cores first, and slow teams have whatever they leave. Their awaits
//! (fetch, the cache) stay on the main runtime's I/O driver and timers. Hot
//! keys' events, which share the overflow lane, are bursty rather than
//! costly: their calls run as the main pipeline's do.
//!
//! SCHED_IDLE rather than a nice value: at nice 10 a spinning offender still
//! had a tenth of a contended core, and kept it until its time slice ended
//! each time a main pipeline thread woke; an idle-policy thread gives the
//! core up as soon as any other thread wants it. (`scripts/bench hostile`
//! with only the spinner went from 88% to 98% of the baseline.)

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_executor::ThreadPool;
use futures_util::FutureExt;

use crate::plugins::Budget;

/// How long a team stays in the slow lane after its last call over the budget.
pub const SLOW_FOR: Duration = Duration::from_secs(60);

/// The most of the budget a chain may spend computing. A Lua call that
/// computes holds its shard's thread, and every other event of the shard
/// waits behind it, where one that awaits a fetch lets them run; and a
/// plugin that needs 10 ms of CPU per event (millions of Lua instructions)
/// is no ordinary transform.
pub const CPU_BUDGET: Duration = Duration::from_millis(10);

/// The teams whose events go to the overflow lane, and the budget that
/// decides it; shared by the main pipeline (which cuts and reroutes) and
/// the overflow one (which keeps a team marked while its calls stay slow).
pub struct SlowTeams {
    budget: Duration,
    /// Each slow team and when it leaves the slow lane.
    until: Mutex<HashMap<i64, Instant>>,
    /// Entries of `until`: most of the time none, and then every event
    /// passes without taking the lock.
    marked: AtomicUsize,
    /// The overflow lane's plugin threads, started at its first call.
    threads: OnceLock<Option<ThreadPool>>,
}

impl SlowTeams {
    pub fn new(budget: Duration) -> Self {
        SlowTeams { budget, until: Mutex::new(HashMap::new()), marked: AtomicUsize::new(0), threads: OnceLock::new() }
    }

    /// The time an event's plugin chain may take in the main pipeline: the
    /// setting in all, and at most [`CPU_BUDGET`] of it computing.
    pub fn budget(&self) -> Budget {
        Budget { wall: self.budget, cpu: self.budget.min(CPU_BUDGET) }
    }

    /// Whether the team's events go to the overflow lane now.
    pub fn is_slow(&self, team_id: i64) -> bool {
        if self.marked.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        match until.get(&team_id) {
            Some(t) if *t > Instant::now() => true,
            Some(_) => {
                until.remove(&team_id);
                self.count(until.len());
                false
            }
            None => false,
        }
    }

    /// Puts the team in the slow lane for [`SLOW_FOR`] from now; true when
    /// it was not there already (the moment to say so).
    pub fn mark(&self, team_id: i64) -> bool {
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let was = until.insert(team_id, now + SLOW_FOR).is_some_and(|t| t > now);
        self.count(until.len());
        !was
    }

    /// A team that left the slow lane is counted out when its next event
    /// is checked: until then the gauge may show it a little longer.
    fn count(&self, teams: usize) {
        self.marked.store(teams, Ordering::Relaxed);
        crate::metrics::global().slow_lane_teams.store(teams as i64, Ordering::Relaxed);
    }

    /// Runs `call` (a slow team's plugin calls in the overflow lane) on the low-priority
    /// threads, within the current tokio runtime; a panic in it is raised
    /// again here. Inline if the threads could not be started.
    pub async fn run_low<T: Send + 'static>(&self, call: impl Future<Output = T> + Send + 'static) -> T {
        let Some(threads) = self.threads.get_or_init(low_priority_threads) else { return call.await };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let call = AssertUnwindSafe(call).catch_unwind().map(move |r| {
            let _ = tx.send(r);
        });
        threads.spawn_ok(InRuntime { runtime: tokio::runtime::Handle::current(), call: Box::pin(call) });
        match rx.await {
            Ok(Ok(v)) => v,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // spawn_ok runs every task it takes to its end, so the sender is only dropped by a panic.
            Err(_) => std::panic::resume_unwind(Box::new("the overflow lane's plugin thread dropped a call")),
        }
    }
}

/// As many threads as cores, each under SCHED_IDLE.
fn low_priority_threads() -> Option<ThreadPool> {
    let n = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool =
        ThreadPool::builder().pool_size(n).name_prefix("phs-slow-lane-").after_start(|_| lower_priority()).create();
    pool.map_err(
        |err| tracing::warn!(%err, "could not start the slow lane's threads; its calls run beside the main pipeline's"),
    )
    .ok()
}

/// Puts the calling thread under SCHED_IDLE (Linux: the policy is per
/// thread); it runs only when no other thread wants its core.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_setscheduler with pid 0 changes only the calling thread's policy, and an
    // unprivileged thread may always lower its own.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            tracing::warn!(err = %std::io::Error::last_os_error(),
                "could not lower a slow-lane thread's priority; slow teams' calls compete with the main pipeline's");
        }
    }
}

/// A future polled on a thread outside the runtime, with the runtime's
/// context entered at each poll: its I/O, timers and spawns are the runtime's.
struct InRuntime {
    runtime: tokio::runtime::Handle,
    call: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Future for InRuntime {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let _entered = this.runtime.enter();
        this.call.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marked_team_is_slow_and_others_are_not() {
        let slow = SlowTeams::new(Duration::from_millis(100));
        assert!(!slow.is_slow(1));
        assert!(slow.mark(1), "newly slow");
        assert!(!slow.mark(1), "marked again: already slow");
        assert!(slow.is_slow(1));
        assert!(!slow.is_slow(2));
    }

    #[test]
    fn a_team_leaves_the_slow_lane_when_its_time_is_over() {
        let slow = SlowTeams::new(Duration::from_millis(100));
        slow.mark(7);
        slow.until.lock().unwrap().insert(7, Instant::now() - Duration::from_millis(1));
        assert!(!slow.is_slow(7));
        assert_eq!(slow.marked.load(Ordering::Relaxed), 0, "forgotten, so later events skip the lock");
        assert!(slow.mark(7), "slow again: said again");
    }

    #[tokio::test]
    async fn the_overflow_lanes_calls_run_on_low_priority_threads_within_the_runtime() {
        let slow = SlowTeams::new(Duration::from_millis(100));
        let (name, policy) = slow
            .run_low(async {
                // The runtime's timer, from a thread that is not one of its own.
                tokio::time::sleep(Duration::from_millis(5)).await;
                // SAFETY: sched_getscheduler of the calling thread only reads its policy.
                let policy = unsafe { libc::sched_getscheduler(0) };
                (std::thread::current().name().map(String::from), policy)
            })
            .await;
        assert!(name.is_some_and(|n| n.starts_with("phs-slow-lane-")));
        assert_eq!(policy, libc::SCHED_IDLE);
        let panicked = AssertUnwindSafe(slow.run_low(async { panic!("a plugin call's bug") })).catch_unwind().await;
        assert!(panicked.is_err(), "the panic reaches the caller");
        assert_eq!(slow.run_low(async { 7 }).await, 7, "and the threads serve the next call");
    }
}
