//! What this instance has already proposed, per team, so a batch of known
//! events costs a few hash lookups per event and writes nothing.
//!
//! Bounded by the number of names held across all teams: past the bound the
//! least recently seen teams are forgotten whole. Forgetting is harmless,
//! since their definitions are proposed again and the database keeps the
//! rows it has; only memory is at stake.

use std::collections::{HashMap, HashSet};

use lru::{DefaultHasher, LruCache};

/// Names (event names, properties, event-property pairs) held at most.
pub const MAX_NAMES: usize = 1_000_000;

/// The faster hasher of the `lru` crate: these sets are probed for every
/// property of every event, where std's SipHash costs several times more.
pub type Names = HashSet<Box<str>, DefaultHasher>;

#[derive(Default)]
pub struct TeamKnown {
    /// Whether `ingested_event` was proposed.
    pub ingested: bool,
    pub events: HashMap<Box<str>, EventKnown, DefaultHasher>,
    /// Event properties, person properties, then group properties by group type index.
    pub properties: [Names; 7],
    /// Names held, for the bound.
    names: usize,
}

pub struct EventKnown {
    /// The hour (since the epoch) for which `last_seen_at` was last proposed.
    pub seen_hour: i64,
    /// Properties proposed as this event's (`posthog_eventproperty`).
    pub properties: Names,
}

impl TeamKnown {
    /// Adds `name` to `set`; true when it was not there. Nothing is added
    /// without `room`, so what could not be queued is proposed again later.
    pub fn learn(names: &mut usize, set: &mut Names, name: &str, room: bool) -> bool {
        if !room || set.contains(name) {
            return false;
        }
        set.insert(name.into());
        *names += 1;
        true
    }

    /// The team's names counter and everything it counts, borrowed apart.
    pub fn parts(&mut self) -> (&mut usize, &mut HashMap<Box<str>, EventKnown, DefaultHasher>, &mut [Names; 7]) {
        (&mut self.names, &mut self.events, &mut self.properties)
    }
}

pub struct Known {
    teams: LruCache<i64, TeamKnown>,
}

impl Default for Known {
    fn default() -> Self {
        Known { teams: LruCache::unbounded() }
    }
}

impl Known {
    pub fn team(&mut self, team_id: i64) -> &mut TeamKnown {
        self.teams.get_or_insert_mut(team_id, TeamKnown::default)
    }

    /// Forgets the least recently seen teams until at most `max` names are held.
    pub fn shrink_to(&mut self, max: usize) {
        let mut held: usize = self.teams.iter().map(|(_, t)| t.names).sum();
        while held > max {
            let Some((team_id, t)) = self.teams.pop_lru() else { break };
            tracing::debug!(team_id, names = t.names, "forgetting the definitions known of a team");
            held -= t.names;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_seen_teams_are_forgotten_past_the_bound() {
        let mut known = Known::default();
        for team_id in 0..10 {
            let (names, _, sets) = known.team(team_id).parts();
            for i in 0..100 {
                assert!(TeamKnown::learn(names, &mut sets[0], &format!("p{i}"), true));
            }
            assert!(!TeamKnown::learn(names, &mut sets[0], "p0", true), "known already");
            assert!(!TeamKnown::learn(names, &mut sets[0], "new", false), "no room: not learnt");
        }
        known.team(0);
        known.shrink_to(500);
        let held: usize = known.teams.iter().map(|(_, t)| t.names).sum();
        assert_eq!((known.teams.len(), held), (5, 500));
        assert!(known.teams.contains(&0), "the team seen last stays");
        assert!(!known.teams.contains(&1) && known.teams.contains(&9));
    }
}
