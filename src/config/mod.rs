//! Settings: every knob of the original's configuration table under its
//! original environment variable name, each also a flag.
//!
//! The structs here are clap `Args` so that `--help`, the man page, shell
//! completions and validation all come from one definition. Which backend a
//! store uses follows from which settings are given: no DATABASE_URL means
//! SQLite in PHS_DATA_DIR, no REDIS_URL an in-process cache, no KAFKA_HOSTS
//! the local ingestion log, no CLICKHOUSE_HOST events in SQLite.
//!
//! Every value is validated while parsing, so a bad one stops the process
//! before anything starts, with clap's usage error (exit code 2) naming the
//! variable: value names are the environment variable names on purpose.

pub mod legacy;
pub mod parse;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum, builder::BoolishValueParser};
use url::Url;

pub use parse::{ClickHouseUrl, KafkaHosts, redact};

/// DISTINCT_ID_LRU_SIZE's default, also what `phs replay` reads ahead with.
pub const DISTINCT_ID_READ_AHEAD: usize = 10_000;

/// Where each store lives. Shared by every command that touches data.
#[derive(Debug, Clone, Args)]
pub struct StoreSettings {
    /// Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR.
    #[arg(long, env = "DATABASE_URL", value_name = "DATABASE_URL", value_parser = parse::postgres_url,
          hide_env_values = true, help_heading = "Storage")]
    pub database_url: Option<Url>,

    /// Directory of the embedded stores (SQLite database, local ingestion log).
    #[arg(
        long,
        env = "PHS_DATA_DIR",
        value_name = "PHS_DATA_DIR",
        default_value = "./phs-data",
        help_heading = "Storage"
    )]
    pub data_dir: PathBuf,

    /// Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process.
    #[arg(long, env = "REDIS_URL", value_name = "REDIS_URL", value_parser = parse::redis_url,
          hide_env_values = true, help_heading = "Storage")]
    pub redis_url: Option<Url>,

    #[command(flatten)]
    pub kafka: KafkaSettings,

    #[command(flatten)]
    pub clickhouse: ClickHouseSettings,
}

/// Kafka connection and topics. Unset KAFKA_HOSTS: the local ingestion log.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Kafka")]
pub struct KafkaSettings {
    /// Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log.
    #[arg(long, env = "KAFKA_HOSTS", value_name = "KAFKA_HOSTS", value_parser = parse::kafka_hosts)]
    pub kafka_hosts: Option<KafkaHosts>,

