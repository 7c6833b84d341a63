//! The cache behind plugins' `meta.cache`, locks and reload pub/sub: Redis in
//! production ([`redis`]), a process-local map when embedded ([`memory`]).
//!
//! Values are strings, as in the original (JSON is encoded by the caller).
//! Keys are namespaced by the caller (`@plugin/{plugin_id}/{team_id}/...`);
//! the backends never see a team.

pub mod memory;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CacheError {
    #[error("redis at {location}: {source}")]
    Redis {
        location: String,
        #[source]
        source: ::redis::RedisError,
    },
    #[error("key `{key}` does not hold an integer")]
    NotAnInteger { key: String },
    /// A list operation on a plain value, or the other way round.
    #[error("key `{key}` holds a value of the wrong kind for this operation (a list vs a plain value)")]
    WrongType { key: String },
}

pub type Result<T> = std::result::Result<T, CacheError>;

impl crate::error::Kinded for CacheError {
    /// Any Redis failure is Redis being unreachable, slow or busy (a connection cut, a timeout,
    /// LOADING, OOM): transient. The two the request is at fault for are data.
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            CacheError::Redis { .. } => crate::error::ErrorKind::Transient,
            CacheError::NotAnInteger { .. } | CacheError::WrongType { .. } => crate::error::ErrorKind::Data,
        }
    }
}

#[async_trait]
pub trait Cache: Send + Sync {
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> Result<()>;
    async fn get(&self, key: &str) -> Result<Option<String>>;
    /// Sets a value, expiring after `ttl` when given.
    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<()>;
    /// Adds `by` to an integer value (missing counts as 0) and returns the result.
    async fn incr(&self, key: &str, by: i64) -> Result<i64>;
    /// Sets a key's time to live; false when the key does not exist.
    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool>;
    /// [`Cache::incr`] of each `(key, by)` in turn, each key then given `ttl`:
    /// the new values, in order. Redis does it in one round trip (counters
    /// every instance adds to every second, for many keys at once).
    async fn incr_all(&self, adds: &[(String, i64)], ttl: Duration) -> Result<Vec<i64>> {
        let mut out = Vec::with_capacity(adds.len());
        for (key, by) in adds {
            out.push(self.incr(key, *by).await?);
            self.expire(key, ttl).await?;
        }
        Ok(out)
    }
    /// Deletes a key; false when it did not exist.
    async fn del(&self, key: &str) -> Result<bool>;
    /// Takes the lock `key` for `owner`, or extends it when `owner` already
    /// holds it, for `ttl`; true when `owner` holds it afterwards. Atomic, so
    /// of several instances asking at once exactly one gets it (the
    /// original's redlock on one Redis).
    async fn lock(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool>;
    /// Releases the lock if `owner` holds it; true when it did.
    async fn unlock(&self, key: &str, owner: &str) -> Result<bool>;
    /// The live keys starting with `prefix` (for instance discovery; not for hot paths).
    async fn keys(&self, prefix: &str) -> Result<Vec<String>>;

    // Lists, with Redis's semantics: a list that becomes empty disappears,
    // and a missing key is an empty list.

    /// Pushes each value to the head in turn (the last ends first); returns the new length.
    async fn lpush(&self, key: &str, values: &[String]) -> Result<i64>;
    /// Elements `start..=end`; negative indexes count from the tail (-1 is the last).
    async fn lrange(&self, key: &str, start: i64, end: i64) -> Result<Vec<String>>;
    async fn llen(&self, key: &str) -> Result<i64>;
    /// Removes elements equal to `value`: the first `count` from the head when
    /// count > 0, the last `-count` from the tail when count < 0, all when 0.
    /// Returns how many were removed.
    async fn lrem(&self, key: &str, count: i64, value: &str) -> Result<i64>;
    /// Removes and returns up to `count` elements from the head.
    async fn lpop(&self, key: &str, count: usize) -> Result<Vec<String>>;
}

/// Redis when REDIS_URL is set, otherwise a cache local to this process.
pub async fn connect(redis_url: Option<&url::Url>) -> Result<Arc<dyn Cache>> {
    Ok(match redis_url {
        Some(url) => Arc::new(redis::RedisCache::connect(url).await?),
        None => Arc::new(memory::MemoryCache::default()),
    })
}
