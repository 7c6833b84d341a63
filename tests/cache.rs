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
}

#[tokio::test]
async fn memory_cache() {
    cache_behaves(phs::cache::connect(None).await.unwrap()).await;
}

#[tokio::test]
async fn redis_cache() {
    let url = url::Url::parse(&redis_url()).unwrap();
    let cache = phs::cache::connect(Some(&url)).await.unwrap();
    assert_eq!(cache.backend(), "redis");
    cache_behaves(cache).await;
}