    /// Topic of incoming events, as produced by capture.
    #[arg(long, env = "KAFKA_CONSUMPTION_TOPIC", value_name = "KAFKA_CONSUMPTION_TOPIC",
          default_value = "events_plugin_ingestion", value_parser = parse::topic_name)]
    pub kafka_consumption_topic: String,

    /// Consumer group of the ingestion consumers; instances in one group share the partitions.
    #[arg(
        long,
        env = "KAFKA_CONSUMER_GROUP",
        value_name = "KAFKA_CONSUMER_GROUP",
        default_value = "clickhouse-ingestion"
    )]
    pub kafka_consumer_group: String,

    /// Prefix put before every topic name (lets several deployments or tests share a broker).
    #[arg(long, env = "KAFKA_PREFIX", value_name = "KAFKA_PREFIX", default_value = "")]
    pub kafka_prefix: String,

    /// Client certificate (PEM), base64-encoded; enables TLS.
    #[arg(long, env = "KAFKA_CLIENT_CERT_B64", value_name = "KAFKA_CLIENT_CERT_B64",
          value_parser = parse::base64_pem, hide_env_values = true)]
    pub kafka_client_cert_b64: Option<String>,

    /// Client certificate key (PEM), base64-encoded.
    #[arg(long, env = "KAFKA_CLIENT_CERT_KEY_B64", value_name = "KAFKA_CLIENT_CERT_KEY_B64",
          value_parser = parse::base64_pem, hide_env_values = true)]
    pub kafka_client_cert_key_b64: Option<String>,

    /// Trusted CA certificate (PEM), base64-encoded.
    #[arg(long, env = "KAFKA_TRUSTED_CERT_B64", value_name = "KAFKA_TRUSTED_CERT_B64",
          value_parser = parse::base64_pem, hide_env_values = true)]
    pub kafka_trusted_cert_b64: Option<String>,

    /// Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given.
    #[arg(long, env = "KAFKA_SECURITY_PROTOCOL", value_name = "KAFKA_SECURITY_PROTOCOL")]
    pub kafka_security_protocol: Option<KafkaSecurityProtocol>,

    /// SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).
    #[arg(long, env = "KAFKA_SASL_MECHANISM", value_name = "KAFKA_SASL_MECHANISM")]
    pub kafka_sasl_mechanism: Option<String>,

    /// SASL user name.
    #[arg(long, env = "KAFKA_SASL_USER", value_name = "KAFKA_SASL_USER")]
    pub kafka_sasl_user: Option<String>,

    /// SASL password.
    #[arg(long, env = "KAFKA_SASL_PASSWORD", value_name = "KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<String>,

    /// Producer: most messages in one batch to a partition (librdkafka's batch.num.messages). The original's 20
    /// would make producing many times slower.
    #[arg(long, env = "KAFKA_PRODUCER_MAX_QUEUE_SIZE", value_name = "KAFKA_PRODUCER_MAX_QUEUE_SIZE",
          default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub kafka_producer_max_queue_size: u32,

    /// Producer: longest wait for a batch to fill, in milliseconds (librdkafka's linger.ms); every capture request
    /// waits up to this long. The original's 500 would add half a second to each.
    #[arg(long, env = "KAFKA_FLUSH_FREQUENCY_MS", value_name = "KAFKA_FLUSH_FREQUENCY_MS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(0..=900_000))]
    pub kafka_flush_frequency_ms: u64,

    /// Producer: largest batch in bytes to a partition (librdkafka's batch.size).
    #[arg(long, env = "KAFKA_MAX_MESSAGE_BATCH_SIZE", value_name = "KAFKA_MAX_MESSAGE_BATCH_SIZE",
          default_value_t = 900_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub kafka_max_message_batch_size: u64,
}

/// TASKS_PER_WORKER's default, the original's.
pub const TASKS_PER_WORKER: usize = 10;

/// The cores this process may use: the default number of shards.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl ServeSettings {
    /// The pipeline's shards: WORKER_CONCURRENCY, or one per core.
    pub fn shards(&self) -> usize {
        match self.worker_concurrency {
            0 => cores(),
            n => n as usize,
        }
    }
}

impl KafkaSettings {
    /// Producer settings that slow phs down, as an original deployment's
    /// values would: `phs serve` warns about each, so none is silent.
    pub fn slow_producer(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.kafka_flush_frequency_ms >= 100 {
            out.push(format!(
                "KAFKA_FLUSH_FREQUENCY_MS={} is librdkafka's linger.ms here: every capture request and every \
                 batch phs produces waits up to that long (phs's default is 5)",
                self.kafka_flush_frequency_ms
            ));
        }
        if self.kafka_producer_max_queue_size < 1000 {
            out.push(format!(
                "KAFKA_PRODUCER_MAX_QUEUE_SIZE={} is librdkafka's batch.num.messages here: batches that small \
                 make producing many times slower (phs's default is 10000)",
                self.kafka_producer_max_queue_size
            ));
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KafkaSecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

/// ClickHouse connection. Unset CLICKHOUSE_HOST: events are stored in SQLite.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "ClickHouse")]
pub struct ClickHouseSettings {
    /// ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite.
    #[arg(long, env = "CLICKHOUSE_HOST", value_name = "CLICKHOUSE_HOST", value_parser = parse::clickhouse_host)]
    pub clickhouse_host: Option<ClickHouseUrl>,

    /// ClickHouse database.
    #[arg(long, env = "CLICKHOUSE_DATABASE", value_name = "CLICKHOUSE_DATABASE", default_value = "default",
          value_parser = parse::identifier)]
    pub clickhouse_database: String,

    /// ClickHouse user name.
    #[arg(long, env = "CLICKHOUSE_USER", value_name = "CLICKHOUSE_USER", default_value = "default")]
    pub clickhouse_user: String,

    /// ClickHouse password.
    #[arg(long, env = "CLICKHOUSE_PASSWORD", value_name = "CLICKHOUSE_PASSWORD", hide_env_values = true)]
    pub clickhouse_password: Option<String>,

    /// Use https for ClickHouse when CLICKHOUSE_HOST has no scheme.
    #[arg(long, env = "CLICKHOUSE_SECURE", value_name = "CLICKHOUSE_SECURE", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set,
          default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub clickhouse_secure: bool,

    /// CA certificate file (PEM) to trust for ClickHouse over https.
    #[arg(long, env = "CLICKHOUSE_CA", value_name = "CLICKHOUSE_CA", value_parser = parse::pem_file)]
    pub clickhouse_ca: Option<PathBuf>,
}

/// What `phs serve` runs: the pipeline, plugins, schedules and the admin listener.
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    #[command(flatten)]
    pub store: StoreSettings,

