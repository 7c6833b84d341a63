//! Dependency probes: one cheap round trip to each store this instance uses,
//! for `/_ready` and `phs healthcheck --deps`; and the dependency monitor,
//! which probes the external services every [`MONITOR_PERIOD`] so that an
//! outage shows in `/_health`, `/metrics`, `phs top` and the log (once per
//! change, never per probe) whether or not a batch is waiting on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::config::StoreSettings;
use crate::store::Store;
use tokio_util::sync::CancellationToken;

/// How often the monitor probes. Each probe is bounded by [`MONITOR_TIMEOUT`], so a
/// service that does not answer costs one pending probe, never a pile of them.
pub const MONITOR_PERIOD: Duration = Duration::from_secs(1);
pub const MONITOR_TIMEOUT: Duration = Duration::from_secs(2);

/// Backends that are files or memory of this process, not services that can be down.
const EMBEDDED_BACKENDS: [&str; 2] = ["sqlite", "in-process"];

/// Probes every external service among `probes` until `stop`, recording each
/// result in the metrics; logs a service going down (warn) and coming back (info).
pub async fn monitor(probes: Arc<Vec<Arc<dyn Probe>>>, stop: CancellationToken) {
    use crate::metrics::dependencies::Change;
    let external: Vec<Arc<dyn Probe>> =
        probes.iter().filter(|p| !EMBEDDED_BACKENDS.contains(&p.backend())).cloned().collect();
    if external.is_empty() {
        return stop.cancelled().await;
    }
    let metrics = crate::metrics::global();
    loop {
        for c in check_all(&external, MONITOR_TIMEOUT).await {
            let latency = Duration::from_secs_f64(c.latency_ms / 1000.0);
            match metrics.dependency_probed(&c.name, &c.backend, c.error.clone(), latency) {
                Change::WentDown => tracing::warn!(
                    dependency = %c.name,
                    error = c.error.as_deref().unwrap_or_default(),
                    "{} is unreachable; what needs it waits and retries",
                    c.backend
                ),
                Change::CameBack(after) => tracing::info!(
                    dependency = %c.name,
                    down_s = after.as_secs(),
                    "{} answers again",
                    c.backend
                ),
                Change::Same => {}
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(MONITOR_PERIOD) => {}
            _ = stop.cancelled() => return,
        }
    }
}

#[async_trait]
pub trait Probe: Send + Sync {
    /// What depends on it: `database`, `cache`, `events`, `ingestion log`.
    fn name(&self) -> &'static str;
    fn backend(&self) -> &'static str;
    async fn check(&self) -> Result<(), String>;
}

/// The result of one probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub backend: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: f64,
}

/// Runs every probe concurrently, each bounded by `timeout`.
pub async fn check_all(probes: &[Arc<dyn Probe>], timeout: Duration) -> Vec<Check> {
    let runs = probes.iter().map(|p| async move {
        let start = Instant::now();
        let result = match tokio::time::timeout(timeout, p.check()).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        };
        Check {
            name: p.name().into(),
            backend: p.backend().into(),
            ok: result.is_ok(),
            error: result.err(),
            latency_ms: start.elapsed().as_secs_f64() * 1000.0,
        }
    });
    futures_util::future::join_all(runs).await
}

/// The probes for the stores the settings configure.
pub fn probes(settings: &StoreSettings, store: Arc<dyn Store>, cache: Arc<dyn Cache>) -> Vec<Arc<dyn Probe>> {
    let mut probes: Vec<Arc<dyn Probe>> = vec![Arc::new(StoreProbe(store)), Arc::new(CacheProbe(cache))];
    if let Some(client) = crate::clickhouse::client(&settings.clickhouse) {
        probes.push(Arc::new(ClickHouseProbe(client)));
    }
    if let Some(config) = crate::kafka::client_config(&settings.kafka) {
        probes.push(Arc::new(KafkaProbe(config)));
    }
    probes
}

struct StoreProbe(Arc<dyn Store>);

#[async_trait]
impl Probe for StoreProbe {
    fn name(&self) -> &'static str {
        "database"
    }
    fn backend(&self) -> &'static str {
        self.0.backend()
    }
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| e.to_string())
    }
}

struct CacheProbe(Arc<dyn Cache>);

#[async_trait]
impl Probe for CacheProbe {
    fn name(&self) -> &'static str {
        "cache"
    }
    fn backend(&self) -> &'static str {
        self.0.backend()
    }
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| e.to_string())
    }
}

struct ClickHouseProbe(clickhouse::Client);

#[async_trait]
impl Probe for ClickHouseProbe {
    fn name(&self) -> &'static str {
        "events"
    }
    fn backend(&self) -> &'static str {
        "clickhouse"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.query("SELECT 1").fetch_one::<u8>().await.map(|_| ()).map_err(|e| e.to_string())
    }
}

struct KafkaProbe(rdkafka::ClientConfig);

#[async_trait]
impl Probe for KafkaProbe {
    fn name(&self) -> &'static str {
        "ingestion log"
    }
    fn backend(&self) -> &'static str {
        "kafka"
    }
    async fn check(&self) -> Result<(), String> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let config = self.0.clone();
        // librdkafka blocks; a fresh client per probe keeps no broken connection around.
        tokio::task::spawn_blocking(move || {
            let client: BaseConsumer<crate::kafka::QuietErrors> =
                config.create_with_context(crate::kafka::QuietErrors).map_err(|e| e.to_string())?;
            client.fetch_metadata(None, Duration::from_secs(2)).map(|_| ()).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// `phs healthcheck --deps`: connects to each configured external service
/// (Postgres, Redis, ClickHouse, Kafka) and runs its probe. A service that cannot even be connected to is reported failed with
/// the connection error and the time it took, like any other probe.
pub async fn check_dependencies(settings: &StoreSettings, timeout: Duration) -> Vec<Check> {
    let start = Instant::now();
    let failed = |name: &str, backend: &str, error: String| Check {
        name: name.into(),
        backend: backend.into(),
        ok: false,
        error: Some(error),
        latency_ms: start.elapsed().as_secs_f64() * 1000.0,
    };
    let mut probes: Vec<Arc<dyn Probe>> = Vec::new();
    let mut early = Vec::new();
    let limit = format!("no answer within {} ms", timeout.as_millis());
    // Only the services configured: the embedded stores are files of this machine, not dependencies.
    if settings.database_url.is_some() {
        match tokio::time::timeout(timeout, crate::store::connect(settings)).await {
            Ok(Ok(store)) => probes.push(Arc::new(StoreProbe(store))),
            Ok(Err(e)) => early.push(failed("database", "postgres", e.to_string())),
            Err(_) => early.push(failed("database", "postgres", limit.clone())),
        }
    }
    if let Some(url) = &settings.redis_url {
        match tokio::time::timeout(timeout, crate::cache::connect(Some(url))).await {
            Ok(Ok(cache)) => probes.push(Arc::new(CacheProbe(cache))),
            Ok(Err(e)) => early.push(failed("cache", "redis", e.to_string())),
            Err(_) => early.push(failed("cache", "redis", limit)),
        }
    }
    if let Some(client) = crate::clickhouse::client(&settings.clickhouse) {
        probes.push(Arc::new(ClickHouseProbe(client)));
    }
    if let Some(config) = crate::kafka::client_config(&settings.kafka) {
        probes.push(Arc::new(KafkaProbe(config)));
    }
    early.extend(check_all(&probes, timeout).await);
    early
}
