//! The production cache: Redis through one multiplexed, self-reconnecting connection.

use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Cache, CacheError, Result};
use crate::config::redact;

pub struct RedisCache {
    conn: ConnectionManager,
    location: String,
}

impl RedisCache {
    pub async fn connect(url: &url::Url) -> Result<Self> {
        let location = redact(url);
        let err = |source| CacheError::Redis { location: location.clone(), source };
        let client = redis::Client::open(url.as_str()).map_err(err)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)));
        let conn = ConnectionManager::new_with_config(client, config).await.map_err(err)?;
        Ok(Self { conn, location })
    }

    fn err(&self, source: redis::RedisError) -> CacheError {
        CacheError::Redis { location: self.location.clone(), source }
    }

    /// Like `err`, but Redis's WRONGTYPE reply becomes [`CacheError::WrongType`].
    fn typed_err(&self, key: &str) -> impl Fn(redis::RedisError) -> CacheError + '_ {
        let key = key.to_string();
        move |e| {
            if e.code() == Some("WRONGTYPE") { CacheError::WrongType { key: key.clone() } } else { self.err(e) }
        }
    }
}

impl RedisCache {
    /// Publishes on a pub/sub channel; returns how many subscribers received it.
    pub async fn publish(&self, channel: &str, message: &str) -> Result<i64> {
        let mut c = self.conn.clone();
        c.publish(channel, message).await.map_err(|e| self.err(e))
    }
}

/// Redis TTLs are whole seconds or milliseconds; round up so a TTL never becomes 0 (no expiry).
fn millis(ttl: Duration) -> u64 {
    ttl.as_millis().clamp(1, u64::MAX as u128) as u64
}

#[async_trait]
impl Cache for RedisCache {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<()> {
        let mut c = self.conn.clone();
        redis::cmd("PING").query_async::<String>(&mut c).await.map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let mut c = self.conn.clone();
        c.get(key).await.map_err(self.typed_err(key))
    }

    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<()> {
        let mut c = self.conn.clone();
        match ttl {
            Some(ttl) => c.pset_ex::<_, _, ()>(key, value, millis(ttl)).await,
            None => c.set::<_, _, ()>(key, value).await,
        }
        .map_err(|e| self.err(e))
    }

    async fn incr(&self, key: &str, by: i64) -> Result<i64> {
        let mut c = self.conn.clone();
        c.incr(key, by).await.map_err(|e| {
            if e.code() == Some("WRONGTYPE") {
                CacheError::WrongType { key: key.to_string() }
            } else if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) {
                CacheError::NotAnInteger { key: key.to_string() }
            } else {
                self.err(e)
            }
        })
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let mut c = self.conn.clone();
        c.pexpire(key, millis(ttl) as i64).await.map_err(|e| self.err(e))
    }

    async fn del(&self, key: &str) -> Result<bool> {
        let mut c = self.conn.clone();
        let n: i64 = c.del(key).await.map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    async fn lpush(&self, key: &str, values: &[String]) -> Result<i64> {
        let mut c = self.conn.clone();
        if values.is_empty() {
            return self.llen(key).await;
        }
        c.lpush(key, values).await.map_err(self.typed_err(key))
    }

    async fn lrange(&self, key: &str, start: i64, end: i64) -> Result<Vec<String>> {
        let mut c = self.conn.clone();
        redis::cmd("LRANGE").arg(key).arg(start).arg(end).query_async(&mut c).await.map_err(self.typed_err(key))
    }

    async fn llen(&self, key: &str) -> Result<i64> {
        let mut c = self.conn.clone();
        c.llen(key).await.map_err(self.typed_err(key))
    }

    async fn lrem(&self, key: &str, count: i64, value: &str) -> Result<i64> {
        let mut c = self.conn.clone();
        redis::cmd("LREM").arg(key).arg(count).arg(value).query_async(&mut c).await.map_err(self.typed_err(key))
    }

    async fn lpop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut c = self.conn.clone();
        // With a count, LPOP answers an array, or nil for a missing key.
        let popped: Option<Vec<String>> =
            redis::cmd("LPOP").arg(key).arg(count).query_async(&mut c).await.map_err(self.typed_err(key))?;
        Ok(popped.unwrap_or_default())
    }
}
