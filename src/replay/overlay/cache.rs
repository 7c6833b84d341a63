//! `meta.cache` in a dry run: a key is copied from the real cache into an
//! in-memory one the first time the run touches it, and from then on every
//! operation, a write included, goes to the copy. The real cache is read,
//! never written.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Recorder, SideEffect};
use crate::cache::memory::MemoryCache;
use crate::cache::{Cache, CacheError, Result};

#[derive(Default)]
pub struct Shadow {
    copy: MemoryCache,
    /// Keys copied (or found missing): the copy is their value now. Held
    /// across the copy, so two shards never copy a list twice.
    touched: tokio::sync::Mutex<HashSet<String>>,
}

pub struct OverlayCache {
    pub real: Arc<dyn Cache>,
    pub shadow: Arc<Shadow>,
    pub recorder: Arc<Recorder>,
}

impl OverlayCache {
    /// The in-memory copy, with `key` copied from the real cache on first use.
    async fn copy_of(&self, key: &str) -> Result<&MemoryCache> {
        let mut touched = self.shadow.touched.lock().await;
        if touched.contains(key) {
            return Ok(&self.shadow.copy);
        }
        match self.real.get(key).await {
            Ok(Some(v)) => self.shadow.copy.set(key, &v, None).await?,
            Ok(None) => {}
            Err(CacheError::WrongType { .. }) => {
                let mut list = self.real.lrange(key, 0, -1).await?;
                list.reverse();
                self.shadow.copy.lpush(key, &list).await?;
            }
            Err(e) => return Err(e),
        }
        touched.insert(key.to_string());
        Ok(&self.shadow.copy)
    }

    fn record(&self, op: &'static str, key: &str, value: Option<String>) {
        self.recorder.record(SideEffect::Cache { op, key: key.to_string(), value: super::written(value) });
    }
}

#[async_trait]
impl Cache for OverlayCache {
    fn backend(&self) -> &'static str {
        "dry-run overlay"
    }

    async fn ping(&self) -> Result<()> {
        self.real.ping().await
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        self.copy_of(key).await?.get(key).await
    }

    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<()> {
        self.record("set", key, Some(value.to_string()));
        self.copy_of(key).await?.set(key, value, ttl).await
    }

    async fn incr(&self, key: &str, by: i64) -> Result<i64> {
        let n = self.copy_of(key).await?.incr(key, by).await?;
        self.record("incr", key, Some(n.to_string()));
        Ok(n)
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        self.record("expire", key, Some(format!("{} s", ttl.as_secs())));
        self.copy_of(key).await?.expire(key, ttl).await
    }

    async fn del(&self, key: &str) -> Result<bool> {
        self.record("del", key, None);
        self.copy_of(key).await?.del(key).await
    }

    async fn lock(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool> {
        self.record("lock", key, Some(owner.to_string()));
        self.copy_of(key).await?.lock(key, owner, ttl).await
    }

    async fn unlock(&self, key: &str, owner: &str) -> Result<bool> {
        self.record("unlock", key, Some(owner.to_string()));
        self.copy_of(key).await?.unlock(key, owner).await
    }

    async fn keys(&self, prefix: &str) -> Result<Vec<String>> {
        let touched = self.shadow.touched.lock().await;
        let mut keys: Vec<String> =
            self.real.keys(prefix).await?.into_iter().filter(|k| !touched.contains(k)).collect();
        keys.extend(self.shadow.copy.keys(prefix).await?);
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    async fn lpush(&self, key: &str, values: &[String]) -> Result<i64> {
        self.record("lpush", key, Some(values.join(", ")));
        self.copy_of(key).await?.lpush(key, values).await
    }

    async fn lrange(&self, key: &str, start: i64, end: i64) -> Result<Vec<String>> {
        self.copy_of(key).await?.lrange(key, start, end).await
    }

    async fn llen(&self, key: &str) -> Result<i64> {
        self.copy_of(key).await?.llen(key).await
    }

    async fn lrem(&self, key: &str, count: i64, value: &str) -> Result<i64> {
        self.record("lrem", key, Some(value.to_string()));
        self.copy_of(key).await?.lrem(key, count, value).await
    }

    async fn lpop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        self.record("lpop", key, Some(count.to_string()));
        self.copy_of(key).await?.lpop(key, count).await
    }
}
