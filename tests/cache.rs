//! One behavioural suite for the cache, against the in-process map and real Redis.

use std::sync::Arc;
use std::time::Duration;

use phs::cache::{Cache, CacheError};

use crate::util::{redis_url, unique};

async fn cache_behaves(cache: Arc<dyn Cache>) {
    let k = |s: &str| format!("{}:{s}", unique("phs_test_cache"));
    cache.ping().await.unwrap();

    let key = k("plain");
    assert_eq!(cache.get(&key).await.unwrap(), None);
    cache.set(&key, "v1", None).await.unwrap();
    assert_eq!(cache.get(&key).await.unwrap().as_deref(), Some("v1"));
    cache.set(&key, "v2", None).await.unwrap();
    assert_eq!(cache.get(&key).await.unwrap().as_deref(), Some("v2"));
    assert!(cache.del(&key).await.unwrap());
    assert!(!cache.del(&key).await.unwrap());
    assert_eq!(cache.get(&key).await.unwrap(), None);

    let counter = k("counter");
    assert_eq!(cache.incr(&counter, 1).await.unwrap(), 1);
    assert_eq!(cache.incr(&counter, 5).await.unwrap(), 6);
    assert_eq!(cache.incr(&counter, -10).await.unwrap(), -4);
    let text = k("text");
    cache.set(&text, "abc", None).await.unwrap();
    assert!(matches!(cache.incr(&text, 1).await, Err(CacheError::NotAnInteger { .. })));

    // Several counters at once (one round trip on Redis), each given the ttl.
    let (a, b) = (k("many_a"), k("many_b"));
    let adds = [(a.clone(), 2), (b.clone(), 3), (a.clone(), 4)];
    assert_eq!(cache.incr_all(&adds, Duration::from_millis(150)).await.unwrap(), vec![2, 3, 6]);
    assert_eq!(cache.incr_all(&[], Duration::from_secs(1)).await.unwrap(), Vec::<i64>::new());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(cache.get(&a).await.unwrap(), None, "counter outlived its ttl");
    assert_eq!(cache.get(&b).await.unwrap(), None, "counter outlived its ttl");

    let short = k("ttl");
    cache.set(&short, "x", Some(Duration::from_millis(150))).await.unwrap();
    assert_eq!(cache.get(&short).await.unwrap().as_deref(), Some("x"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(cache.get(&short).await.unwrap(), None, "value outlived its ttl");

    let later = k("expire");
    assert!(!cache.expire(&later, Duration::from_secs(1)).await.unwrap(), "missing key");
    cache.set(&later, "y", None).await.unwrap();
    assert!(cache.expire(&later, Duration::from_millis(150)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(cache.get(&later).await.unwrap(), None);

    lists_behave(cache.as_ref(), &k("list")).await;
}

fn strs(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Redis's list semantics, which the in-process cache must match.
async fn lists_behave(cache: &dyn Cache, key: &str) {
    assert_eq!(cache.llen(key).await.unwrap(), 0);
    assert_eq!(cache.lrange(key, 0, -1).await.unwrap(), Vec::<String>::new());
    assert_eq!(cache.lpop(key, 3).await.unwrap(), Vec::<String>::new(), "missing list pops nothing");
    assert_eq!(cache.lpush(key, &strs(&["a"])).await.unwrap(), 1);
    // Each value goes to the head in turn: the last pushed is first.
    assert_eq!(cache.lpush(key, &strs(&["b", "c", "a", "d"])).await.unwrap(), 5);
    assert_eq!(cache.lrange(key, 0, -1).await.unwrap(), strs(&["d", "a", "c", "b", "a"]));
    assert_eq!(cache.lrange(key, 1, 2).await.unwrap(), strs(&["a", "c"]));
    assert_eq!(cache.lrange(key, -2, -1).await.unwrap(), strs(&["b", "a"]));
    assert_eq!(cache.lrange(key, -100, 100).await.unwrap().len(), 5, "out-of-range indexes are clamped");
    assert_eq!(cache.lrange(key, 3, 1).await.unwrap(), Vec::<String>::new());
    assert_eq!(cache.lrange(key, 7, 9).await.unwrap(), Vec::<String>::new());
    assert_eq!(cache.llen(key).await.unwrap(), 5);

    // lrem: count > 0 from the head, < 0 from the tail, 0 all.
    cache.lpush(key, &strs(&["a", "x", "a"])).await.unwrap();
    assert_eq!(cache.lrange(key, 0, -1).await.unwrap(), strs(&["a", "x", "a", "d", "a", "c", "b", "a"]));
    assert_eq!(cache.lrem(key, 1, "a").await.unwrap(), 1);
    assert_eq!(cache.lrange(key, 0, -1).await.unwrap(), strs(&["x", "a", "d", "a", "c", "b", "a"]));
    assert_eq!(cache.lrem(key, -2, "a").await.unwrap(), 2);
    assert_eq!(cache.lrange(key, 0, -1).await.unwrap(), strs(&["x", "a", "d", "c", "b"]));
    cache.lpush(key, &strs(&["b"])).await.unwrap();
    assert_eq!(cache.lrem(key, 0, "b").await.unwrap(), 2);
    assert_eq!(cache.lrem(key, 0, "nope").await.unwrap(), 0);
    assert_eq!(cache.lrange(key, 0, -1).await.unwrap(), strs(&["x", "a", "d", "c"]));

    assert_eq!(cache.lpop(key, 1).await.unwrap(), strs(&["x"]));
    assert_eq!(cache.lpop(key, 2).await.unwrap(), strs(&["a", "d"]));
    assert_eq!(cache.lpop(key, 10).await.unwrap(), strs(&["c"]), "pops what is there");
    assert_eq!(cache.llen(key).await.unwrap(), 0);
    assert!(!cache.del(key).await.unwrap(), "an emptied list is gone");

    // Plain values and lists do not mix.
    let plain = format!("{key}:plain");
    cache.set(&plain, "v", None).await.unwrap();
    assert!(matches!(cache.lpush(&plain, &strs(&["a"])).await, Err(CacheError::WrongType { .. })));
    assert!(matches!(cache.lrange(&plain, 0, -1).await, Err(CacheError::WrongType { .. })));
    cache.lpush(key, &strs(&["a"])).await.unwrap();
    assert!(matches!(cache.get(key).await, Err(CacheError::WrongType { .. })));
    assert!(matches!(cache.incr(key, 1).await, Err(CacheError::WrongType { .. })));
    // set replaces a list, as in Redis; expire works on lists.
    assert!(cache.expire(key, Duration::from_millis(150)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(cache.llen(key).await.unwrap(), 0, "the list outlived its ttl");
    cache.lpush(key, &strs(&["a"])).await.unwrap();
    cache.set(key, "now plain", None).await.unwrap();
    assert_eq!(cache.get(key).await.unwrap().as_deref(), Some("now plain"));
}

/// The scheduler's lock: one owner at a time, extended by its owner,
/// released only by its owner, and free again once its ttl passes.
async fn locks_behave(cache: Arc<dyn Cache>) {
    let key = unique("phs_test_lock");
    let ttl = Duration::from_millis(300);
    assert!(cache.lock(&key, "a", ttl).await.unwrap());
    assert!(!cache.lock(&key, "b", ttl).await.unwrap(), "a second owner took a held lock");
    assert!(cache.lock(&key, "a", ttl).await.unwrap(), "the owner could not extend its lock");
    assert!(!cache.unlock(&key, "b").await.unwrap(), "a stranger released the lock");
    assert!(cache.unlock(&key, "a").await.unwrap());
    assert!(cache.lock(&key, "b", ttl).await.unwrap(), "a released lock was not free");

    // Expiry hands the lock over; extending keeps it.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(cache.lock(&key, "b", ttl).await.unwrap());
    }
    assert!(!cache.lock(&key, "a", ttl).await.unwrap(), "an extended lock expired");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(cache.lock(&key, "a", ttl).await.unwrap(), "an expired lock was not free");

    // Many contenders at once: exactly one wins.
    let key = unique("phs_test_lock_race");
    let mut handles = Vec::new();
    for i in 0..16 {
        let (c, k) = (cache.clone(), key.clone());
        handles
            .push(tokio::spawn(async move { c.lock(&k, &format!("owner{i}"), Duration::from_secs(5)).await.unwrap() }));
    }
    let mut winners = 0;
    for h in handles {
        winners += h.await.unwrap() as usize;
    }
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn memory_cache() {
    cache_behaves(phs::cache::connect(None).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_locks() {
    locks_behave(phs::cache::connect(None).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_locks() {
    let url = url::Url::parse(&redis_url()).unwrap();
    locks_behave(phs::cache::connect(Some(&url)).await.unwrap()).await;
}

#[tokio::test]
async fn redis_cache() {
    let url = url::Url::parse(&redis_url()).unwrap();
    let cache = phs::cache::connect(Some(&url)).await.unwrap();
    assert_eq!(cache.backend(), "redis");
    cache_behaves(cache).await;
}
