//! End-to-end ingestion benchmark: a load generator feeds `phs serve` (the
//! release binary, as its own process) and measures its events/s, and the
//! server's peak RSS.
//!
//! The load is realistic rather than friendly: 10-20 properties per event,
//! distinct ids drawn from a Zipf distribution over 10,000 users, 5% of
//! events `$identify` an anonymous id, 10% carry `$set`, and the team runs
//! one processEvent plugin (hello-world) unless `BENCH_PLUGIN=off`.
//!
//! What is measured: by default the whole load is produced first and
//! `phs serve` starts only then, so it drains a backlog on a machine the
//! load generator no longer shares. The figure is phs's own throughput:
//! events / (time from the first event phs processed to the moment the
//! bench sees the last one stored). The bench polls the store every 50 ms,
//! so the figure is low by at most that much; the startup before the first
//! event (joining the group, connecting) is reported separately.
//! `BENCH_LIVE=on` produces while phs consumes instead, and also reports the
//! produce -> processed latency; its rate is then bounded by the load
//! generator's, which competes with phs for the same cores.
//!
//! Run with `scripts/bench ingest` (or `cargo bench --bench ingest`). Knobs:
//! `BENCH_EVENTS` (default 200000), `BENCH_PERSONS=off` (events marked
//! `$process_person_profile: false`), `BENCH_PLUGIN=off`, `BENCH_LIVE=on`,
//! `BENCH_REPLAY=on` (time `phs replay` dry runs over the backlog instead;
//! `scripts/bench replay`), `BENCH_KEEP_DIR=DIR` (the data directory, kept).
//! With DATABASE_URL set, persons live in that Postgres (a fresh database is
//! made per run). With KAFKA_HOSTS and CLICKHOUSE_HOST set as well
//! (`scripts/bench ingest production`), events are produced to the Kafka
//! topic and stored in ClickHouse (a fresh topic prefix and database per
//! run); otherwise the log and the events stay embedded.

// Benchmarks and tests may panic on a failed setup step: that is their failure report.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use phs::config::StoreSettings;
use phs::pipeline::source::local_log::LocalLog;
use phs::pipeline::source::producer::KafkaProducer;
use phs::wire::CapturedEvent;
use phs::wire::Producer;
use rand::{Rng, RngExt, SeedableRng};
use serde_json::json;

const USERS: usize = 10_000;
const CHUNK: usize = 1_000;

struct Knobs {
    events: usize,
    persons: bool,
    plugin: bool,
    /// Produce while phs consumes (latency), instead of a backlog produced first.
    live: bool,
    /// Time `phs replay` dry runs over the backlog instead of `phs serve`.
    replay: bool,
    database_url: Option<String>,
    /// Kafka and ClickHouse, with this run's topic prefix, group and database.
    production: Option<[(&'static str, String); 5]>,
}

fn knobs() -> Knobs {
    let on = |k: &str| std::env::var(k).map(|v| v != "off").unwrap_or(true);
    Knobs {
        events: std::env::var("BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000),
        persons: on("BENCH_PERSONS"),
        plugin: on("BENCH_PLUGIN"),
        live: std::env::var("BENCH_LIVE").is_ok_and(|v| v == "on"),
        replay: std::env::var("BENCH_REPLAY").is_ok_and(|v| v == "on"),
        database_url: std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty()),
        production: match (std::env::var("KAFKA_HOSTS"), std::env::var("CLICKHOUSE_HOST")) {
            (Ok(kafka), Ok(clickhouse)) if !kafka.is_empty() && !clickhouse.is_empty() => {
                let run = format!("bench_{}", std::process::id());
                Some([
                    ("KAFKA_HOSTS", kafka),
                    ("KAFKA_PREFIX", format!("{run}_")),
                    ("KAFKA_CONSUMER_GROUP", run.clone()),
                    ("CLICKHOUSE_HOST", clickhouse),
                    ("CLICKHOUSE_DATABASE", run),
                ])
            }
            _ => None,
        },
    }
}

/// Zipf(s = 1.1) over `n` ranks by inverse CDF: a few users send most events.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Zipf {
        let weights: Vec<f64> = (1..=n).map(|k| 1.0 / (k as f64).powf(1.1)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        Zipf {
            cdf: weights
                .iter()
                .map(|w| {
                    acc += w / total;
                    acc
                })
                .collect(),
        }
    }

    fn sample(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.random();
        self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1)
    }
}

