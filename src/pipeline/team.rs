//! Stage 2: the team an event belongs to, found by its API token and cached.
//! Unknown tokens are cached briefly too, so a flood of bad tokens does not
//! become a flood of queries; that cache is bounded (an LRU of short tokens),
//! since its keys are whatever clients send.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::store::{StoreError, Team, TeamStore};

const TTL: Duration = Duration::from_secs(30);
/// Short, so a team created just after its first refused event starts working quickly.
const UNKNOWN_TTL: Duration = Duration::from_secs(2);
/// Unknown tokens remembered at once; the least recently seen go first.
const UNKNOWN_KEPT: usize = 10_000;
/// Longer unknown tokens are not remembered: real tokens are far shorter,
/// and remembering megabyte-long ones would make the bound meaningless.
const UNKNOWN_MAX_BYTES: usize = 256;

struct Entries {
    /// Token -> when it was looked up, and its team. Bounded by the teams that exist.
    known: HashMap<String, (Instant, Arc<Team>)>,
    /// Tokens no team had when last looked up.
    unknown: LruCache<String, Instant>,
}

pub struct TeamCache {
    store: Arc<dyn TeamStore>,
    /// Shared, not cloned, per event: a team holds several strings.
    cached: Mutex<Entries>,
}

impl TeamCache {
    pub fn new(store: Arc<dyn TeamStore>) -> Self {
        let kept = NonZeroUsize::new(UNKNOWN_KEPT).expect("a non-zero constant");
        TeamCache { store, cached: Mutex::new(Entries { known: HashMap::new(), unknown: LruCache::new(kept) }) }
    }

    pub async fn by_token(&self, token: &str) -> Result<Option<Arc<Team>>, StoreError> {
        {
            let mut cached = self.lock();
            if let Some((at, team)) = cached.known.get(token)
                && at.elapsed() < TTL
            {
                return Ok(Some(team.clone()));
            }
            if cached.unknown.get(token).is_some_and(|at| at.elapsed() < UNKNOWN_TTL) {
                return Ok(None);
            }
        }
        let team = self.store.team_by_token(token).await?.map(Arc::new);
        let mut cached = self.lock();
        match &team {
            Some(t) => {
                cached.unknown.pop(token);
                cached.known.insert(token.to_string(), (Instant::now(), t.clone()));
            }
            None => {
                cached.known.remove(token);
                if token.len() <= UNKNOWN_MAX_BYTES {
                    cached.unknown.put(token.to_string(), Instant::now());
                }
            }
        }
        Ok(team)
    }

    /// Unknown tokens remembered now.
    #[cfg(test)]
    fn unknown_len(&self) -> usize {
        self.lock().unknown.len()
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewTeam, Result};

    /// A store that knows no team: every lookup is of an unknown token.
    struct NoTeams;

    #[async_trait::async_trait]
    impl TeamStore for NoTeams {
        async fn create_team(&self, _: NewTeam) -> Result<Team> {
            unimplemented!("not used")
        }
        async fn list_teams(&self) -> Result<Vec<Team>> {
            Ok(Vec::new())
        }
        async fn team_by_token(&self, _: &str) -> Result<Option<Team>> {
            Ok(None)
        }
        async fn team_by_id(&self, _: i64) -> Result<Option<Team>> {
            Ok(None)
        }
    }

    #[tokio::test]
    async fn a_flood_of_unknown_tokens_is_remembered_within_the_bound() {
        let teams = TeamCache::new(Arc::new(NoTeams));
        for i in 0..UNKNOWN_KEPT + 500 {
            assert!(teams.by_token(&format!("phc_{i}")).await.unwrap().is_none());
        }
        assert_eq!(teams.unknown_len(), UNKNOWN_KEPT);
        teams.by_token(&"x".repeat(UNKNOWN_MAX_BYTES + 1)).await.unwrap();
        assert_eq!(teams.unknown_len(), UNKNOWN_KEPT, "a huge token is not remembered");
    }
}
