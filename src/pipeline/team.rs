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

    /// Unknown tokens remembered now (for tests of the bound).
    pub fn unknown_len(&self) -> usize {
        self.lock().unknown.len()
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }
}
