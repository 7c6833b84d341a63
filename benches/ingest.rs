//! End-to-end ingestion benchmark: a load generator feeds `phs serve` (the
//! release binary, as its own process) and measures events/s, latency from
//! produce to processed, and the server's peak RSS.
//!
//! The load is realistic rather than friendly: 10-20 properties per event,
//! distinct ids drawn from a Zipf distribution over 10,000 users, 5% of
//! events `$identify` an anonymous id, 10% carry `$set`, and the team runs
//! one processEvent plugin (hello-world) unless `BENCH_PLUGIN=off`.
//!
//! Run with `scripts/bench ingest` (or `cargo bench --bench ingest`). Knobs:
//! `BENCH_EVENTS` (default 200000), `BENCH_PERSONS=off` (events marked
//! `$process_person_profile: false`), `BENCH_PLUGIN=off`. With DATABASE_URL
//! set, persons live in that Postgres (a fresh database is made per run);
//! events and the log stay embedded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use phs::pipeline::capture::parse::CapturedEvent;
use phs::pipeline::source::Producer;
use phs::pipeline::source::local_log::LocalLog;
use rand::{Rng, RngExt, SeedableRng};
use serde_json::json;

const USERS: usize = 10_000;
const CHUNK: usize = 1_000;

struct Knobs {
    events: usize,
    persons: bool,
    plugin: bool,
    database_url: Option<String>,
}

fn knobs() -> Knobs {
    let on = |k: &str| std::env::var(k).map(|v| v != "off").unwrap_or(true);
    Knobs {
        events: std::env::var("BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000),
        persons: on("BENCH_PERSONS"),
        plugin: on("BENCH_PLUGIN"),
        database_url: std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty()),
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
    cmd
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
    let d: PathBuf = dir.path().to_path_buf();
    if let Some(url) = knobs.database_url.clone() {
        knobs.database_url = Some(rt.block_on(fresh_database(&url)));
        run(phs(&d, &knobs).arg("migrate"));
    }
    let token = run(phs(&d, &knobs).args(["teams", "create", "bench"])).trim().to_string();
    if knobs.plugin {
        let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/lua-plugins/hello-world");
        run(phs(&d, &knobs).args(["plugins", "install", hello]));
        run(phs(&d, &knobs).args(["plugins", "enable", "Hello World", "--team", &token]));
    }
    let admin = format!("127.0.0.1:{}", free_port());
    let server = Served(
        phs(&d, &knobs)
            .arg("serve")
            .env("ADMIN_ADDR", &admin)
            .env("CAPTURE_ADDR", format!("127.0.0.1:{}", free_port()))
            .stdout(Stdio::null())
            .spawn()
            .expect("start phs serve"),
    );
    let pid = server.0.id();

    let produced = rt.block_on(async {
        let log = LocalLog::open(&d).await.expect("open the local log");
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
    let stored = rt.block_on(wait_stored(&d, knobs.events));
    let rss = peak_rss_mib(pid);
    drop(server);

    let mut lat: Vec<i64> =
        stored.iter().map(|(produced_us, created)| created.timestamp_micros() - produced_us).collect();
    lat.sort_unstable();
    let q = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    let first = stored.iter().map(|(_, c)| *c).min().unwrap();
    let last = stored.iter().map(|(_, c)| *c).max().unwrap();
    let processing = (last - first).num_microseconds().unwrap() as f64 / 1e6;
    println!(
        "ingest: {} events, persons {}, plugin {}, persons database {}",
        knobs.events,
        if knobs.persons { "on" } else { "off" },
        if knobs.plugin { "on" } else { "off" },
        if knobs.database_url.is_some() { "postgres" } else { "sqlite" }
    );
    println!(
        "  produced in               {:.2} s ({:.0} events/s into the log)",
        produced.as_secs_f64(),
        knobs.events as f64 / produced.as_secs_f64()
    );
    println!(
        "  processed at              {:.0} events/s (first to last stored event: {:.2} s)",
        knobs.events as f64 / processing.max(1e-9),
        processing
    );
    println!("  produce -> processed      p50 {:.1} ms, p99 {:.1} ms", q(0.5), q(0.99));
    println!("  peak RSS of phs serve     {rss:.0} MiB");
}

/// Waits until `n` events are stored; (produced at, processed at) of each.
async fn wait_stored(dir: &Path, n: usize) -> Vec<(i64, chrono::DateTime<chrono::Utc>)> {
    let url = format!("sqlite://{}?mode=ro", dir.join("events.sqlite3").display());
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        if let Ok(pool) = sqlx::SqlitePool::connect(&url).await {
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap_or(0);
            if count >= n as i64 {
                let rows: Vec<(i64, String)> =
                    sqlx::query_as("SELECT json_extract(properties, '$.bench_produced_us'), created_at FROM events")
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                return rows
                    .into_iter()
                    .map(|(p, c)| (p, chrono::DateTime::parse_from_rfc3339(&c).unwrap().with_timezone(&chrono::Utc)))
                    .collect();
            }
            assert!(Instant::now() < deadline, "only {count} of {n} events stored after 30 minutes");
            pool.close().await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
