//! Plugin storage kept in memory: for `phs plugins test`, which runs with no
//! database, and as the base of replay's dry-run overlay.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{PluginStorage, Result, StoreError};

#[derive(Default)]
pub struct MemoryStorage {
    values: Mutex<HashMap<(i64, String), String>>,
}

impl MemoryStorage {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<(i64, String), String>) -> T) -> T {
        f(&mut self.values.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[async_trait]
impl PluginStorage for MemoryStorage {
    async fn storage_get(&self, id: i64, key: &str) -> Result<Option<String>> {
        Ok(self.with(|m| m.get(&(id, key.to_string())).cloned()))
    }

    async fn storage_set(&self, id: i64, key: &str, value: &str) -> Result<()> {
        self.with(|m| m.insert((id, key.to_string()), value.to_string()));
        Ok(())
    }

    async fn storage_del(&self, id: i64, key: &str) -> Result<bool> {
        Ok(self.with(|m| m.remove(&(id, key.to_string())).is_some()))
    }

    async fn storage_set_if_absent(&self, id: i64, key: &str, value: &str) -> Result<bool> {
        Ok(self.with(|m| match m.entry((id, key.to_string())) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(value.to_string());
                true
            }
        }))
    }

    async fn storage_incr(&self, id: i64, key: &str, by: i64) -> Result<i64> {
        self.with(|m| {
            let slot = m.entry((id, key.to_string())).or_insert_with(|| "0".into());
            let n: i64 = slot
                .parse()
                .map_err(|_| StoreError::Invalid(format!("storage key `{key}` does not hold an integer")))?;
            let n = n + by;
            *slot = n.to_string();
            Ok(n)
        })
    }
}

/// A job queue kept in memory, for `phs plugins test`, where jobs a plugin
/// enqueues are run by the fixture runner rather than by a worker.
#[derive(Default)]
pub struct MemoryJobs {
    jobs: Mutex<Vec<(super::Job, i64)>>,
    next_id: std::sync::atomic::AtomicI64,
}

#[async_trait]
impl super::JobQueue for MemoryJobs {
    async fn enqueue_jobs(&self, jobs: &[super::NewJob]) -> Result<()> {
        let mut held = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        for j in jobs {
            let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            held.push((super::Job { id, spec: j.clone() }, 0));
        }
        Ok(())
    }

    async fn claim_jobs(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        lease: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<super::Job>> {
        let mut held = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        held.sort_by_key(|(j, _)| (j.spec.run_at, j.id));
        let (now_ms, until) = (now.timestamp_millis(), now.timestamp_millis() + lease.as_millis() as i64);
        Ok(held
            .iter_mut()
            .filter(|(j, locked)| j.spec.run_at.timestamp_millis() <= now_ms && *locked <= now_ms)
            .take(limit.max(0) as usize)
            .map(|(j, locked)| {
                *locked = until;
                j.clone()
            })
            .collect())
    }

    async fn extend_leases(
        &self,
        ids: &[i64],
        now: chrono::DateTime<chrono::Utc>,
        lease: std::time::Duration,
    ) -> Result<()> {
        let until = now.timestamp_millis() + lease.as_millis() as i64;
        let mut held = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        for (_, locked) in held.iter_mut().filter(|(j, _)| ids.contains(&j.id)) {
            *locked = until;
        }
        Ok(())
    }

    async fn finish_job(&self, id: i64) -> Result<()> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).retain(|(j, _)| j.id != id);
        Ok(())
    }

    async fn pending_jobs(&self, plugin_config_id: Option<i64>) -> Result<i64> {
        let held = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        Ok(held.iter().filter(|(j, _)| plugin_config_id.is_none_or(|id| j.spec.plugin_config_id == id)).count() as i64)
    }
}
