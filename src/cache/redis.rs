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

    async fn incr_all(&self, adds: &[(String, i64)], ttl: Duration) -> Result<Vec<i64>> {
        if adds.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (key, by) in adds {
            pipe.cmd("INCRBY").arg(key).arg(*by).cmd("PEXPIRE").arg(key).arg(millis(ttl)).ignore();
        }
        let mut c = self.conn.clone();
        pipe.query_async(&mut c).await.map_err(|e| self.err(e))
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

    async fn lock(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool> {
        // Extend when ours, else take when free: one script, so it is atomic.
        let script = redis::Script::new(
            r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
              if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
              return 0",
        );
        let mut c = self.conn.clone();
        let got: i64 =
            script.key(key).arg(owner).arg(millis(ttl)).invoke_async(&mut c).await.map_err(|e| self.err(e))?;
        Ok(got == 1)
    }

    async fn unlock(&self, key: &str, owner: &str) -> Result<bool> {
        let script = redis::Script::new(
            r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
              return 0",
        );
        let mut c = self.conn.clone();
        let n: i64 = script.key(key).arg(owner).invoke_async(&mut c).await.map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    async fn keys(&self, prefix: &str) -> Result<Vec<String>> {
        // SCAN, not KEYS: it does not block a busy Redis. Glob characters in the prefix are escaped.
        let mut pattern = String::with_capacity(prefix.len() + 1);
        for ch in prefix.chars() {
            if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(ch);
        }
        pattern.push('*');
        let mut c = self.conn.clone();
        let mut iter: redis::AsyncIter<String> = c.scan_match(&pattern).await.map_err(|e| self.err(e))?;
        let mut keys = Vec::new();
        while let Some(k) = futures_util::StreamExt::next(&mut iter).await {
            keys.push(k.map_err(|e| self.err(e))?);
        }
        Ok(keys)
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
