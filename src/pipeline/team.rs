//! Stage 2: the team an event belongs to, found by its API token and cached.
//! Unknown tokens are cached briefly too, so a flood of bad tokens does not
//! become a flood of queries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::{Store, StoreError, Team};

const TTL: Duration = Duration::from_secs(30);
/// Short, so a team created just after its first refused event starts working quickly.
const UNKNOWN_TTL: Duration = Duration::from_secs(2);

/// Token -> when it was looked up, and its team (None: no team has it).
type Entries = HashMap<String, (Instant, Option<Arc<Team>>)>;

pub struct TeamCache {
    store: Arc<dyn Store>,
    /// Shared, not cloned, per event: a team holds several strings.
    cached: Mutex<Entries>,
}

impl TeamCache {
    pub fn new(store: Arc<dyn Store>) -> Self {
        TeamCache { store, cached: Mutex::new(HashMap::new()) }
    }

    pub async fn by_token(&self, token: &str) -> Result<Option<Arc<Team>>, StoreError> {
        if let Some((at, team)) = self.lock().get(token)
            && at.elapsed() < if team.is_some() { TTL } else { UNKNOWN_TTL }
        {
            return Ok(team.clone());
        }
        let team = self.store.team_by_token(token).await?.map(Arc::new);
        self.lock().insert(token.to_string(), (Instant::now(), team.clone()));
        Ok(team)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }
}
