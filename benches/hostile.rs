//! Hostile plugins under load, measured: how fast well-behaved teams are
//! ingested next to offenders, against a baseline measured in the same run.
//!
//! One `phs serve` (embedded) per run, on a fresh data directory with three
//! good teams (Hello World each), one team per offender of
//! `tests/fixtures/hostile/offenders.json` (the runtime's hostile set, a
//! loop, a memory bomb, a plugin near its memory limit, a capture loop, a
//! log flood, fetches held open on a server that never answers, oversized
//! values), and a backlog in the local log, produced before phs starts, as
//! the ingest bench does, in three segments: a warm-up of the good teams'
//! events (BENCH_EVENTS / 5: their plugins loaded, caches filled), the
//! baseline (BENCH_EVENTS of theirs), and the same again with the
//! offenders' events spread evenly through it. A segment's rate is its good
//! events / (its last one processed - the segment before's last one
//! processed); the ratio is offenders' segment / baseline segment. The
//! database only grows from one to the next, which weighs against the
//! offenders' segment. An offender costs its time once: the limits stop
//! each call, and three calls in a row at a limit disable it, so a longer
//! backlog spreads that cost thinner.
//!
//! `scripts/bench hostile` (BENCH_EVENTS, default 100000; BENCH_OFFENDERS=a,b
//! runs only those offenders, to see what each costs, and
//! BENCH_OFFENDERS=none runs none: the noise floor; BENCH_RUNS, default 9:
//! the medians are printed; BENCH_MODE=pairs measures the baseline in a
//! process of its own instead, alternating with the offenders' run, as
//! before session 14, which adds the two processes' differences to the
//! noise: identical pairs gave ratios from 84% to 120%). Each run also
//! prints the CPU its threads used, by thread name (the main runtime,
//! SQLite's connections, the slow lane). Only the figures are printed; the
//! tests (`tests/hostile_plugins.rs`) assert containment.

// Benchmarks and tests may panic on a failed setup step: that is their failure report.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use phs::pipeline::source::local_log::LocalLog;
use phs::wire::{CapturedEvent, Producer};
use serde_json::{Value, json};

const GOOD_TEAMS: usize = 3;
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hostile");

fn phs(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_phs"));
    for var in ["REDIS_URL", "KAFKA_HOSTS", "CLICKHOUSE_HOST", "DATABASE_URL"] {
        cmd.env_remove(var);
    }
    cmd.env("PHS_DATA_DIR", dir).env("LOG_LEVEL", "warn");
    cmd
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A team, its plugin installed from `plugin` and enabled with `config`: (id, token).
fn team_with(dir: &Path, name: &str, plugin: &Path, plugin_name: &str, config: &[String]) -> (i64, String) {
    let t: Value = serde_json::from_str(&ok(phs(dir).args(["teams", "create", name, "--json"]))).unwrap();
    let token = t["api_token"].as_str().unwrap().to_string();
    ok(phs(dir).args(["plugins", "install"]).arg(plugin));
    for value in config {
        ok(phs(dir).args(["plugins", "config", plugin_name, "--team", &token, "--set", value]));
    }
    ok(phs(dir).args(["plugins", "enable", plugin_name, "--team", &token]));
    (t["id"].as_i64().unwrap(), token)
}

/// Accepts connections and never answers (the offender `hanger` fetches from it).
fn silent_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || listener.incoming().flatten().collect::<Vec<_>>());
    format!("http://{addr}/never")
}

fn message(token: &str, event: &str, distinct_id: &str, i: usize, segment: usize) -> (String, Vec<u8>) {
    let props = json!({"$browser": "Firefox", "$current_url": "https://example.com/", "n": i, "plan": "pro",
        "segment": segment});
    let data = json!({"event": event, "distinct_id": distinct_id, "properties": props});
    let m = CapturedEvent {
        uuid: uuid::Uuid::now_v7().to_string(),
        distinct_id: distinct_id.into(),
        ip: Some("203.0.113.7".into()),
        site_url: "https://example.com".into(),
        data: data.to_string(),
        token: token.into(),
        now: chrono::Utc::now().to_rfc3339(),
        sent_at: None,
    };
    (format!("{token}:{distinct_id}"), serde_json::to_vec(&m).unwrap())
}

/// A stretch of the backlog: `events` of the good teams, with the
/// offenders' events spread through it or not.
struct Segment {
    events: usize,
    offenders: bool,
}

struct Measured {
    /// The good teams' events per second in each segment, and its seconds.
    rates: Vec<(f64, f64)>,
    disabled: usize,
    /// CPU seconds by thread, when the good teams' last event was stored.
    cpu: String,
}

