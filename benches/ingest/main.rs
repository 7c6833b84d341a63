//! End-to-end ingestion benchmark: a load generator feeds `phs serve` (the
//! release binary, as its own process or processes) and measures its
//! events/s, CPU per event and peak RSS.
//!
//! The load is realistic rather than friendly (`load.rs`): 10-20 properties
//! per event, distinct ids drawn from a Zipf distribution over 10,000 users,
//! 5% of events `$identify` an anonymous id, 10% carry `$set`, and the team
//! runs one processEvent plugin (hello-world) unless `BENCH_PLUGIN=off`.
//!
//! What is measured: by default the whole load is produced first and
//! `phs serve` starts only then, so it drains a backlog on a machine the
//! load generator no longer shares. The figure is phs's own throughput:
//! events / (time from the first event phs processed to the moment the
//! bench sees the last one stored). The bench polls the store every 50 ms,
//! so the figure is low by at most that much; the startup before the first
//! event (joining the group, connecting) is reported separately.
//! `BENCH_LIVE=on` produces while phs consumes instead, as fast as the
//! generator can, and reports produce -> processed; `BENCH_RATE=N` produces
//! at N events/s while phs consumes and reports produce -> stored of one
//! event in 100 (a probe the bench looks for in the store every 50 ms).
//!
//! Run with `scripts/bench ingest` (or `cargo bench --bench ingest`). Knobs:
//! - `BENCH_EVENTS` (200000);
//! - `BENCH_PERSONS=off` (events marked `$process_person_profile: false`);
//! - `BENCH_PLUGIN=off`, or `BENCH_CONFIGS=N`: N copies of Hello World enabled per team (1);
//! - `BENCH_TEAMS=N` (1): events spread uniformly over N teams;
//! - `BENCH_USERS=N` (10000) and `BENCH_SPREAD=uniform` (Zipf by default);
//! - `BENCH_INSTANCES=N` (1): N `phs serve` in one consumer group (production only);
//! - `BENCH_LIVE=on`, `BENCH_RATE=N` (above);
//! - `BENCH_REPLAY=on` (time `phs replay` dry runs over the backlog instead; `scripts/bench replay`);
//! - `BENCH_KEEP_DIR=DIR` (the data directory, kept);
//! - any other phs setting passes through to `phs serve` (e.g. `WORKER_CONCURRENCY`).
//!
//! With DATABASE_URL set, persons live in that Postgres (a fresh database is
//! made per run). With KAFKA_HOSTS and CLICKHOUSE_HOST set as well
//! (`scripts/bench ingest production`), events are produced to the Kafka
//! topic and stored in ClickHouse (a fresh topic prefix and database per
//! run); otherwise the log and the events stay embedded.

// Benchmarks and tests may panic on a failed setup step: that is their failure report.
#![allow(clippy::unwrap_used)]

mod load;
mod measure;
mod setup;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use phs::config::StoreSettings;
use phs::pipeline::source::local_log::LocalLog;
use phs::pipeline::source::producer::KafkaProducer;
use phs::wire::Producer;
use rand::SeedableRng;

use load::{Load, Users};
use measure::{Events, Probes};

const CHUNK: usize = 1_000;
/// One event in this many is a probe when producing at a rate.
const PROBE_EVERY: usize = 100;