    /// Shards each batch is processed on, each a task with its own Lua states (the original's worker
    /// threads); events are spread by (team, distinct_id), so one person's stay in order. 0: one per core.
    #[arg(
        long,
        env = "WORKER_CONCURRENCY",
        value_name = "WORKER_CONCURRENCY",
        default_value_t = 0,
        help_heading = "Workers"
    )]
    pub worker_concurrency: u32,

    /// (team, distinct_id) keys each shard processes at once: while one waits on a plugin's cache,
    /// storage or fetch call, or on persons, the next runs.
    #[arg(long, env = "TASKS_PER_WORKER", value_name = "TASKS_PER_WORKER", default_value_t = TASKS_PER_WORKER as u32,
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Workers")]
    pub tasks_per_worker: u32,

    /// onEvent calls of one plugin config run at once by the async side on Kafka, each on a Lua state
    /// of its own; one distinct id's events stay in order. Embedded runs them one at a time.
    #[arg(long, env = "PHS_ON_EVENT_CONCURRENCY", value_name = "PHS_ON_EVENT_CONCURRENCY", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=64), help_heading = "Workers")]
    pub on_event_concurrency: u32,

    /// Which parts of the server this instance runs. Unset: all of them.
    #[arg(long, env = "PLUGIN_SERVER_MODE", value_name = "PLUGIN_SERVER_MODE", help_heading = "Workers")]
    pub plugin_server_mode: Option<ServerMode>,

    /// Seconds the scheduler lock is held; one instance in the cluster runs scheduled tasks.
    #[arg(long, env = "SCHEDULE_LOCK_TTL", value_name = "SCHEDULE_LOCK_TTL", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..), help_heading = "Plugins")]
    pub schedule_lock_ttl: u64,

    /// Disable MaxMind GeoIP lookups for plugins (`meta.geoip`).
    #[arg(long, env = "DISABLE_MMDB", value_name = "DISABLE_MMDB", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set,
          default_value_t = false, num_args = 0..=1, default_missing_value = "true", help_heading = "Plugins")]
    pub disable_mmdb: bool,

    /// MaxMind City database (.mmdb) behind plugins' `meta.geoip.locate`. Unset: locate raises an error.
    #[arg(long, env = "MMDB_FILE_LOCATION", value_name = "MMDB_FILE_LOCATION", help_heading = "Plugins")]
    pub mmdb_file_location: Option<PathBuf>,

    /// Share of failed calls (0-1] within a window that disables a plugin config automatically.
    #[arg(long, env = "PHS_PLUGIN_DISABLE_ERROR_RATE", value_name = "PHS_PLUGIN_DISABLE_ERROR_RATE",
          default_value_t = 0.5, value_parser = parse::rate, help_heading = "Plugins")]
    pub plugin_disable_error_rate: f64,

    /// Calls a window must hold before the error rate can disable a plugin config.
    #[arg(long, env = "PHS_PLUGIN_DISABLE_MIN_CALLS", value_name = "PHS_PLUGIN_DISABLE_MIN_CALLS",
          default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Plugins")]
    pub plugin_disable_min_calls: u32,

    /// Seconds of the window in which a plugin config's error rate is counted.
    #[arg(long, env = "PHS_PLUGIN_DISABLE_WINDOW_SECONDS", value_name = "PHS_PLUGIN_DISABLE_WINDOW_SECONDS",
          default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Plugins")]
    pub plugin_disable_window_seconds: u64,

    /// Let plugins' fetch() reach private, loopback and link-local addresses (off: only public ones).
    #[arg(long, env = "PHS_PLUGIN_FETCH_ALLOW_PRIVATE", value_name = "PHS_PLUGIN_FETCH_ALLOW_PRIVATE",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, default_value_t = false,
          num_args = 0..=1, default_missing_value = "true", help_heading = "Plugins")]
    pub plugin_fetch_allow_private: bool,

    /// Also produce events, persons, distinct ids and groups to the Kafka topics PostHog's ClickHouse
    /// consumes (clickhouse_events_json, clickhouse_person, ...), to stand in for the Node plugin server.
    #[arg(long, env = "PHS_KAFKA_CLICKHOUSE_TOPICS", value_name = "PHS_KAFKA_CLICKHOUSE_TOPICS",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, default_value_t = false,
          num_args = 0..=1, default_missing_value = "true", help_heading = "Ingestion")]
    pub kafka_clickhouse_topics: bool,

    /// Keep the event and property definitions PostHog's UI lists (posthog_eventdefinition,
    /// posthog_propertydefinition, posthog_eventproperty) as events arrive. Turn off where a separate
    /// taxonomy service writes them; the team's first-event flag (ingested_event) is set either way.
    #[arg(long, env = "PHS_DEFINITIONS", value_name = "PHS_DEFINITIONS",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, default_value_t = true,
          num_args = 0..=1, default_missing_value = "true", help_heading = "Ingestion")]
    pub definitions: bool,

    /// Events one (token, distinct_id) may send in a burst; past it, its events go to the overflow topic
    /// (KAFKA_CONSUMPTION_TOPIC + `_overflow`, or the embedded overflow log), where a second pipeline
    /// ingests them, so one flooding person does not hold up everyone else's batches. 0 turns it off.
    #[arg(
        long,
        env = "EVENT_OVERFLOW_BUCKET_CAPACITY",
        value_name = "EVENT_OVERFLOW_BUCKET_CAPACITY",
        default_value_t = 1000,
        help_heading = "Ingestion"
    )]
    pub event_overflow_bucket_capacity: u32,

    /// Milliseconds a team's processEvent calls may take for one event in the main pipeline. A call that
    /// runs longer (or computes for more than 10 ms of it; a state's first setupPlugin counts too) is cut,
    /// and that event and the team's next ones go to the overflow lane, where they run with the full plugin
    /// limits, until the team's calls have been within this for a minute; so a slow or hostile plugin holds
    /// up other teams' batches for this long once, not for its limits at every call. 0 turns it off.
    #[arg(
        long,
        env = "PHS_SLOW_LANE_MS",
        value_name = "PHS_SLOW_LANE_MS",
        default_value_t = 50,
        help_heading = "Plugins"
    )]
    pub slow_lane_ms: u64,

    /// Hours a message of the embedded local logs (ingestion and overflow) is kept once
    /// every consumer has committed it; older ones are deleted. 0: no age limit.
    #[arg(
        long,
        env = "PHS_LOG_RETENTION_HOURS",
        value_name = "PHS_LOG_RETENTION_HOURS",
        default_value_t = 168,
        help_heading = "Ingestion"
    )]
    pub log_retention_hours: u64,

    /// Bytes each embedded local log file may hold; past it its oldest committed messages are
    /// deleted, whatever their age. 0: no size limit.
    #[arg(long, env = "PHS_LOG_RETENTION_BYTES", value_name = "PHS_LOG_RETENTION_BYTES",
          default_value_t = 4 * 1024 * 1024 * 1024, help_heading = "Ingestion")]
    pub log_retention_bytes: u64,

    /// Dead letters each embedded local log keeps at most; past it the oldest are deleted
    /// (they also go with PHS_LOG_RETENTION_HOURS). 0: no count limit.
    #[arg(
        long,
        env = "PHS_DEAD_LETTER_RETENTION_COUNT",
        value_name = "PHS_DEAD_LETTER_RETENTION_COUNT",
        default_value_t = 100_000,
        help_heading = "Ingestion"
    )]
    pub dead_letter_retention_count: u64,

    /// Events per second at which a (token, distinct_id)'s burst allowance refills.
    #[arg(long, env = "EVENT_OVERFLOW_BUCKET_REPLENISH_RATE", value_name = "EVENT_OVERFLOW_BUCKET_REPLENISH_RATE",
          default_value_t = 1.0, value_parser = parse::per_second, help_heading = "Ingestion")]
    pub event_overflow_bucket_replenish_rate: f64,

    /// Distinct ids whose persons a batch reads ahead in one query (no cache is kept across batches:
    /// it could serve a person that another instance has merged away).
    #[arg(
        long,
        env = "DISTINCT_ID_LRU_SIZE",
        value_name = "DISTINCT_ID_LRU_SIZE",
        default_value_t = DISTINCT_ID_READ_AHEAD,
        help_heading = "Persons"
    )]
    pub distinct_id_lru_size: usize,

    /// Address of the admin HTTP listener (/_health, /_ready). Keep it on loopback or a private network.
    /// Port 0 lets the kernel pick a free port; PHS_READY_FILE and the log say which.
    #[arg(
        long,
        env = "ADMIN_ADDR",
        value_name = "ADMIN_ADDR",
        default_value = "127.0.0.1:6738",
        help_heading = "Observability"
    )]
    pub admin_addr: SocketAddr,

    /// Address of the capture endpoint that PostHog SDKs send to (/e, /capture, /batch, /i/v0/e).
    /// Port 0 lets the kernel pick a free port; PHS_READY_FILE and the log say which.
    #[arg(
        long,
        env = "CAPTURE_ADDR",
        value_name = "CAPTURE_ADDR",
        default_value = "127.0.0.1:8000",
        help_heading = "Ingestion"
    )]
    pub capture_addr: SocketAddr,

    /// Once both listeners are open, write their bound addresses to this file as
    /// `ADMIN_ADDR=host:port` and `CAPTURE_ADDR=host:port` lines (a shell can source it);
    /// deleted at start and when phs stops. Its appearance means "listening", not "healthy".
    #[arg(long, env = "PHS_READY_FILE", value_name = "PHS_READY_FILE", help_heading = "Observability")]
    pub ready_file: Option<PathBuf>,

    /// Seconds without ingesting anything, while events wait, before /_health fails.
    #[arg(long, env = "HEALTHCHECK_MAX_STALE_SECONDS", value_name = "HEALTHCHECK_MAX_STALE_SECONDS",
          default_value_t = 7200, value_parser = clap::value_parser!(u64).range(1..),
          help_heading = "Observability")]
    pub healthcheck_max_stale_seconds: u64,

    /// Seconds one batch may be held, or keep failing (a dependency down and
    /// retried), before /_health fails; it passes again once the batch goes through.
    #[arg(long, env = "PHS_HEALTH_MAX_BATCH_SECONDS", value_name = "PHS_HEALTH_MAX_BATCH_SECONDS",
          default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..),
          help_heading = "Observability")]
    pub health_max_batch_seconds: u64,

    /// Seconds SIGTERM waits for the batches in hand to be written and committed
    /// before phs exits anyway (with code 1); a second SIGTERM exits at once.
    #[arg(long, env = "PHS_SHUTDOWN_TIMEOUT_SECONDS", value_name = "PHS_SHUTDOWN_TIMEOUT_SECONDS",
          default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..),
          help_heading = "Observability")]
    pub shutdown_timeout_seconds: u64,

    /// StatsD host; unset disables StatsD export.
    #[arg(long, env = "STATSD_HOST", value_name = "STATSD_HOST", help_heading = "Observability")]
    pub statsd_host: Option<String>,

    /// StatsD port.
    #[arg(
        long,
        env = "STATSD_PORT",
        value_name = "STATSD_PORT",
        default_value_t = 8125,
        help_heading = "Observability"
    )]
    pub statsd_port: u16,

    /// Prefix of every StatsD metric.
    #[arg(
        long,
        env = "STATSD_PREFIX",
        value_name = "STATSD_PREFIX",
        default_value = "plugin-server.",
        help_heading = "Observability"
    )]
    pub statsd_prefix: String,
}

