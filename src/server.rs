//! `phs serve`: opens the stores, brings the embedded schema up to date,
//! and runs the admin listener until shutdown. The ingestion pipeline,
//! plugin schedules and jobs attach here as they are built.

use std::future::Future;
use std::sync::Arc;

use thiserror::Error;
use tokio::net::TcpListener;

use crate::admin::{self, AdminState};
use crate::config::ServeSettings;
use crate::migrate::{self, MigrateError, Mode};
use crate::pipeline::Pipeline;
use crate::pipeline::capture::{self, CaptureState};
use crate::pipeline::persons::Persons;
use crate::pipeline::plugins::{PluginRunner, RunnerOptions};
use crate::pipeline::sink::sqlite::SqliteEvents;
use crate::pipeline::source::local_log::LocalLog;
use crate::pipeline::team::TeamCache;
use crate::plugins::Limits;
use crate::plugins::error_rate::ErrorRatePolicy;
use crate::plugins::fetch::FetchPolicy;
use crate::{cache, store};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Error)]
pub enum ServeError {
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error("the database schema is not up to date (pending: {0}); run `phs migrate` first")]
    SchemaBehind(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    #[error("cannot listen on ADMIN_ADDR {addr}: {source}")]
    AdminBind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on CAPTURE_ADDR {addr}: {source}")]
    CaptureBind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("ingestion: {0}")]
    Pipeline(String),
    #[error("admin listener failed: {0}")]
    Admin(#[source] std::io::Error),
}

/// Runs until `shutdown` resolves: stops accepting, lets the pipeline finish
/// and commit the batch in hand, then returns.
pub async fn run(
    settings: ServeSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let store_settings = &settings.store;
    let embedded = store_settings.is_embedded();
    for (what, backend) in store_settings.describe() {
        tracing::info!(%what, %backend, "store");
    }

    // The embedded database is migrated on start so the first run just works;
    // a production database belongs to `phs migrate`, run on deploy.
    migrate::embedded(store_settings).await?;
    if store_settings.database_url.is_some() {
        let steps = migrate::database(store_settings, Mode::Check).await?;
        let pending: Vec<String> = migrate::pending(&steps).map(|s| s.name.clone()).collect();
        if !pending.is_empty() {
            return Err(ServeError::SchemaBehind(pending.join(", ")));
        }
    }

    let store = store::connect(store_settings).await?;
    let cache = cache::connect(store_settings.redis_url.as_ref()).await?;
    let probe_store = store.clone();
    let probe_cache = cache.clone();

    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown.await;
            stop.cancel();
        }
    });
    let pipeline = start_pipeline(&settings, store.clone(), cache.clone(), stop.clone()).await?;

    let listener = TcpListener::bind(settings.admin_addr)
        .await
        .map_err(|source| ServeError::AdminBind { addr: settings.admin_addr, source })?;
    let admin_addr = listener.local_addr().map_err(ServeError::Admin)?;
    let state = AdminState {
        probes: Arc::new(crate::health::probes(store_settings, probe_store, probe_cache)),
        started_at: chrono::Utc::now(),
        mode: if embedded { "embedded" } else { "production" },
    };
    tracing::info!(%admin_addr, mode = state.mode, version = env!("CARGO_PKG_VERSION"), "phs is serving");
    axum::serve(listener, admin::router(state))
        .with_graceful_shutdown(stop.clone().cancelled_owned())
        .await
        .map_err(ServeError::Admin)?;
    if let Some(handle) = pipeline {
        let _ = handle.await;
    }
    tracing::info!("phs stopped");
    Ok(())
}

/// Starts ingestion: the capture endpoint and the pipeline task. Today the
/// embedded path (local log -> SQLite events); with KAFKA_HOSTS or
/// CLICKHOUSE_HOST set, ingestion is not started yet and says so.
async fn start_pipeline(
    settings: &ServeSettings,
    store: Arc<dyn store::Store>,
    cache: Arc<dyn cache::Cache>,
    stop: CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>, ServeError> {
    let s = &settings.store;
    if s.kafka.kafka_hosts.is_some() || s.clickhouse.clickhouse_host.is_some() {
        tracing::warn!(
            "ingestion from Kafka and into ClickHouse is not available yet; with KAFKA_HOSTS or CLICKHOUSE_HOST set, \
             this instance serves the admin listener only"
        );
        return Ok(None);
    }
    let log = LocalLog::open(&s.data_dir).await.map_err(|e| ServeError::Pipeline(e.to_string()))?;
    let events = SqliteEvents::open(&s.data_dir).await.map_err(|e| ServeError::Pipeline(e.to_string()))?;
    let runner = PluginRunner::new(
        store.clone(),
        cache,
        Some(Arc::new(log.clone())),
        RunnerOptions {
            limits: Limits::default(),
            fetch: FetchPolicy { allow_private: settings.plugin_fetch_allow_private, ..Default::default() },
            geoip: settings.mmdb_file_location.clone().filter(|_| !settings.disable_mmdb),
            auto_disable: ErrorRatePolicy {
                rate: settings.plugin_disable_error_rate,
                min_calls: settings.plugin_disable_min_calls,
                window: std::time::Duration::from_secs(settings.plugin_disable_window_seconds),
            },
        },
        uuid::Uuid::now_v7(),
    );
    let teams = Arc::new(TeamCache::new(store.clone()));
    let persons = Arc::new(Persons::new(store));
    let pipeline = Pipeline::new(teams.clone(), runner, persons, Arc::new(events), Arc::new(log.clone()));
    let source = log.consumer("phs-ingestion").await.map_err(|e| ServeError::Pipeline(e.to_string()))?;

    let capture = capture::router(CaptureState { producer: Arc::new(log), teams });
    let listener = TcpListener::bind(settings.capture_addr)
        .await
        .map_err(|source| ServeError::CaptureBind { addr: settings.capture_addr, source })?;
    tracing::info!(capture_addr = %settings.capture_addr, "capture endpoint listening");
    let capture_stop = stop.clone();
    tokio::spawn(async move {
        let app = capture.into_make_service_with_connect_info::<std::net::SocketAddr>();
        if let Err(err) = axum::serve(listener, app).with_graceful_shutdown(capture_stop.cancelled_owned()).await {
            tracing::error!(%err, "capture endpoint failed");
        }
    });
    Ok(Some(tokio::spawn(async move { pipeline.run(Box::new(source), stop).await })))
}