fn event(rng: &mut impl Rng, zipf: &Zipf, token: &str, knobs: &Knobs, now_us: i64) -> (String, Vec<u8>) {
    const BROWSERS: &[&str] = &["Chrome", "Firefox", "Safari", "Edge"];
    const PAGES: &[&str] = &["/", "/pricing", "/docs", "/blog/launch", "/signup", "/app/dashboard"];
    let user = zipf.sample(rng);
    let distinct_id = format!("user-{user}");
    let mut props = json!({
        "$browser": BROWSERS[rng.random_range(0..BROWSERS.len())],
        "$os": "Mac OS X",
        "$current_url": format!("https://example.com{}", PAGES[rng.random_range(0..PAGES.len())]),
        "$lib": "web",
        "$lib_version": "1.130.0",
        "$screen_width": 1920,
        "$screen_height": 1080,
        "$session_id": format!("s-{user}-{}", rng.random_range(0..4)),
        "price": rng.random_range(0..10_000) as f64 / 100.0,
        "plan": if rng.random_bool(0.3) { "pro" } else { "free" },
        "bench_produced_us": now_us,
    });
    let extra = rng.random_range(0..9);
    for i in 0..extra {
        props[format!("attr_{i}")] = json!(rng.random_range(0..1000));
    }
    if !knobs.persons {
        props["$process_person_profile"] = json!(false);
    }
    let name = if rng.random_bool(0.05) {
        props["$anon_distinct_id"] = json!(format!("anon-{}", rng.random_range(0..USERS * 10)));
        "$identify"
    } else {
        "$pageview"
    };
    if rng.random_bool(0.10) {
        props["$set"] = json!({"last_plan": props["plan"].clone(), "visits": rng.random_range(0..100)});
    }
    let data = json!({"event": name, "distinct_id": distinct_id, "properties": props});
    let captured = CapturedEvent {
        uuid: uuid::Uuid::now_v7().to_string(),
        distinct_id: distinct_id.clone(),
        ip: Some("203.0.113.7".into()),
        site_url: "https://example.com".into(),
        data: data.to_string(),
        token: token.to_string(),
        now: chrono::Utc::now().to_rfc3339(),
        sent_at: None,
    };
    (format!("{token}:{distinct_id}"), serde_json::to_vec(&captured).unwrap())
}

fn phs(dir: &Path, knobs: &Knobs) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_phs"));
    for var in ["REDIS_URL", "KAFKA_HOSTS", "CLICKHOUSE_HOST", "DATABASE_URL"] {
        cmd.env_remove(var);
    }
    cmd.env("PHS_DATA_DIR", dir).env("LOG_LEVEL", "warn");
    if let Some(url) = &knobs.database_url {
        cmd.env("DATABASE_URL", url);
    }
    for (k, v) in knobs.production.iter().flatten() {
        cmd.env(k, v);
    }
    cmd
}