/// PLUGIN_SERVER_MODE: the original's `ingestion` and `async`, and finer
/// modes that split the async side further.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServerMode {
    /// Only ingestion: source -> plugins' processEvent -> persons -> sinks.
    Ingestion,
    /// Only async work: onEvent/exportEvents, scheduled tasks and jobs.
    Async,
    /// Only onEvent, from the stored-events topic in a consumer group of its own (needs Kafka).
    AsyncOnevent,
    /// Only exportEvents, from the stored-events topic in a consumer group of its own (needs Kafka).
    AsyncExports,
    /// Only the job worker: plugin jobs and exportEvents retries.
    Jobs,
    /// Only runEveryMinute/Hour/Day (one instance of the cluster runs them at a time).
    Scheduler,
}

/// The parts of the server one instance runs, from its PLUGIN_SERVER_MODE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// The capture endpoint and the pipeline.
    pub ingestion: bool,
    pub on_event: bool,
    pub exports: bool,
    /// The job worker (plugin jobs, export retries; embedded also onEvent and exports).
    pub jobs: bool,
    pub scheduler: bool,
}

impl Roles {
    pub fn of(mode: Option<ServerMode>) -> Roles {
        let only = |on_event, exports, jobs, scheduler| Roles { ingestion: false, on_event, exports, jobs, scheduler };
        match mode {
            None => Roles { ingestion: true, ..only(true, true, true, true) },
            Some(ServerMode::Ingestion) => only(false, false, false, false).with_ingestion(),
            Some(ServerMode::Async) => only(true, true, true, true),
            Some(ServerMode::AsyncOnevent) => only(true, false, false, false),
            Some(ServerMode::AsyncExports) => only(false, true, false, false),
            Some(ServerMode::Jobs) => only(false, false, true, false),
            Some(ServerMode::Scheduler) => only(false, false, false, true),
        }
    }