/// One `phs serve` over a backlog of `segments` in order. `only`: the
/// offenders whose events go into segments that have offenders (all when empty).
fn run(segments: &[Segment], only: &[String], rt: &tokio::runtime::Runtime) -> Measured {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("lua-plugins/hello-world");
    let good: Vec<(i64, String)> =
        (0..GOOD_TEAMS).map(|g| team_with(d, &format!("good{g}"), &hello, "Hello World", &[])).collect();
    let mut offenders = Vec::new();
    if segments.iter().any(|s| s.offenders) {
        let silent = silent_server();
        let list: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/offenders.json")).unwrap()).unwrap();
        for o in &list {
            let name = o["plugin"].as_str().unwrap();
            if !only.is_empty() && !only.iter().any(|x| x == name) {
                continue;
            }
            let plugin = d.join(name.replace(' ', "-"));
            std::fs::create_dir_all(&plugin).unwrap();
            let manifest = json!({"name": name, "config": o.get("schema").cloned().unwrap_or(json!([]))});
            std::fs::write(plugin.join("plugin.json"), manifest.to_string()).unwrap();
            std::fs::copy(format!("{FIXTURES}/{}", o["file"].as_str().unwrap()), plugin.join("index.lua")).unwrap();
            let config: Vec<String> = o["config"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap().replace("{silent}", &silent)))
                .collect();
            let (_, token) = team_with(d, name, &plugin, name, &config);
            let events: Vec<String> =
                o["events"].as_array().unwrap().iter().map(|e| e.to_string().replace('"', "")).collect();
            offenders.push((token, events));
        }
    }
    // The backlog: good events round robin over the teams, each offender's
    // spread evenly through the segments that have them.
    let n: usize = segments.iter().map(|s| s.events).sum();
    let mut backlog: Vec<(String, Vec<u8>)> = Vec::with_capacity(n + 100);
    for (k, segment) in segments.iter().enumerate() {
        let m = segment.events;
        for i in 0..m {
            let (_, token) = &good[i % GOOD_TEAMS];
            backlog.push(message(token, "$pageview", &format!("user-{}", i % 1000), i, k));
            for (token, events) in offenders.iter().filter(|_| segment.offenders) {
                let every = m / (events.len() + 1);
                if i % every == every - 1
                    && let Some(e) = events.get(i / every)
                {
                    backlog.push(message(token, e, "offender", i, k));
                }
            }
        }
    }
    rt.block_on(async {
        let log = LocalLog::open(d).await.unwrap();
        for chunk in backlog.chunks(1000) {
            log.append(chunk).await.unwrap();
        }
    });

    let mut serve = phs(d)
        .arg("serve")
        .env("ADMIN_ADDR", "127.0.0.1:0")
        .env("CAPTURE_ADDR", "127.0.0.1:0")
        .env("PHS_PLUGIN_FETCH_ALLOW_PRIVATE", "true")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let ids: Vec<String> = good.iter().map(|(id, _)| id.to_string()).collect();
    let (done, first) = rt.block_on(wait_good(d, &ids.join(","), n));
    let cpu = cpu_by_thread(serve.id());
    let _ = serve.kill();
    let _ = serve.wait();
    let listed: Value = serde_json::from_str(&ok(phs(d).args(["plugins", "list", "--json"]))).unwrap();
    let disabled = listed["configs"].as_array().unwrap().iter().filter(|c| c["enabled"] == false).count();
    let rates = if segments.len() == 1 {
        let secs = (done - first).num_microseconds().unwrap() as f64 / 1e6;
        vec![(n as f64 / secs, secs)]
    } else {
        rt.block_on(segment_rates(d, &ids.join(","), segments, first))
    };
    Measured { rates, disabled, cpu }
}

/// Each segment's good events per second, from when the last good event
/// of the segment before it was processed (or the first event, for the
/// first) to when its own last one was (`created_at`, set as an event
/// leaves its plugins).
async fn segment_rates(
    d: &Path,
    teams: &str,
    segments: &[Segment],
    first: chrono::DateTime<chrono::Utc>,
) -> Vec<(f64, f64)> {
    let url = format!("sqlite://{}?mode=ro", d.join("events.sqlite3").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let last = format!(
        "SELECT max(created_at) FROM events WHERE team_id IN ({teams}) AND json_extract(properties, '$.segment') = ?"
    );
    let mut from = first;
    let mut out = Vec::new();
    for (k, segment) in segments.iter().enumerate() {
        let at: String =
            sqlx::query_scalar(sqlx::AssertSqlSafe(last.clone())).bind(k as i64).fetch_one(&pool).await.unwrap();
        let at = chrono::DateTime::parse_from_rfc3339(&at).unwrap().with_timezone(&chrono::Utc);
        let secs = (at - from).num_microseconds().unwrap() as f64 / 1e6;
        out.push((segment.events as f64 / secs, secs));
        from = at;
    }
    out
}

/// The CPU seconds process `pid`'s threads have used, by thread name
/// (numbered pool threads counted together): where a run's time went.
fn cpu_by_thread(pid: u32) -> String {
    let mut by: std::collections::BTreeMap<String, f64> = Default::default();
    let ticks = 100.0; // USER_HZ, as /proc reports times in
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid ...: utime and stime are the 12th and 13th fields after the comm.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = stat[open + 1..close].trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
        let fields: Vec<f64> = stat[close + 2..].split(' ').map(|f| f.parse().unwrap_or(0.0)).collect();
        *by.entry(name.to_string()).or_default() += (fields[11] + fields[12]) / ticks;
    }
    by.iter().filter(|(_, s)| **s >= 0.05).map(|(name, s)| format!("{name} {s:.1}")).collect::<Vec<_>>().join(", ")
}

