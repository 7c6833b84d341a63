//! Stage 2: the team an event belongs to, found by its API token and cached.
//! Unknown tokens are cached briefly too, so a flood of bad tokens does not
//! become a flood of queries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::store::{Store, StoreError, Team};

const TTL: Duration = Duration::from_secs(30);
/// Short, so a team created just after its first refused event starts working quickly.
const UNKNOWN_TTL: Duration = Duration::from_secs(2);

pub struct TeamCache {
    store: Arc<dyn Store>,
    cached: Mutex<HashMap<String, (Instant, Option<Team>)>>,
}

impl TeamCache {
    pub fn new(store: Arc<dyn Store>) -> Self {
        TeamCache { store, cached: Mutex::new(HashMap::new()) }
    }

    pub async fn by_token(&self, token: &str) -> Result<Option<Team>, StoreError> {
        if let Some((at, team)) = self.cached.lock().await.get(token) {
            if at.elapsed() < if team.is_some() { TTL } else { UNKNOWN_TTL } {
                return Ok(team.clone());
            }
        }
        let team = self.store.team_by_token(token).await?;
        self.cached.lock().await.insert(token.to_string(), (Instant::now(), team.clone()));
        Ok(team)
    }
}