struct Knobs {
    events: usize,
    persons: bool,
    /// Hello World copies enabled per team (0: no plugin).
    configs: usize,
    teams: usize,
    users: usize,
    uniform: bool,
    instances: usize,
    /// Produce while phs consumes (latency), instead of a backlog produced first.
    live: bool,
    /// With `live`: produce at this many events/s (None: as fast as possible).
    rate: Option<f64>,
    /// Time `phs replay` dry runs over the backlog instead of `phs serve`.
    replay: bool,
    database_url: Option<String>,
    /// Kafka and ClickHouse, with this run's topic prefix, group and database.
    production: Option<[(&'static str, String); 5]>,
}

fn knobs() -> Knobs {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let on = |k: &str| var(k).is_none_or(|v| v != "off");
    let number = |k: &str, default: usize| {
        var(k).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{k} must be a whole number, not {v:?}")))
    };
    let rate = var("BENCH_RATE").map(|v| v.parse::<f64>().expect("BENCH_RATE is events per second"));
    Knobs {
        events: number("BENCH_EVENTS", 200_000),
        persons: on("BENCH_PERSONS"),
        configs: if on("BENCH_PLUGIN") { number("BENCH_CONFIGS", 1) } else { 0 },
        teams: number("BENCH_TEAMS", 1).max(1),
        users: number("BENCH_USERS", 10_000).max(1),
        uniform: var("BENCH_SPREAD").is_some_and(|v| v == "uniform"),
        instances: number("BENCH_INSTANCES", 1).max(1),
        live: rate.is_some() || var("BENCH_LIVE").is_some_and(|v| v == "on"),
        rate,
        replay: var("BENCH_REPLAY").is_some_and(|v| v == "on"),
        database_url: var("DATABASE_URL"),
        production: match (var("KAFKA_HOSTS"), var("CLICKHOUSE_HOST")) {
            (Some(kafka), Some(clickhouse)) => {
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

/// The settings `phs serve` gets, for the bench's own setup, producer and queries.
fn settings(dir: &Path, knobs: &Knobs) -> StoreSettings {
    use clap::Parser;
    #[derive(Parser)]
    struct P {
        #[command(flatten)]
        s: StoreSettings,
    }
    let mut args = vec!["x".to_string(), "--data-dir".into(), dir.display().to_string()];
    if let Some(url) = &knobs.database_url {
        args.extend(["--database-url".into(), url.clone()]);
    }
    for (k, v) in knobs.production.iter().flatten() {
        args.extend([format!("--{}", k.to_lowercase().replace('_', "-")), v.clone()]);
    }
    P::try_parse_from(args).expect("settings parse").s
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run phs");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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

/// One `phs serve`, killed when dropped.
struct Served {
    child: Child,
    admin: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(d: &Path, knobs: &Knobs) -> Served {
    let admin = format!("127.0.0.1:{}", free_port());
    let child = phs(d, knobs)
        .arg("serve")
        .env("ADMIN_ADDR", &admin)
        .env("CAPTURE_ADDR", format!("127.0.0.1:{}", free_port()))
        .stdout(Stdio::null())
        .spawn()
        .expect("start phs serve");
    Served { child, admin }
}

fn main() {
    let mut knobs = knobs();
    assert!(
        knobs.instances == 1 || knobs.production.is_some(),
        "BENCH_INSTANCES above 1 needs the production mode (Kafka shares the partitions)"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // BENCH_KEEP_DIR: the data directory is made there and kept, to profile against it afterwards.
    let d: PathBuf = match std::env::var("BENCH_KEEP_DIR") {
        Ok(keep) => {
            std::fs::create_dir_all(&keep).unwrap();
            PathBuf::from(keep)
        }
        Err(_) => dir.path().join("data"),
    };
    if let Some(url) = knobs.database_url.clone() {
        knobs.database_url = Some(rt.block_on(fresh_database(&url)));
    }
    run(phs(&d, &knobs).arg("migrate"));
    let settings = settings(&d, &knobs);
    let setup_started = Instant::now();
    let tokens = rt.block_on(setup::teams_and_plugins(&settings, dir.path(), knobs.teams, knobs.configs));
    let setup_secs = setup_started.elapsed().as_secs_f64();
    let users = if knobs.uniform { Users::uniform(knobs.users) } else { Users::zipf(knobs.users) };
    let load = Load { tokens, users, persons: knobs.persons };
    let production = knobs.production.is_some().then_some(&settings);

    let started = chrono::Utc::now();
    let mut services_before = measure::SERVICES.map(measure::cpu_seconds_of);
    let live: Vec<Served> =
        if knobs.live && !knobs.replay { (0..knobs.instances).map(|_| serve(&d, &knobs)).collect() } else { vec![] };
    let probes = Probes::default();
    let producing = Arc::new(AtomicBool::new(true));
    let follower = knobs.rate.map(|_| {
        let events = rt.block_on(Events::open(&d, production));
        let (probes, producing) = (probes.clone(), producing.clone());
        rt.spawn(async move { probes.follow(events, producing).await })
    });

    let produced = rt.block_on(produce(&d, production, &load, &knobs, &probes));
    producing.store(false, Ordering::Relaxed);
    if knobs.replay {
        return replay(&d, &knobs, production.is_some(), produced);
    }
    if live.is_empty() {
        services_before = measure::SERVICES.map(measure::cpu_seconds_of);
    }
    let servers = if live.is_empty() { (0..knobs.instances).map(|_| serve(&d, &knobs)).collect() } else { live };
    let events = rt.block_on(Events::open(&d, production));
    let (done, stored) = rt.block_on(measure::wait_stored(&events, knobs.events));
    if let Some(f) = follower {
        rt.block_on(f).unwrap();
    }
    let rss: Vec<f64> = servers.iter().map(|s| measure::peak_rss_mib(s.child.id())).collect();
    let cpu: f64 = servers.iter().map(|s| measure::cpu_seconds(s.child.id())).sum();
    let services: Vec<String> = measure::SERVICES
        .iter()
        .zip(services_before)
        .map(|(name, before)| format!("{name} {:.2}", measure::cpu_seconds_of(name) - before))
        .collect();
    let stages = rt.block_on(measure::stage_seconds(&servers[0].admin));
    drop(servers);

    let first = stored.iter().map(|(_, c)| *c).min().unwrap();
    let processing = (done - first).num_microseconds().unwrap() as f64 / 1e6;
    println!(
        "ingest: {} events, persons {}, {} Hello World config(s) per team, {} team(s), {} {} users, \
         persons database {}, {}, {} instance(s), {}",
        knobs.events,
        if knobs.persons { "on" } else { "off" },
        knobs.configs,
        knobs.teams,
        knobs.users,
        if knobs.uniform { "uniform" } else { "Zipf" },
        if knobs.database_url.is_some() { "postgres" } else { "sqlite" },
        if production.is_some() { "Kafka -> ClickHouse" } else { "local log -> SQLite" },
        knobs.instances,
        match (knobs.live, knobs.rate) {
            (_, Some(r)) => format!("produced at {r:.0} events/s while phs consumes"),
            (true, None) => "produced while phs consumes".into(),
            _ => "a backlog produced before phs starts".into(),
        },
    );
    println!("  teams and plugins set up  {setup_secs:.2} s");
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
    // Cold starts (a team's first event loads its plugins) weigh on the first events: the second
    // half's rate is the steady one. By processing time, as rows carry when they were processed.
    let mut processed: Vec<i64> = stored.iter().map(|(_, c)| c.timestamp_micros()).collect();
    processed.sort_unstable();
    let half = processed.len() / 2;
    let second_half = (done.timestamp_micros() - processed[half]) as f64 / 1e6;
    println!(
        "  second half processed at  {:.0} events/s ({:.2} s)",
        (processed.len() - half) as f64 / second_half.max(1e-9),
        second_half
    );
    println!("  phs serve start to first  {:.2} s", (first - started).num_microseconds().unwrap() as f64 / 1e6);
    if knobs.live {
        let mut lat: Vec<i64> =
            stored.iter().map(|(produced_us, created)| created.timestamp_micros() - produced_us).collect();
        lat.sort_unstable();
        let q = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
        println!("  produce -> processed      p50 {:.1} ms, p99 {:.1} ms", q(0.5), q(0.99));
    }
    if knobs.rate.is_some() {
        let (n, lost, p50, p99, max) = probes.latencies();
        println!(
            "  produce -> stored         p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms ({n} probes, {lost} never seen)"
        );
    }
    let rss: Vec<String> = rss.iter().map(|r| format!("{r:.0}")).collect();
    println!("  peak RSS of phs serve     {} MiB", rss.join(" + "));
    println!(
        "  CPU of phs serve          {cpu:.2} s in all, {:.1} µs per event (start-up included)",
        cpu * 1e6 / knobs.events as f64
    );
    println!("  CPU of the services       {} s (while phs ran)", services.join(", "));
    let stages: Vec<String> = stages.iter().map(|(stage, secs)| format!("{stage} {secs:.2}")).collect();
    println!("  seconds in stages         {}", stages.join(", "));
}

/// Produces the load into the log or topic: as fast as the log takes it, or
/// at `knobs.rate`, when one event in [`PROBE_EVERY`] is a probe.
async fn produce(
    d: &Path,
    production: Option<&StoreSettings>,
    load: &Load,
    knobs: &Knobs,
    probes: &Probes,
) -> Duration {
    let log: Box<dyn Producer> = match production {
        Some(s) => Box::new(KafkaProducer::new(&s.kafka).expect("a Kafka producer")),
        None => Box::new(LocalLog::open(d).await.expect("open the local log")),
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let start = Instant::now();
    let mut sent = 0;
    while sent < knobs.events {
        let due = match knobs.rate {
            // Whatever is due by now, in chunks of at most CHUNK; a late append is caught up next round.
            Some(rate) => {
                let due = (start.elapsed().as_secs_f64() * rate) as usize;
                if due <= sent {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                due.min(knobs.events) - sent
            }
            None => knobs.events - sent,
        };
        let n = CHUNK.min(due);
        let now_us = chrono::Utc::now().timestamp_micros();
        let chunk: Vec<_> = (0..n)
            .map(|i| {
                let e = load.event(&mut rng, now_us);
                if knobs.rate.is_some() && (sent + i) % PROBE_EVERY == 0 {
                    probes.sent(e.uuid, now_us);
                }
                (e.key, e.payload)
            })
            .collect();
        log.append(&chunk).await.expect("append to the log");
        sent += n;
    }
    start.elapsed()
}

/// `phs replay` dry runs over the backlog: with only the summary printed
/// (the engine's rate) and with every event's diff printed to /dev/null.
fn replay(d: &Path, knobs: &Knobs, kafka: bool, produced: Duration) {
    println!(
        "replay: {} events, {} Hello World config(s), from {} (produced in {:.2} s)",
        knobs.events,
        knobs.configs,
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
