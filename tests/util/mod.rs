//! Shared test helpers: the built binary, real service addresses, and
//! unique names so tests can run in parallel against shared services.

use std::process::Command;

pub mod embedded;
pub mod eventually;
pub mod fault_proxy;
pub mod load;
pub mod own_broker;
mod own_postgres;
pub mod plugins;
pub mod production;
pub mod server;
pub use own_postgres::OwnPostgres;
use std::sync::atomic::{AtomicU32, Ordering};

/// Every variable that would switch phs away from the embedded default.
/// Commands run by tests start from none of them and get only what the test gives.
pub const SERVICE_VARS: &[&str] = &[
    "DATABASE_URL",
    "REDIS_URL",
    "KAFKA_HOSTS",
    "CLICKHOUSE_HOST",
    "CLICKHOUSE_DATABASE",
    "KAFKA_PREFIX",
    "ADMIN_ADDR",
    "CAPTURE_ADDR",
    "PHS_READY_FILE",
    "PHS_DATA_DIR",
    "LOG_LEVEL",
    "KAFKA_CONSUMER_GROUP",
    "PHS_KAFKA_CLICKHOUSE_TOPICS",
];

/// `phs` as built by cargo for this test run (or the binary PHS_TEST_BIN
/// names: `scripts/torture` runs the long profile on a release build), with
/// a clean service environment.
pub fn phs() -> Command {
    let bin = std::env::var_os("PHS_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_phs").into());
    let mut cmd = Command::new(bin);
    for var in SERVICE_VARS {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// `phs ARGS` with the given environment: its exit code, stdout and stderr.
pub fn phs_with(envs: &[(&str, String)], args: &[&str]) -> (Option<i32>, String, String) {
    let out = phs().args(args).envs(envs.iter().map(|(k, v)| (*k, v.as_str()))).output().unwrap();
    (out.status.code(), stdout(&out), stderr(&out))
}

/// `phs ARGS` with the given environment, which must succeed: its stdout.
pub fn phs_ok(envs: &[(&str, String)], args: &[&str]) -> String {
    let (code, out, err) = phs_with(envs, args);
    assert_eq!(code, Some(0), "phs {args:?}: {err}");
    out
}

/// A real service's address from the environment `scripts/test` prepares.
pub fn service(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{var} is not set: this test needs a real service. Run the suite with `scripts/test`, \
             which starts Postgres, Redis, ClickHouse and the Kafka broker and sets PHS_TEST_*."
        ),
    }
}

pub fn postgres_admin_url() -> String {
    service("PHS_TEST_DATABASE_URL")
}
pub fn redis_url() -> String {
    service("PHS_TEST_REDIS_URL")
}
pub fn kafka_hosts() -> String {
    service("PHS_TEST_KAFKA_HOSTS")
}
pub fn clickhouse_host() -> String {
    service("PHS_TEST_CLICKHOUSE_HOST")
}

/// A name no other test (or earlier run) uses: `prefix_pid_counter_random`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let salt: u32 = rand::random::<u32>() % 1_000_000;
    format!("{prefix}_{}_{n}_{salt}", std::process::id())
}

/// Creates an empty Postgres database for one test and returns its URL.
pub async fn fresh_postgres_db() -> String {
    use sqlx::Connection;
    let admin = postgres_admin_url();
    let name = unique("phs_test");
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to Postgres at {admin}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let mut url = url::Url::parse(&admin).expect("PHS_TEST_DATABASE_URL is a URL");
    url.set_path(&name);
    url.to_string()
}

/// A free TCP port on loopback (bound then released): for a service a test
/// starts on it at once. For one that must stay down, use [`ClosedPort`].
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A loopback port where nothing answers, for as long as this is held: the
/// socket is bound but never listens, so connections are refused and no
/// other test's server on port 0 can be given it (a released free port can).
pub struct ClosedPort {
    socket: Option<tokio::net::TcpSocket>,
    pub port: u16,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = socket.local_addr().unwrap().port();
        ClosedPort { socket: Some(socket), port }
    }

    /// Lets go of the port, for a test that brings the service up on it now.
    pub fn release(&mut self) -> u16 {
        self.socket = None;
        self.port
    }
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A number no other test in this run uses (team ids and the like on shared services).
pub fn unique_id() -> i64 {
    static N: AtomicU32 = AtomicU32::new(0);
    let base = (std::process::id() as i64 % 100_000) * 1_000_000 + (rand::random::<u32>() % 1000) as i64 * 1000;
    base + N.fetch_add(1, Ordering::Relaxed) as i64
}

// Stores for behavioural suites that run against both backends.

use std::sync::Arc;

use phs::config::StoreSettings;
use phs::migrate::{self, Mode, TopicLayout};
use phs::store::Store;

pub fn store_settings(database_url: Option<String>, data_dir: &std::path::Path) -> StoreSettings {
    use clap::Parser;
    #[derive(Parser)]
    struct P {
        #[command(flatten)]
        s: StoreSettings,
    }
    let mut args = vec!["x".to_string(), "--data-dir".into(), data_dir.display().to_string()];
    if let Some(url) = database_url {
        args.extend(["--database-url".into(), url]);
    }
    P::try_parse_from(args).expect("settings parse").s
}

pub const LAYOUT: TopicLayout = TopicLayout { partitions: 1, replication: 1 };

pub async fn sqlite_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let s = store_settings(None, dir.path());
    migrate::run(&s, Mode::Apply, LAYOUT).await.unwrap();
    phs::store::connect(&s).await.unwrap()
}

pub async fn postgres_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let s = store_settings(Some(fresh_postgres_db().await), dir.path());
    migrate::run(&s, Mode::Apply, LAYOUT).await.unwrap();
    phs::store::connect(&s).await.unwrap()
}
