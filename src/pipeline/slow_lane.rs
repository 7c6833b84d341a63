//! Slow teams. Every event of a batch waits for the batch's slowest
//! processEvent call, so one plugin that spins, waits on a server that
//! never answers or captures in a loop would hold up every team's events
//! for as long as its limits allow (500 ms of CPU, 2 s of wall time), and
//! again on each call until it is disabled. The main pipeline gives each
//! call a budget instead (PHS_SLOW_LANE_MS): a call that runs past it is
//! cut, and its event, with the rest of that team's events from then on,
//! goes unchanged to the overflow lane, where the second pipeline runs them
//! with the full limits (where an offender is disabled as before). As
//! PostHog's HogWatcher does for its functions, a team leaves the slow lane
//! once its calls there have stayed within the budget for [`SLOW_FOR`].
//!
//! The cut call ran part of the way: its side effects (a capture, a fetch)
//! may happen again when the event runs in the overflow lane, as after a
//! crash. A team's events in the two lanes are ingested concurrently, so a
//! person's events may be applied out of order around a switch, as for hot
//! keys.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a team stays in the slow lane after its last call over the budget.
pub const SLOW_FOR: Duration = Duration::from_secs(60);

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
}

impl SlowTeams {
    pub fn new(budget: Duration) -> Self {
        SlowTeams { budget, until: Mutex::new(HashMap::new()), marked: AtomicUsize::new(0) }
    }

    /// The time a processEvent chain may take in the main pipeline.
    pub fn budget(&self) -> Duration {
        self.budget
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
                self.marked.store(until.len(), Ordering::Relaxed);
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
        self.marked.store(until.len(), Ordering::Relaxed);
        !was
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
}