/// Polls until `n` events of the good teams are stored: when that was seen,
/// and when phs stored its first event. Each poll counts only the rows
/// stored since the last one (by rowid), on one connection: counting the
/// whole table every 50 ms took a fifth of a core by the end of a long
/// run, and made the figures noisier.
async fn wait_good(d: &Path, teams: &str, n: usize) -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    let url = format!("sqlite://{}?mode=ro", d.join("events.sqlite3").display());
    let deadline = Instant::now() + Duration::from_secs(1800);
    let newer = format!("SELECT max(rowid), coalesce(sum(team_id IN ({teams})), 0) FROM events WHERE rowid > ?");
    let (mut pool, mut last, mut stored) = (None, 0i64, 0i64);
    loop {
        if pool.is_none() {
            pool = sqlx::SqlitePool::connect(&url).await.ok();
        }
        if let Some(p) = &pool
            && let Ok((max, good)) = sqlx::query_as::<_, (Option<i64>, i64)>(sqlx::AssertSqlSafe(newer.clone()))
                .bind(last)
                .fetch_one(p)
                .await
        {
            last = max.unwrap_or(last);
            stored += good;
            if stored >= n as i64 {
                let done = chrono::Utc::now();
                let first: String =
                    sqlx::query_scalar("SELECT min(created_at) FROM events").fetch_one(p).await.unwrap();
                return (done, chrono::DateTime::parse_from_rfc3339(&first).unwrap().with_timezone(&chrono::Utc));
            }
        }
        assert!(Instant::now() < deadline, "only {stored} of {n} good events stored after 30 minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn main() {
    let n = std::env::var("BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    // BENCH_OFFENDERS=spinner,hanger: only these (to see what each costs).
    let only: Vec<String> = std::env::var("BENCH_OFFENDERS")
        .map(|v| v.split(',').filter(|s| !s.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    let runs = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(9usize).max(1);
    let which = if only.is_empty() { "every offender".to_string() } else { only.join(", ") };
    let pairs = std::env::var("BENCH_MODE").is_ok_and(|m| m == "pairs");
    let none = only.iter().any(|o| o == "none");
    println!("hostile plugins ({which}): {n} events of {GOOD_TEAMS} good teams (Hello World), local log -> SQLite");
    let (mut baseline, mut hostile) = (Vec::new(), Vec::new());
    for i in 1..=runs {
        if pairs {
            let b = run(&[Segment { events: n, offenders: false }], &only, &rt);
            let h = run(&[Segment { events: n, offenders: !none }], &only, &rt);
            let ((br, bs), (hr, hs)) = (b.rates[0], h.rates[0]);
            println!(
                "  run {i}: baseline {br:.0} events/s ({bs:.2} s), next to the offenders {hr:.0} events/s ({hs:.2} s), \
                 {} offender configs disabled, ratio {:.1}%",
                h.disabled,
                100.0 * hr / br
            );
            println!("    cpu s, baseline: {}; next to the offenders: {}", b.cpu, h.cpu);
            baseline.push(br);
            hostile.push(hr);
        } else {
            // A warm-up (plugins loaded, caches filled), then the baseline, then the offenders' segment.
            let segments = [
                Segment { events: n / 5, offenders: false },
                Segment { events: n, offenders: false },
                Segment { events: n, offenders: !none },
            ];
            let m = run(&segments, &only, &rt);
            let ((br, bs), (hr, hs)) = (m.rates[1], m.rates[2]);
            println!(
                "  run {i}: baseline {br:.0} events/s ({bs:.2} s), then next to the offenders {hr:.0} events/s \
                 ({hs:.2} s), {} offender configs disabled, ratio {:.1}%",
                m.disabled,
                100.0 * hr / br
            );
            println!("    cpu s, whole run: {}", m.cpu);
            baseline.push(br);
            hostile.push(hr);
        }
    }
    let ratios: Vec<f64> = baseline.iter().zip(&hostile).map(|(b, h)| 100.0 * h / b).collect();
    let (b, h) = (median(&mut baseline), median(&mut hostile));
    println!("  median of {runs}: baseline {b:.0} events/s, next to the offenders {h:.0} events/s");
    println!("  ratio of the medians     {:.1}%", 100.0 * h / b);
    let (lo, hi) = ratios.iter().fold((f64::MAX, f64::MIN), |(l, u), r| (l.min(*r), u.max(*r)));
    println!("  median of the ratios     {:.1}% (runs {lo:.1}-{hi:.1}%)", median(&mut ratios.clone()));
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}