/// The settings `phs serve` gets in production mode, for the bench's own producer and queries.
fn production_settings(env: &[(&'static str, String)]) -> StoreSettings {
    use clap::Parser;
    #[derive(Parser)]
    struct P {
        #[command(flatten)]
        s: StoreSettings,
    }
    let args = env.iter().flat_map(|(k, v)| [format!("--{}", k.to_lowercase().replace('_', "-")), v.clone()]);
    P::try_parse_from(std::iter::once("x".to_string()).chain(args)).expect("settings parse").s
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run phs");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Peak resident memory of a process (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU seconds (user + system) a process has used so far: how much work
/// phs did, which a machine shared with other load does not inflate the way
/// it inflates wall-clock time.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name, in parentheses, may hold spaces: count from after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // The state is field 3 of the file and index 0 here: utime (14) and stime (15) are 11 and 12.
    let ticks = field(11) + field(12);
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}

/// A fresh database on the given server, so runs do not see each other's persons.
async fn fresh_database(url: &str) -> String {
    use sqlx::Connection;
    let name = format!("phs_bench_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect to DATABASE_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(&mut conn).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
    let mut u = url::Url::parse(url).unwrap();
    u.set_path(&name);
    u.to_string()
}

struct Served(Child);
impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let mut knobs = knobs();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // BENCH_KEEP_DIR: the data directory is made there and kept, to profile against it afterwards.
    let d: PathBuf = match std::env::var("BENCH_KEEP_DIR") {
        Ok(keep) => {
            std::fs::create_dir_all(&keep).unwrap();
            PathBuf::from(keep)
        }
        Err(_) => dir.path().to_path_buf(),
    };
    if let Some(url) = knobs.database_url.clone() {
        knobs.database_url = Some(rt.block_on(fresh_database(&url)));
    }
    if knobs.database_url.is_some() || knobs.production.is_some() {
        run(phs(&d, &knobs).arg("migrate"));
    }
    let production = knobs.production.as_ref().map(|env| production_settings(env));
    let token = run(phs(&d, &knobs).args(["teams", "create", "bench"])).trim().to_string();
    if knobs.plugin {
        let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/lua-plugins/hello-world");
        run(phs(&d, &knobs).args(["plugins", "install", hello]));
        run(phs(&d, &knobs).args(["plugins", "enable", "Hello World", "--team", &token]));
    }
    let serve = || {
        let admin = format!("127.0.0.1:{}", free_port());
        let child = phs(&d, &knobs)
            .arg("serve")
            .env("ADMIN_ADDR", &admin)
            .env("CAPTURE_ADDR", format!("127.0.0.1:{}", free_port()))
            .stdout(Stdio::null())
            .spawn()
            .expect("start phs serve");
        (Served(child), chrono::Utc::now(), admin)
    };
    let live = (knobs.live && !knobs.replay).then(serve);

    let produced = rt.block_on(async {
        let log: Box<dyn Producer> = match &production {
            Some(s) => Box::new(KafkaProducer::new(&s.kafka).expect("a Kafka producer")),
            None => Box::new(LocalLog::open(&d).await.expect("open the local log")),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let zipf = Zipf::new(USERS);
        let start = Instant::now();
        let mut sent = 0;
        while sent < knobs.events {
            let n = CHUNK.min(knobs.events - sent);
            let now_us = chrono::Utc::now().timestamp_micros();
            let chunk: Vec<_> = (0..n).map(|_| event(&mut rng, &zipf, &token, &knobs, now_us)).collect();
            log.append(&chunk).await.expect("append to the log");
            sent += n;
        }
        start.elapsed()
    });
    if knobs.replay {
        return replay(&d, &knobs, production.is_some(), produced);
    }
    let (server, started, admin) = live.unwrap_or_else(serve);
    let pid = server.0.id();
    let (done, stored) = match &production {
        Some(s) => rt.block_on(wait_stored_clickhouse(s, knobs.events)),
        None => rt.block_on(wait_stored(&d, knobs.events)),
    };
    let rss = peak_rss_mib(pid);
    let cpu = cpu_seconds(pid);
    let stages = rt.block_on(stage_seconds(&admin));
    drop(server);

    let first = stored.iter().map(|(_, c)| *c).min().unwrap();
    let processing = (done - first).num_microseconds().unwrap() as f64 / 1e6;
    println!(
        "ingest: {} events, persons {}, plugin {}, persons database {}, {}, {}",
        knobs.events,
        if knobs.persons { "on" } else { "off" },
        if knobs.plugin { "on" } else { "off" },
        if knobs.database_url.is_some() { "postgres" } else { "sqlite" },
        if production.is_some() { "Kafka -> ClickHouse" } else { "local log -> SQLite" },
        if knobs.live { "produced while phs consumes" } else { "a backlog produced before phs starts" },
    );
    println!(
        "  produced in               {:.2} s ({:.0} events/s into the log)",
        produced.as_secs_f64(),
        knobs.events as f64 / produced.as_secs_f64()
    );
    println!(
        "  processed at              {:.0} events/s (first event processed to all stored: {:.2} s)",
        knobs.events as f64 / processing.max(1e-9),
        processing
    );
    println!("  phs serve start to first  {:.2} s", (first - started).num_microseconds().unwrap() as f64 / 1e6);
    if knobs.live {
        let mut lat: Vec<i64> =
            stored.iter().map(|(produced_us, created)| created.timestamp_micros() - produced_us).collect();
        lat.sort_unstable();
        let q = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
        println!("  produce -> processed      p50 {:.1} ms, p99 {:.1} ms", q(0.5), q(0.99));
    }
    println!("  peak RSS of phs serve     {rss:.0} MiB");
    println!(
        "  CPU of phs serve          {cpu:.2} s in all, {:.1} µs per event (start-up included)",
        cpu * 1e6 / knobs.events as f64
    );
    let stages: Vec<String> = stages.iter().map(|(stage, secs)| format!("{stage} {secs:.2}")).collect();
    println!("  seconds in stages         {}", stages.join(", "));
}

/// `phs replay` dry runs over the backlog: with only the summary printed
/// (the engine's rate) and with every event's diff printed to /dev/null.
fn replay(d: &Path, knobs: &Knobs, kafka: bool, produced: Duration) {
    println!(
        "replay: {} events, plugin {}, from {} (produced in {:.2} s)",
        knobs.events,
        if knobs.plugin { "hello-world" } else { "none" },
        if kafka { "the Kafka topic" } else { "the local log" },
        produced.as_secs_f64()
    );
    for (label, args) in [
        ("summary only (--quiet)", &["--quiet"][..]),
        ("every event printed", &[][..]),
        ("every event as --json", &["--json"][..]),
    ] {
        let started = Instant::now();
        let out = phs(d, knobs)
            .args(["replay", "--from-beginning", "--offline", "--color", "never"])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("run phs replay");
        assert!(out.success(), "phs replay failed");
        let secs = started.elapsed().as_secs_f64();
        println!("  {label:<26} {:.0} events/s ({secs:.2} s, start-up included)", knobs.events as f64 / secs);
    }
}

/// Seconds phs spent in each pipeline stage (its `/metrics` histogram sums):
/// where the time went. Per-message stages overlap when keys run concurrently,
/// batches overlap (one is written while the next is processed), and `poll`
/// and `batch` include the overflow pipeline's waits on its empty topic.
async fn stage_seconds(admin: &str) -> Vec<(String, f64)> {
    let text = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .and_then(|r| r.error_for_status())
        .expect("read phs's /metrics")
        .text()
        .await
        .expect("read phs's /metrics");
    text.lines()
        .filter_map(|l| l.strip_prefix("phs_stage_duration_seconds_sum{stage=\""))
        .filter_map(|l| {
            let (stage, rest) = l.split_once('"')?;
            Some((stage.to_string(), rest.trim_start_matches('}').trim().parse().ok()?))
        })
        .filter(|(_, secs)| *secs > 0.0)
        .collect()
}

/// How often the bench looks at the store's count: the bound on how late it sees the last event.
const POLL: Duration = Duration::from_millis(50);

type Stored = (chrono::DateTime<chrono::Utc>, Vec<(i64, chrono::DateTime<chrono::Utc>)>);

/// Waits until `n` events are stored: when the bench saw them all, and
/// (produced at, processed at) of each.
async fn wait_stored(dir: &Path, n: usize) -> Stored {
    let url = format!("sqlite://{}?mode=ro", dir.join("events.sqlite3").display());
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        if let Ok(pool) = sqlx::SqlitePool::connect(&url).await {
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap_or(0);
            if count >= n as i64 {
                let done = chrono::Utc::now();
                let rows: Vec<(i64, String)> =
                    sqlx::query_as("SELECT json_extract(properties, '$.bench_produced_us'), created_at FROM events")
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                return (
                    done,
                    rows.into_iter()
                        .map(|(p, c)| {
                            (p, chrono::DateTime::parse_from_rfc3339(&c).unwrap().with_timezone(&chrono::Utc))
                        })
                        .collect(),
                );
            }
            assert!(Instant::now() < deadline, "only {count} of {n} events stored after 30 minutes");
            pool.close().await;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Like [`wait_stored`], from ClickHouse (18.16 has `visitParamExtractInt`, not the JSON functions).
async fn wait_stored_clickhouse(s: &StoreSettings, n: usize) -> Stored {
    let client = phs::clickhouse::client(&s.clickhouse).expect("CLICKHOUSE_HOST is set");
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        // No FINAL while waiting: a benchmark run redelivers nothing, and FINAL would slow ingestion down.
        let count: u64 = client.query("SELECT count() FROM events").fetch_one().await.unwrap_or(0);
        if count >= n as u64 {
            let done = chrono::Utc::now();
            let rows: Vec<(i64, i64)> = client
                .query("SELECT visitParamExtractInt(properties, 'bench_produced_us'), created_at_us FROM events FINAL")
                .fetch_all()
                .await
                .expect("read the stored events");
            return (
                done,
                rows.into_iter().map(|(p, c)| (p, chrono::DateTime::from_timestamp_micros(c).unwrap())).collect(),
            );
        }
        assert!(Instant::now() < deadline, "only {count} of {n} events stored after 30 minutes");
        tokio::time::sleep(POLL).await;
    }
}
