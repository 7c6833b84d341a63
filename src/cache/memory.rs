//! The embedded cache: a mutex-guarded map with lazy expiry.
//!
//! One process holds it, so it is only correct for a single instance, which
//! is what the embedded mode is.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Cache, CacheError, Result};

#[derive(Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    value: Stored,
    expires_at: Option<Instant>,
}

/// A key holds a plain value or a list, as in Redis.
enum Stored {
    Plain(String),
    List(VecDeque<String>),
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

type Map = HashMap<String, Entry>;

impl MemoryCache {
    /// Runs `f` on the map once the entry of `key` is live or gone (expired entries are removed first).
    fn with_entry<T>(&self, key: &str, f: impl FnOnce(&mut Map) -> T) -> T {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(key).is_some_and(|e| !e.live(Instant::now())) {
            map.remove(key);
        }
        f(&mut map)
    }

    /// Runs `f` on the list at `key` (None when missing); a plain value is a WrongType error.
    /// A list left empty is removed, as Redis does.
    fn with_list<T>(&self, key: &str, f: impl FnOnce(Option<&mut VecDeque<String>>) -> T) -> Result<T> {
        self.with_entry(key, |m| {
            let out = match m.get_mut(key) {
                None => f(None),
                Some(Entry { value: Stored::List(l), .. }) => f(Some(l)),
                Some(_) => return Err(CacheError::WrongType { key: key.to_string() }),
            };
            if matches!(m.get(key), Some(Entry { value: Stored::List(l), .. }) if l.is_empty()) {
                m.remove(key);
            }
            Ok(out)
        })
    }
}

/// Redis's LRANGE index rules: negative counts from the tail, clamped to the list.
fn range(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    let len = len as i64;
    let norm = |i: i64| if i < 0 { len + i } else { i };
    let (start, end) = (norm(start).max(0), norm(end).min(len - 1));
    (start <= end && start < len).then_some((start as usize, end as usize))
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
        self.with_entry(key, |m| match m.get(key) {
            None => Ok(None),
            Some(Entry { value: Stored::Plain(v), .. }) => Ok(Some(v.clone())),
            Some(_) => Err(CacheError::WrongType { key: key.to_string() }),
        })
    }

    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<()> {
        // A TTL too long for an Instant never expires rather than panicking.
        let expires_at = ttl.and_then(|t| Instant::now().checked_add(t));
        self.with_entry(key, |m| {
            m.insert(key.to_string(), Entry { value: Stored::Plain(value.to_string()), expires_at })
        });
        Ok(())
    }

    async fn incr(&self, key: &str, by: i64) -> Result<i64> {
        self.with_entry(key, |m| {
            let entry =
                m.entry(key.to_string()).or_insert(Entry { value: Stored::Plain("0".into()), expires_at: None });
            let Stored::Plain(value) = &mut entry.value else {
                return Err(CacheError::WrongType { key: key.to_string() });
            };
            let n: i64 = value.parse().map_err(|_| CacheError::NotAnInteger { key: key.to_string() })?;
            let n = n.checked_add(by).ok_or_else(|| CacheError::NotAnInteger { key: key.to_string() })?;
            *value = n.to_string();
            Ok(n)
        })
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        Ok(self.with_entry(key, |m| match m.get_mut(key) {
            Some(e) => {
                e.expires_at = Instant::now().checked_add(ttl);
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
            Some(e) if !matches!(&e.value, Stored::Plain(v) if v == owner) => false,
            _ => {
                m.insert(
                    key.to_string(),
                    Entry { value: Stored::Plain(owner.to_string()), expires_at: Instant::now().checked_add(ttl) },
                );
                true
            }
        }))
    }

    async fn unlock(&self, key: &str, owner: &str) -> Result<bool> {
        Ok(self.with_entry(key, |m| match m.get(key) {
            Some(e) if matches!(&e.value, Stored::Plain(v) if v == owner) => m.remove(key).is_some(),
            _ => false,
        }))
    }

    async fn keys(&self, prefix: &str) -> Result<Vec<String>> {
        let now = Instant::now();
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.iter().filter(|(k, e)| k.starts_with(prefix) && e.live(now)).map(|(k, _)| k.clone()).collect())
    }

    async fn lpush(&self, key: &str, values: &[String]) -> Result<i64> {
        self.with_entry(key, |m| {
            let entry = m
                .entry(key.to_string())
                .or_insert_with(|| Entry { value: Stored::List(VecDeque::new()), expires_at: None });
            let Stored::List(list) = &mut entry.value else {
                return Err(CacheError::WrongType { key: key.to_string() });
            };
            for v in values {
                list.push_front(v.clone());
            }
            Ok(list.len() as i64)
        })
    }

    async fn lrange(&self, key: &str, start: i64, end: i64) -> Result<Vec<String>> {
        self.with_list(key, |l| match l.and_then(|l| range(l.len(), start, end).map(|r| (l, r))) {
            Some((l, (s, e))) => l.range(s..=e).cloned().collect(),
            None => Vec::new(),
        })
    }

    async fn llen(&self, key: &str) -> Result<i64> {
        self.with_list(key, |l| l.map_or(0, |l| l.len() as i64))
    }

    async fn lrem(&self, key: &str, count: i64, value: &str) -> Result<i64> {
        self.with_list(key, |l| {
            let Some(l) = l else { return 0 };
            let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
            let mut removed = 0;
            if count >= 0 {
                l.retain(|x| {
                    let drop = removed < limit && x == value;
                    removed += drop as usize;
                    !drop
                });
            } else {
                let mut i = l.len();
                while i > 0 && removed < limit {
                    i -= 1;
                    if l[i] == value {
                        l.remove(i);
                        removed += 1;
                    }
                }
            }
            removed as i64
        })
    }

    async fn lpop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        self.with_list(key, |l| match l {
            Some(l) => {
                let n = count.min(l.len());
                l.drain(..n).collect()
            }
            None => Vec::new(),
        })
    }
}
