//! `phs serve`: opens the stores, brings the embedded schema up to date,
//! starts ingestion (capture endpoint and pipeline, on Kafka/ClickHouse or
//! embedded as configured) and the async side (the stored-events stream on
//! Kafka, job worker, scheduler) as PLUGIN_SERVER_MODE says, and runs the
//! admin listener until shutdown.
//! Every long-lived task runs under a [`Supervisor`]: one that ends early
//! stops the rest, and `run` returns its reason.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;

use crate::admin::{self, AdminState};
use crate::config::{Roles, ServeSettings};
use crate::metrics::report::Identity;
use crate::migrate::{self, MigrateError};
use crate::pipeline::Pipeline;
use crate::pipeline::capture::{self, CaptureState};
use crate::pipeline::definitions::{Definitions, writer};
use crate::pipeline::handoff::{self, TopicHandoff};
use crate::pipeline::overflow::{KafkaOverflow, Overflow};
use crate::pipeline::persons::Persons;
use crate::pipeline::sink::DeadLetterQueue;
use crate::pipeline::sink::dlq_topic::DlqTopic;
use crate::pipeline::sink::fanout::Fanout;
use crate::pipeline::sink::topics::ClickHouseTopics;
use crate::pipeline::slow_lane::SlowTeams;
use crate::pipeline::source::Source;
use crate::pipeline::source::kafka::KafkaSource;
use crate::pipeline::source::local_log::LocalLog;
use crate::pipeline::source::producer::KafkaProducer;
use crate::pipeline::source::retention::Retention;
use crate::pipeline::team::TeamCache;
use crate::plugins::Limits;
use crate::plugins::error_rate::ErrorRatePolicy;
use crate::plugins::fetch::FetchPolicy;
use crate::plugins::runner::{Backends, PluginRunner, RunnerOptions};
use crate::ready_file::ReadyFile;
use crate::supervisor::{Supervisor, TaskFailed};
use crate::wire::Producer;
use crate::worker::stream::Hooks;
use crate::worker::{self, EventHandoff, WorkerSettings};
use crate::{cache, store};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Error)]
pub enum ServeError {
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error("the schema is not up to date (pending: {0}); run `phs migrate` first")]
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
    #[error(transparent)]
    Pipeline(#[from] crate::error::PipeError),
    #[error("{0}")]
    Config(String),
    #[error("admin listener failed: {0}")]
    Admin(#[source] std::io::Error),
    #[error(transparent)]
    Task(#[from] TaskFailed),
    #[error("PHS_READY_FILE {path}: {source}")]
    ReadyFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What `phs serve` builds from its settings before anything starts, so a
/// bad file is a configuration error (exit 2), not a failure of the server.
pub struct Runtime {
    /// MMDB_FILE_LOCATION, opened; None when unset or DISABLE_MMDB.
    pub geoip: Option<Arc<crate::plugins::geoip::GeoIp>>,
}

impl Runtime {
    pub fn build(settings: &ServeSettings) -> Result<Runtime, crate::plugins::geoip::GeoIpError> {
        let geoip = match &settings.mmdb_file_location {
            Some(path) if !settings.disable_mmdb => Some(Arc::new(crate::plugins::geoip::GeoIp::open(path)?)),
            _ => None,
        };
        Ok(Runtime { geoip })
    }
}

/// Runs until `shutdown` resolves: stops accepting, lets the pipeline finish
/// and commit the batch in hand, then returns.
pub async fn run(
    settings: ServeSettings,
    runtime: Runtime,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let ready = match &settings.ready_file {
        Some(path) => {
            Some(ReadyFile::claim(path).map_err(|source| ServeError::ReadyFile { path: path.clone(), source })?)
        }
        None => None,
    };
    let store_settings = &settings.store;
    let embedded = store_settings.is_embedded();
    for (what, backend) in store_settings.describe() {
        tracing::info!(%what, %backend, "store");
    }

    // The embedded database is migrated on start so the first run just works;
    // a production database belongs to `phs migrate`, run on deploy.
    migrate::embedded(store_settings).await?;
    let steps = migrate::check_for_serve(store_settings).await?;
    let pending: Vec<String> = migrate::pending(&steps).map(|s| s.name.clone()).collect();
    if !pending.is_empty() {
        return Err(ServeError::SchemaBehind(pending.join(", ")));
    }

    let store = store::connect(store_settings).await?;
    let cache = cache::connect(store_settings.redis_url.as_ref()).await?;
    if store.backend() == "postgres" && cache.backend() != "redis" {
        // Other instances may share this database; what they would share through Redis, they do not.
        tracing::warn!(
            "no REDIS_URL: plugins' meta.cache, the plugin error-rate window and instance heartbeats are this \
             instance's own; set REDIS_URL when more than one instance shares this database"
        );
    }
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
    let instance_id = uuid::Uuid::now_v7();
    let mut tasks = Supervisor::new(stop.clone());
    let capture_addr =
        start_pipeline(&settings, &runtime, store.clone(), cache.clone(), &mut tasks, instance_id).await?;

    let listener = TcpListener::bind(settings.admin_addr)
        .await
        .map_err(|source| ServeError::AdminBind { addr: settings.admin_addr, source })?;
    let admin_addr = listener.local_addr().map_err(ServeError::Admin)?;
    let started_at = chrono::Utc::now();
    let mode = if embedded { "embedded" } else { "production" };
    let state = AdminState {
        probes: Arc::new(crate::health::probes(store_settings, probe_store, probe_cache)),
        started_at,
        mode,
        max_stale: std::time::Duration::from_secs(settings.healthcheck_max_stale_seconds),
        max_batch: std::time::Duration::from_secs(settings.health_max_batch_seconds),
        identity: Arc::new(Identity {
            id: instance_id.to_string(),
            // `phs top` shows it: an instance that runs only part of the work says which.
            mode: match settings.plugin_server_mode.and_then(|m| clap::ValueEnum::to_possible_value(&m)) {
                Some(role) => format!("{mode} {}", role.get_name()),
                None => mode.into(),
            },
            admin_addr: admin_addr.to_string(),
            started_at,
        }),
    };
    start_observability(&settings, cache.clone(), &state.identity, &mut tasks);
    tasks.spawn_infallible("dependency monitor", crate::health::monitor(state.probes.clone(), tasks.stop()));
    if store_settings.kafka.kafka_hosts.is_none() {
        start_log_retention(&settings, &mut tasks).await?;
    }
    tracing::info!(
        %admin_addr,
        capture_addr = capture_addr.map(|a| a.to_string()),
        mode = state.mode,
        version = env!("CARGO_PKG_VERSION"),
        "phs is serving"
    );
    if let Some(ready) = &ready {
        let failed = |source| ServeError::ReadyFile { path: ready.path().to_path_buf(), source };
        ready.write(admin_addr, capture_addr).map_err(failed)?;
    }
    // The admin listener outlives the other tasks, so /_health tells the
    // truth (503 with the reason) while they drain after a failure.
    let admin_stop = CancellationToken::new();
    let mut admin = tokio::spawn(
        axum::serve(listener, admin::router(state))
            .with_graceful_shutdown(admin_stop.clone().cancelled_owned())
            .into_future(),
    );
    let waiting = tasks.wait();
    tokio::pin!(waiting);
    let outcome = tokio::select! {
        outcome = &mut waiting => outcome,
        served = &mut admin => {
            let err = match served {
                Ok(Ok(())) => std::io::Error::other("the admin listener ended"),
                Ok(Err(e)) => e,
                Err(e) => std::io::Error::other(e.to_string()),
            };
            tracing::error!(%err, "the admin listener failed; stopping phs");
            stop.cancel();
            let _ = waiting.await;
            return Err(ServeError::Admin(err));
        }
    };
    admin_stop.cancel();
    let _ = admin.await;
    outcome?;
    tracing::info!("phs stopped");
    Ok(())
}

/// How the ingestion side is built, beyond the store settings.
pub struct IngestOptions {
    /// Also write the ClickHouse Kafka topics (PHS_KAFKA_CLICKHOUSE_TOPICS).
    pub clickhouse_topics: bool,
    pub runner: RunnerOptions,
    pub distinct_id_lru_size: usize,
    /// Write event and property definitions (PHS_DEFINITIONS); the first-event flag is set either way.
    pub definitions: bool,
}

/// The parts of ingestion, chosen from the settings: the Kafka topic (the
/// capture producer, the DLQ topic) with KAFKA_HOSTS, else the local log;
/// ClickHouse with CLICKHOUSE_HOST, else SQLite events; plus the ClickHouse
/// Kafka topics when asked. `phs serve` and `phs replay --reingest` build
/// their pipelines from the same parts.
pub struct Ingestion {
    pub kafka: Option<KafkaProducer>,
    pub log: Option<LocalLog>,
    pub events: Arc<dyn crate::pipeline::sink::EventSink>,
    /// Where capture (and `posthog.capture`) appends.
    pub producer: Arc<dyn Producer>,
    pub dlq: Arc<dyn DeadLetterQueue>,
    pub runner: Arc<PluginRunner>,
    pub teams: Arc<TeamCache>,
    pub persons: Arc<Persons>,
    /// Where written events go for onEvent/exportEvents: the job queue
    /// embedded, a topic on Kafka; None when the sinks already produce them
    /// to `clickhouse_events_json` (see [`crate::pipeline::handoff`]).
    pub handoff: Option<Arc<dyn crate::wire::Handoff>>,
    /// Written by [`writer::run`], which must run beside the pipelines; its
    /// last write waits until only it holds them (drop the `Ingestion` too).
    pub definitions: Arc<Definitions>,
}

impl Ingestion {
    pub async fn build(
        s: &crate::config::StoreSettings,
        options: IngestOptions,
        store: Arc<dyn store::Store>,
        cache: Arc<dyn cache::Cache>,
        instance_id: uuid::Uuid,
    ) -> Result<Ingestion, ServeError> {
        let kafka = match s.kafka.kafka_hosts {
            Some(_) => Some(KafkaProducer::new(&s.kafka)?),
            None => None,
        };
        let events = crate::pipeline::sink::events_store(s).await?;
        let events = match (&kafka, options.clickhouse_topics) {
            (_, false) => events,
            (Some(producer), true) => {
                Arc::new(Fanout::new(vec![events, Arc::new(ClickHouseTopics::new(producer.clone()))]))
            }
            (None, true) => return Err(ServeError::Config("PHS_KAFKA_CLICKHOUSE_TOPICS needs KAFKA_HOSTS".into())),
        };
        let log = match kafka {
            Some(_) => None,
            None => Some(LocalLog::open(&s.data_dir).await?),
        };
        let (producer, dlq): (Arc<dyn Producer>, Arc<dyn DeadLetterQueue>) = match (&kafka, &log) {
            (Some(producer), _) => (
                Arc::new(producer.clone()),
                Arc::new(DlqTopic::new(producer.clone(), &s.kafka.kafka_consumption_topic)),
            ),
            (None, Some(log)) => (Arc::new(log.clone()), Arc::new(log.clone())),
            (None, None) => unreachable!("the local log is opened whenever Kafka is not configured"),
        };
        let runner =
            PluginRunner::new(Backends::of(store.clone(), cache), Some(producer.clone()), options.runner, instance_id);
        let teams = Arc::new(TeamCache::new(store.clone()));
        let persons =
            Arc::new(Persons::new(store.clone(), options.distinct_id_lru_size).mirrored(events.mirrors_persons()));
        let handoff: Option<Arc<dyn crate::wire::Handoff>> = match (&kafka, options.clickhouse_topics) {
            (None, _) => Some(Arc::new(EventHandoff::new(runner.clone(), store.clone()))),
            (Some(producer), false) => Some(Arc::new(TopicHandoff::new(runner.clone(), producer.clone()))),
            (Some(_), true) => None,
        };
        let definitions = Definitions::new(store, options.definitions);
        Ok(Ingestion { kafka, log, events, producer, dlq, runner, teams, persons, handoff, definitions })
    }

    /// A pipeline over these parts, processing each batch on `shards` tasks
    /// (at most the runner's states are used) that run `tasks` keys each at once.
    pub fn pipeline(&self, shards: usize, tasks: usize) -> Pipeline {
        let pipeline = Pipeline::new(
            self.teams.clone(),
            self.runner.clone(),
            self.persons.clone(),
            self.events.clone(),
            self.dlq.clone(),
        )
        .with_definitions(self.definitions.clone())
        .with_shards(shards, tasks);
        match &self.handoff {
            Some(handoff) => pipeline.with_handoff(handoff.clone()),
            None => pipeline,
        }
    }
}

/// Starts ingestion (the capture endpoint and the pipeline task) and the
/// parts of the async side PLUGIN_SERVER_MODE names ([`Roles`]).
/// Each ingestion part follows its setting: the Kafka topic (source,
/// capture's producer, DLQ topic) with KAFKA_HOSTS, else the local log;
/// ClickHouse with CLICKHOUSE_HOST, else SQLite events; plus the ClickHouse
/// Kafka topics when PHS_KAFKA_CLICKHOUSE_TOPICS is on. Any mix works.
/// Its tasks run under `tasks`. Returns the capture endpoint's bound address
/// (None when this instance does not capture).
async fn start_pipeline(
    settings: &ServeSettings,
    runtime: &Runtime,
    store: Arc<dyn store::Store>,
    cache: Arc<dyn cache::Cache>,
    tasks: &mut Supervisor,
    instance_id: uuid::Uuid,
) -> Result<Option<std::net::SocketAddr>, ServeError> {
    let stop = tasks.stop();
    let s = &settings.store;
    let shards = settings.shards();
    let fetch = FetchPolicy { allow_private: settings.plugin_fetch_allow_private, ..Default::default() };
    fetch.warm();
    let options = IngestOptions {
        clickhouse_topics: settings.kafka_clickhouse_topics,
        runner: RunnerOptions {
            limits: Limits::default(),
            fetch,
            geoip: runtime.geoip.clone(),
            auto_disable: ErrorRatePolicy {
                rate: settings.plugin_disable_error_rate,
                min_calls: settings.plugin_disable_min_calls,
                window: std::time::Duration::from_secs(settings.plugin_disable_window_seconds),
            },
            // The pipeline's shards use the first states, the async side's onEvent lanes as many as it runs.
            states: shards.max(settings.on_event_concurrency as usize),
            // Test-only (not a flag): tests sharing a Redis keep their counts apart.
            error_rate_key: std::env::var("PHS_ERROR_RATE_KEY").ok(),
        },
        distinct_id_lru_size: settings.distinct_id_lru_size,
        definitions: settings.definitions,
    };
    let ingestion = Ingestion::build(s, options, store.clone(), cache.clone(), instance_id).await?;
    let persons_store: Arc<dyn store::PersonStore> = store.clone();
    let pipeline = || ingestion.pipeline(shards, settings.tasks_per_worker as usize);
    tasks.spawn_infallible("plugin error rates", ingestion.runner.clone().share_error_rates(stop.clone()));
    let roles = Roles::of(settings.plugin_server_mode);
    if roles.any_async() {
        let worker = WorkerSettings::for_serve(
            Duration::from_secs(settings.schedule_lock_ttl),
            settings.on_event_concurrency as usize,
            instance_id.to_string(),
        )
        .map_err(ServeError::Config)?;
        let hooks = Hooks { on_event: roles.on_event, exports: roles.exports };
        let stream = match &ingestion.kafka {
            Some(_) if hooks.on_event || hooks.exports => {
                let topic = handoff::async_events_topic(settings.kafka_clickhouse_topics);
                let source: Box<dyn Source> = Box::new(KafkaSource::stored_events(&s.kafka, topic, hooks.group())?);
                Some((source, hooks))
            }
            Some(_) => None,
            None if roles.splits_hooks() => {
                return Err(ServeError::Config(
                    "PLUGIN_SERVER_MODE=async-onevent and async-exports need KAFKA_HOSTS: embedded, onEvent and \
                     exportEvents run together on the job queue (use async)"
                        .into(),
                ));
            }
            None => None,
        };
        let parts = worker::Parts { jobs: roles.jobs, scheduler: roles.scheduler, stream };
        worker::start(worker, parts, store, cache, ingestion.runner.clone(), tasks);
    }
    if !roles.ingestion {
        tracing::info!(mode = ?settings.plugin_server_mode, "no capture endpoint or ingestion on this instance");
        return Ok(None);
    }
    // Joined only here, so an async-only instance never takes partitions from the group.
    let source: Box<dyn Source> = match &ingestion.log {
        Some(log) => Box::new(log.consumer("phs-ingestion").await?),
        None => Box::new(KafkaSource::new(&s.kafka)?),
    };
    let mut main = pipeline();
    let slow_lane =
        (settings.slow_lane_ms > 0).then(|| Arc::new(SlowTeams::new(Duration::from_millis(settings.slow_lane_ms))));
    if settings.event_overflow_bucket_capacity > 0 || slow_lane.is_some() {
        let (to, from): (Arc<dyn Producer>, Box<dyn Source>) = match &ingestion.kafka {
            Some(producer) => {
                let topic = producer.topic(&s.kafka.overflow_topic());
                let to = Arc::new(KafkaOverflow { producer: producer.clone(), topic });
                (to, Box::new(KafkaSource::overflow(&s.kafka)?))
            }
            None => {
                let overflow = LocalLog::open_overflow(&s.data_dir).await?;
                let from = Box::new(overflow.consumer("phs-ingestion").await?);
                (Arc::new(overflow), from)
            }
        };
        let rate = settings.event_overflow_bucket_replenish_rate;
        main = main.with_overflow(Arc::new(Overflow::new(settings.event_overflow_bucket_capacity, rate, to)));
        let mut overflow = pipeline().consuming_overflow();
        if let Some(slow) = slow_lane {
            main = main.with_slow_lane(slow.clone());
            overflow = overflow.with_slow_lane(slow);
        }
        let stop = stop.clone();
        tasks.spawn("overflow pipeline", async move { overflow.run(from, stop).await });
    }

    let capture =
        capture::router(CaptureState { producer: ingestion.producer.clone(), teams: ingestion.teams.clone() });
    let listener = TcpListener::bind(settings.capture_addr)
        .await
        .map_err(|source| ServeError::CaptureBind { addr: settings.capture_addr, source })?;
    let capture_addr =
        listener.local_addr().map_err(|source| ServeError::CaptureBind { addr: settings.capture_addr, source })?;
    tracing::info!(%capture_addr, "capture endpoint listening");
    let capture_stop = stop.clone();
    tasks.spawn("capture endpoint", async move {
        let app = capture.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(capture_stop.cancelled_owned())
            .await
            .map_err(|e| e.to_string())
    });
    tasks.spawn_infallible("definitions writer", writer::run(ingestion.definitions.clone(), stop.clone()));
    if ingestion.events.mirrors_persons() {
        let resync = crate::pipeline::persons::resync::run(persons_store, ingestion.events.clone(), stop.clone());
        tasks.spawn_infallible("persons resync", resync);
    }
    tasks.spawn("pipeline", async move { main.run(source, stop).await });
    Ok(Some(capture_addr))
}

/// The metrics sampler, the heartbeat and (with STATSD_HOST) the StatsD exporter.
fn start_observability(settings: &ServeSettings, cache: Arc<dyn cache::Cache>, who: &Identity, tasks: &mut Supervisor) {
    let stop = tasks.stop();
    let metrics = crate::metrics::global();
    tasks.spawn_infallible("metrics sampler", crate::metrics::sampler::run(metrics, stop.clone()));
    let heartbeat = crate::instances::Heartbeat {
        id: who.id.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        mode: who.mode.clone(),
        admin_addr: who.admin_addr.clone(),
        started_at: who.started_at,
    };
    tasks.spawn_infallible("heartbeat", crate::instances::beat(cache, heartbeat, stop.clone()));
    if let Some(host) = &settings.statsd_host {
        let target = format!("{host}:{}", settings.statsd_port);
        tracing::info!(%target, prefix = %settings.statsd_prefix, "exporting metrics to StatsD");
        let period = crate::metrics::sampler::PERIOD;
        let prefix = settings.statsd_prefix.clone();
        tasks.spawn_infallible("statsd exporter", crate::metrics::statsd::run(metrics, target, prefix, period, stop));
    }
}

/// The embedded local logs' retention (PHS_LOG_RETENTION_HOURS/BYTES), on
/// connections of its own so that its deletes never take capture's.
async fn start_log_retention(settings: &ServeSettings, tasks: &mut Supervisor) -> Result<(), ServeError> {
    let retention = Retention::for_serve(
        settings.log_retention_hours,
        settings.log_retention_bytes,
        settings.dead_letter_retention_count,
    )
    .map_err(ServeError::Config)?;
    let Some(retention) = retention else { return Ok(()) };
    let dir = &settings.store.data_dir;
    let mut logs = vec![("ingestion", LocalLog::open(dir).await?)];
    if settings.event_overflow_bucket_capacity > 0 {
        logs.push(("overflow", LocalLog::open_overflow(dir).await?));
    }
    tasks.spawn_infallible("log retention", retention.run(logs, tasks.stop()));
    Ok(())
}
