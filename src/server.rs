//! `phs serve`: opens the stores, brings the embedded schema up to date,
//! and runs the admin listener until shutdown. The ingestion pipeline,
//! plugin schedules and jobs attach here as they are built.

use std::future::Future;
use std::sync::Arc;

use thiserror::Error;
use tokio::net::TcpListener;

use crate::admin::{self, AdminState};
use crate::config::ServeSettings;
use crate::migrate::{self, MigrateError, Mode, TopicLayout};
use crate::{cache, store};

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
    AdminBind { addr: std::net::SocketAddr, #[source] source: std::io::Error },
    #[error("admin listener failed: {0}")]
    Admin(#[source] std::io::Error),
}

/// Runs until `shutdown` resolves, then stops accepting and returns.
pub async fn run(settings: ServeSettings, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
    let store_settings = &settings.store;
    let embedded = store_settings.is_embedded();
    for (what, backend) in store_settings.describe() {
        tracing::info!(%what, %backend, "store");
    }

    // The embedded database is migrated on start so the first run just works;
    // a production database belongs to `phs migrate`, run on deploy.
    migrate::embedded(store_settings).await?;
    if store_settings.database_url.is_some() {
        let layout = TopicLayout { partitions: 1, replication: 1 };
        let mut db_only = store_settings.clone();
        db_only.clickhouse.clickhouse_host = None;
        db_only.kafka.kafka_hosts = None;
        let steps = migrate::run(&db_only, Mode::Check, layout).await?;
        let pending: Vec<String> = migrate::pending(&steps).map(|s| s.name.clone()).collect();
        if !pending.is_empty() {
            return Err(ServeError::SchemaBehind(pending.join(", ")));
        }
    }

    let store = store::connect(store_settings).await?;
    let cache = cache::connect(store_settings.redis_url.as_ref()).await?;

    let listener = TcpListener::bind(settings.admin_addr)
        .await
        .map_err(|source| ServeError::AdminBind { addr: settings.admin_addr, source })?;
    let admin_addr = listener.local_addr().map_err(ServeError::Admin)?;
    let state = AdminState {
        probes: Arc::new(crate::health::probes(store_settings, store, cache)),
        started_at: chrono::Utc::now(),
        mode: if embedded { "embedded" } else { "production" },
    };
    tracing::info!(%admin_addr, mode = state.mode, version = env!("CARGO_PKG_VERSION"), "phs is serving");
    axum::serve(listener, admin::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Admin)?;
    tracing::info!("phs stopped");
    Ok(())
}
