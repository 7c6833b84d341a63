//! Instances finding each other: every `phs serve` announces itself with a
//! heartbeat in the cache (Redis in production, in-process when embedded),
//! as the original did with its ping key; `phs top` and `phs healthcheck
//! --all` discover instances from the heartbeats and read their admin
//! listeners.

use std::sync::Arc;
use std::time::Duration;

use phs_report::{Instance, InstanceStatus, Report, Snapshot};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::cache::{self, Cache};

/// Heartbeat keys: `@phs/instances/{id}`.
pub const PREFIX: &str = "@phs/instances/";
/// How often a heartbeat is written, and how long it lives without renewal.
pub const PERIOD: Duration = Duration::from_secs(5);
pub const TTL: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub id: String,
    pub version: String,
    pub mode: String,
    pub admin_addr: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
}

/// Writes the heartbeat every [`PERIOD`] until `stop`, then removes it.
pub async fn beat(cache: Arc<dyn Cache>, hb: Heartbeat, stop: CancellationToken) {
    let key = format!("{PREFIX}{}", hb.id);
    let value = serde_json::to_string(&hb).expect("a heartbeat serializes");
    let mut every = tokio::time::interval(PERIOD);
    loop {
        tokio::select! {
            _ = every.tick() => {
                if let Err(err) = cache.set(&key, &value, Some(TTL)).await {
                    tracing::warn!(%err, "could not write the heartbeat");
                }
            }
            _ = stop.cancelled() => break,
        }
    }
    let _ = cache.del(&key).await;
}

/// Every instance with a live heartbeat, oldest first.
pub async fn discover(cache: &dyn Cache) -> cache::Result<Vec<Heartbeat>> {
    let mut found = Vec::new();
    for key in cache.keys(PREFIX).await? {
        // A heartbeat that expired between SCAN and GET, or is not ours, is skipped.
        if let Some(hb) = cache.get(&key).await?.and_then(|v| serde_json::from_str::<Heartbeat>(&v).ok()) {
            found.push(hb);
        }
    }
    found.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
    Ok(found)
}

/// Why no instance could be discovered.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    #[error("no phs instance has a heartbeat in Redis at {0}; is `phs serve` running with this REDIS_URL?")]
    NoneFound(String),
}

/// The admin addresses of every instance with a heartbeat in the Redis at
/// `redis_url`, oldest first; finding none is an error.
pub async fn admin_addrs(redis_url: &url::Url) -> Result<Vec<String>, DiscoverError> {
    let cache = cache::redis::RedisCache::connect(redis_url).await?;
    let found = discover(&cache).await?;
    if found.is_empty() {
        return Err(DiscoverError::NoneFound(crate::config::redact(redis_url)));
    }
    Ok(found.into_iter().map(|h| h.admin_addr).collect())
}

/// The admin addresses listed in a peers file: one address or URL per
/// line; blank lines and `#` comments are skipped. For deployments without
/// Redis (embedded instances, or a cluster that shares only Kafka), where
/// heartbeats cannot be discovered. Finding none is an error.
pub fn peers(path: &std::path::Path) -> Result<Vec<String>, PeersError> {
    let text = std::fs::read_to_string(path).map_err(|source| PeersError::Read { path: path.into(), source })?;
    let found: Vec<String> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if found.is_empty() {
        return Err(PeersError::Empty(path.into()));
    }
    Ok(found)
}

#[derive(Debug, thiserror::Error)]
pub enum PeersError {
    #[error("cannot read the peers file {}: {source}", path.display())]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error("the peers file {} lists no instance (one admin address or URL per line)", .0.display())]
    Empty(std::path::PathBuf),
}

/// `http://host:port` from `host:port` or a URL, without a trailing slash.
pub fn base_url(server: &str) -> String {
    let s = server.trim_end_matches('/');
    if s.contains("://") { s.to_string() } else { format!("http://{s}") }
}

/// Reads one instance's `/_snapshot`. `last` is what it said before, kept while it is down.
pub async fn poll(client: &reqwest::Client, server: &str, last: Option<Report>) -> Instance {
    let url = format!("{}/_snapshot", base_url(server));
    let down = |reason: String| Instance {
        admin_addr: server.to_string(),
        status: InstanceStatus::Down,
        reason: Some(reason),
        report: last.clone(),
    };
    let response = match client.get(&url).send().await {
        Ok(r) => r,
        Err(e) if e.is_connect() => return down(format!("no answer at {server}: nothing is listening there")),
        Err(e) if e.is_timeout() => return down(format!("no answer at {server} in time")),
        Err(e) => return down(format!("no answer at {server}: {e}")),
    };
    if !response.status().is_success() {
        return down(format!("{url} answered {}", response.status()));
    }
    match response.json::<Report>().await {
        Ok(report) => Instance {
            admin_addr: server.to_string(),
            status: if report.healthy { InstanceStatus::Healthy } else { InstanceStatus::Unhealthy },
            reason: report.reason.clone(),
            report: Some(report),
        },
        Err(e) => down(format!("{url} did not return a phs snapshot: {e}")),
    }
}

/// Polls every server concurrently; `previous` supplies last-known reports.
pub async fn poll_all(client: &reqwest::Client, servers: &[String], previous: &Snapshot) -> Snapshot {
    let polls = servers.iter().map(|s| {
        let last = previous.instances.iter().find(|i| &i.admin_addr == s).and_then(|i| i.report.clone());
        poll(client, s, last)
    });
    Snapshot { instances: futures_util::future::join_all(polls).await }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn heartbeats_are_found_and_vanish_when_the_instance_stops() {
        let cache: Arc<dyn Cache> = Arc::new(cache::memory::MemoryCache::default());
        let hb = Heartbeat {
            id: "a".into(),
            version: "0.1.0".into(),
            mode: "embedded".into(),
            admin_addr: "127.0.0.1:1".into(),
            started_at: chrono::Utc::now(),
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(beat(cache.clone(), hb.clone(), stop.clone()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(discover(cache.as_ref()).await.unwrap(), vec![hb]);
        stop.cancel();
        task.await.unwrap();
        assert!(discover(cache.as_ref()).await.unwrap().is_empty());
    }

    #[test]
    fn servers_are_addresses_or_urls() {
        assert_eq!(base_url("127.0.0.1:6738"), "http://127.0.0.1:6738");
        assert_eq!(base_url("https://phs.internal:6738/"), "https://phs.internal:6738");
    }
}
