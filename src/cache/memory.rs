//! The embedded cache: a mutex-guarded map with lazy expiry.
//!
//! One process holds it, so it is only correct for a single instance, which
//! is what the embedded mode is.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Cache, CacheError, Result};

#[derive(Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    value: String,
    expires_at: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

impl MemoryCache {
    /// Runs `f` on the live entry of `key` (expired entries are removed first).
    fn with_entry<T>(&self, key: &str, f: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> T {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(key).is_some_and(|e| !e.live(Instant::now())) {
            map.remove(key);
        }
        f(&mut map)
    }
}

#[async_trait]
impl Cache for MemoryCache {
    fn backend(&self) -> &'static str {
        "in-process"
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        Ok(self.with_entry(key, |m| m.get(key).map(|e| e.value.clone())))
    }

    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<()> {
        let expires_at = ttl.map(|t| Instant::now() + t);
        self.with_entry(key, |m| m.insert(key.to_string(), Entry { value: value.to_string(), expires_at }));
        Ok(())
    }

    async fn incr(&self, key: &str, by: i64) -> Result<i64> {
        self.with_entry(key, |m| {
            let entry = m.entry(key.to_string()).or_insert(Entry { value: "0".into(), expires_at: None });
            let n: i64 = entry.value.parse().map_err(|_| CacheError::NotAnInteger { key: key.to_string() })?;
            let n = n.checked_add(by).ok_or_else(|| CacheError::NotAnInteger { key: key.to_string() })?;
            entry.value = n.to_string();
            Ok(n)
        })
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        Ok(self.with_entry(key, |m| match m.get_mut(key) {
            Some(e) => {
                e.expires_at = Some(Instant::now() + ttl);
                true
            }
            None => false,
        }))
    }

    async fn del(&self, key: &str) -> Result<bool> {
        Ok(self.with_entry(key, |m| m.remove(key).is_some()))
    }

    async fn lock(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool> {
        Ok(self.with_entry(key, |m| match m.get_mut(key) {
            Some(e) if e.value != owner => false,
            _ => {
                m.insert(key.to_string(), Entry { value: owner.to_string(), expires_at: Some(Instant::now() + ttl) });
                true
            }
        }))
    }

    async fn unlock(&self, key: &str, owner: &str) -> Result<bool> {
        Ok(self.with_entry(key, |m| match m.get(key) {
            Some(e) if e.value == owner => m.remove(key).is_some(),
            _ => false,
        }))
    }

    async fn keys(&self, prefix: &str) -> Result<Vec<String>> {
        let now = Instant::now();
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.iter().filter(|(k, e)| k.starts_with(prefix) && e.live(now)).map(|(k, _)| k.clone()).collect())
    }
}
