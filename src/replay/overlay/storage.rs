//! `meta.storage` and the job queue in a dry run. Storage reads through to
//! the real store until the run first touches a key; from then on the
//! overlay's copy is the value (a delete included), so a plugin sees its own
//! writes and the real rows stay as they were. Jobs are recorded, never queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Recorder, SideEffect};
use crate::store::{Job, JobQueue, NewJob, PluginStorage, Result};

/// Keys the run wrote: `None` is a key it deleted.
#[derive(Default)]
pub struct Shadow(Mutex<HashMap<(i64, String), Option<String>>>);

pub struct OverlayStorage {
    pub real: Arc<dyn PluginStorage>,
    pub shadow: Arc<Shadow>,
    pub recorder: Arc<Recorder>,
}

impl OverlayStorage {
    async fn current(&self, id: i64, key: &str) -> Result<Option<String>> {
        let shadowed = self.shadow.0.lock().unwrap_or_else(|p| p.into_inner()).get(&(id, key.to_string())).cloned();
        match shadowed {
            Some(v) => Ok(v),
            None => self.real.storage_get(id, key).await,
        }
    }

    fn write(&self, id: i64, op: &'static str, key: &str, value: Option<String>) {
        self.shadow.0.lock().unwrap_or_else(|p| p.into_inner()).insert((id, key.to_string()), value.clone());
        self.recorder.record(SideEffect::Storage {
            config: id,
            op,
            key: key.to_string(),
            value: super::written(value),
        });
    }
}

#[async_trait]
impl PluginStorage for OverlayStorage {
    async fn storage_get(&self, id: i64, key: &str) -> Result<Option<String>> {
        self.current(id, key).await
    }

    async fn storage_set(&self, id: i64, key: &str, value: &str) -> Result<()> {
        self.write(id, "set", key, Some(value.to_string()));
        Ok(())
    }

    async fn storage_del(&self, id: i64, key: &str) -> Result<bool> {
        let existed = self.current(id, key).await?.is_some();
        self.write(id, "del", key, None);
        Ok(existed)
    }

    async fn storage_set_if_absent(&self, id: i64, key: &str, value: &str) -> Result<bool> {
        if self.current(id, key).await?.is_some() {
            return Ok(false);
        }
        self.write(id, "set", key, Some(value.to_string()));
        Ok(true)
    }

    async fn storage_incr(&self, id: i64, key: &str, by: i64) -> Result<i64> {
        let now = self.current(id, key).await?;
        let n = match now {
            None => 0,
            Some(v) => v.trim().parse::<i64>().map_err(|_| {
                crate::store::StoreError::Invalid(format!("storage key `{key}` does not hold an integer"))
            })?,
        };
        let next = n.saturating_add(by);
        self.write(id, "incr", key, Some(next.to_string()));
        Ok(next)
    }
}

pub struct OverlayJobs {
    pub real: Arc<dyn JobQueue>,
    pub recorder: Arc<Recorder>,
}

#[async_trait]
impl JobQueue for OverlayJobs {
    async fn enqueue_jobs(&self, jobs: &[NewJob]) -> Result<()> {
        for j in jobs {
            self.recorder.record(SideEffect::Job { config: j.plugin_config_id, name: j.name.clone() });
        }
        Ok(())
    }

    /// A dry run runs no jobs.
    async fn claim_jobs(&self, _: chrono::DateTime<chrono::Utc>, _: std::time::Duration, _: i64) -> Result<Vec<Job>> {
        Ok(Vec::new())
    }

    async fn extend_leases(&self, _: &[i64], _: chrono::DateTime<chrono::Utc>, _: std::time::Duration) -> Result<()> {
        Ok(())
    }

    async fn finish_job(&self, _: i64) -> Result<()> {
        Ok(())
    }

    async fn pending_jobs(&self, plugin_config_id: Option<i64>) -> Result<i64> {
        self.real.pending_jobs(plugin_config_id).await
    }
}