    fn with_ingestion(self) -> Roles {
        Roles { ingestion: true, ..self }
    }

    /// Whether any part of the async side runs here.
    pub fn any_async(&self) -> bool {
        self.on_event || self.exports || self.jobs || self.scheduler
    }

    /// onEvent or exportEvents but not both: a split that needs the
    /// stored-events topic, where each reads in a group of its own.
    pub fn splits_hooks(&self) -> bool {
        self.on_event != self.exports
    }
}

/// Log filter, named as in the original (`log` is `info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Log,
    Warn,
    Error,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Which implementation each store resolves to, from the settings given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseBackend {
    Sqlite(PathBuf),
    Postgres(Url),
}

impl StoreSettings {
    pub fn database(&self) -> DatabaseBackend {
        match &self.database_url {
            Some(url) => DatabaseBackend::Postgres(url.clone()),
            None => DatabaseBackend::Sqlite(self.data_dir.join("phs.sqlite3")),
        }
    }

    /// True when no external service is configured at all.
    pub fn is_embedded(&self) -> bool {
        self.database_url.is_none()
            && self.redis_url.is_none()
            && self.kafka.kafka_hosts.is_none()
            && self.clickhouse.clickhouse_host.is_none()
    }

    /// One line per store saying which backend it uses, for startup logs and `migrate --status`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let db = match self.database() {
            DatabaseBackend::Sqlite(p) => format!("sqlite {}", p.display()),
            DatabaseBackend::Postgres(u) => format!("postgres {}", parse::redact(&u)),
        };
        let cache = match &self.redis_url {
            Some(u) => format!("redis {}", parse::redact(u)),
            None => "in-process".to_string(),
        };
        let log = match &self.kafka.kafka_hosts {
            Some(h) => format!("kafka {h}"),
            None => format!("local log in {}", self.data_dir.display()),
        };
        let events = match &self.clickhouse.clickhouse_host {
            Some(h) => format!(
                "clickhouse {} database {}",
                h.url(self.clickhouse.clickhouse_secure),
                self.clickhouse.clickhouse_database
            ),
            None => "sqlite (embedded)".to_string(),
        };
        vec![("database", db), ("cache", cache), ("ingestion log", log), ("events", events)]
    }
}

impl KafkaSettings {
    /// A topic name as this deployment sees it (with KAFKA_PREFIX).
    pub fn topic(&self, name: &str) -> String {
        format!("{}{}", self.kafka_prefix, name)
    }

    /// Where hot keys' events go ([`crate::pipeline::overflow`]), before KAFKA_PREFIX.
    pub fn overflow_topic(&self) -> String {
        format!("{}_overflow", self.kafka_consumption_topic)
    }
}
