//! The async side on Kafka, measured: how fast an `async` instance hands
//! stored events to a plugin's onEvent (one `fetch` per event) and to its
//! exportEvents (one `fetch` per batch), each to a receiver in this process.
//!
//! For each hook: a fresh Postgres database and topic prefix, `phs migrate`,
//! one team with one plugin that has only that hook, and a backlog of
//! BENCH_EVENTS stored events (`clickhouse_events_json` rows, about 500
//! bytes each) produced to `phs_async_events` before phs starts. Then
//! `phs serve` (the release binary, PLUGIN_SERVER_MODE=async) drains it.
//! The figure is events / (first to last event the receiver got); phs's
//! CPU per event is reported beside it. The receiver shares the machine.
//!
//! `scripts/bench async` (BENCH_EVENTS, default 100000; BENCH_HOOK=onEvent
//! or exportEvents runs one; other phs settings such as
//! PHS_ON_EVENT_CONCURRENCY pass through).

// Benchmarks and tests may panic on a failed setup step: that is their failure report.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

const PLANS: [&str; 3] = ["free", "pro", "team"];

const ON_EVENT: &str = r#"
function onEvent(event, meta)
  fetch(meta.config.url .. "/on_event", {method = "POST", body = event.uuid})
end"#;

const EXPORT_EVENTS: &str = r#"
function exportEvents(events, meta)
  local ids = {}
  for i, e in ipairs(events) do ids[i] = e.uuid end
  fetch(meta.config.url .. "/export", {method = "POST", body = json.encode(ids)})
end"#;

/// Events the receiver got, and when the first and the last arrived.
#[derive(Default)]
struct Received {
    events: usize,
    first: Option<Instant>,
    last: Option<Instant>,
}

async fn receiver() -> (Arc<Mutex<Received>>, String) {
    let got: Arc<Mutex<Received>> = Arc::default();
    let app = {
        let got = got.clone();
        axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
            let got = got.clone();
            async move {
                let n = match uri.path() {
                    "/export" => serde_json::from_str::<Vec<String>>(&body).map_or(0, |ids| ids.len()),
                    _ => 1,
                };
                let mut got = got.lock().unwrap();
                got.events += n;
                got.first.get_or_insert_with(Instant::now);
                got.last = Some(Instant::now());
                axum::http::StatusCode::OK
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (got, format!("http://{addr}"))
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run `scripts/bench async`"))
}

fn phs(env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_phs"));
    cmd.env_remove("REDIS_URL").env_remove("CLICKHOUSE_HOST").env("LOG_LEVEL", "warn");
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    cmd
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

async fn fresh_database(admin: &str, name: &str) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
    let mut url = url::Url::parse(admin).unwrap();
    url.set_path(name);
    url.to_string()
}

/// The `i`th stored event of team 1, as ingestion writes it to the topic.
fn stored_event(i: usize) -> (String, Vec<u8>) {
    let uuid = uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | i as u128).to_string();
    let properties = json!({
        "$browser": "Firefox", "$os": "Linux", "$current_url": format!("https://shop.example/p/{}", i % 97),
        "$lib": "bench", "plan": PLANS[i % 3], "n": i, "price": i as f64 / 7.0,
        "$ip": "203.0.113.7", "$set": {"seen": i}, "utm_source": "newsletter",
    });
    let row = json!({
        "uuid": uuid, "event": "$pageview", "properties": properties.to_string(),
        "timestamp": "2026-12-01 10:00:00.000000", "team_id": 1, "distinct_id": format!("user{}", i % 5000),
        "elements_chain": "", "created_at": "2026-12-01 10:00:01.000000", "person_mode": "propertyless",
    });
    (uuid, row.to_string().into_bytes())
}

async fn produce(hosts: &str, topic: &str, n: usize) {
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", hosts)
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .create()
        .unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        let messages: Vec<(String, Vec<u8>)> = chunk.iter().map(|&i| stored_event(i)).collect();
        let sends = messages.iter().map(|(key, payload)| {
            producer.send(FutureRecord::to(topic).key(key).payload(payload), Duration::from_secs(30))
        });
        for sent in futures_util::future::join_all(sends).await {
            sent.map_err(|(e, _)| e).unwrap();
        }
    }
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

async fn run(hook: &str, n: usize) {
    let id = format!("{}_{}", std::process::id(), rand::random::<u32>() % 1_000_000);
    let work = tempfile::tempdir().unwrap();
    let prefix = format!("bench_{id}_");
    let env = vec![
        ("DATABASE_URL", fresh_database(&var("DATABASE_URL"), &format!("bench_async_{id}")).await),
        ("KAFKA_HOSTS", var("KAFKA_HOSTS")),
        ("KAFKA_PREFIX", prefix.clone()),
        ("KAFKA_CONSUMER_GROUP", format!("bench_{id}")),
        ("PHS_DATA_DIR", work.path().display().to_string()),
        ("PHS_PLUGIN_FETCH_ALLOW_PRIVATE", "true".into()),
    ];
    ok(phs(&env).arg("migrate"));
    let team: Value = serde_json::from_str(&ok(phs(&env).args(["teams", "create", "bench", "--json"]))).unwrap();
    assert_eq!(team["id"], 1, "the backlog is team 1's");
    let token = team["api_token"].as_str().unwrap().to_string();
    let plugin = work.path().join("hook");
    std::fs::create_dir_all(&plugin).unwrap();
    let schema = json!([{"key": "url", "type": "string", "required": true}]);
    std::fs::write(plugin.join("plugin.json"), json!({"name": "hook", "config": schema}).to_string()).unwrap();
    std::fs::write(plugin.join("index.lua"), if hook == "onEvent" { ON_EVENT } else { EXPORT_EVENTS }).unwrap();
    let (got, url) = receiver().await;
    ok(phs(&env).args(["plugins", "install"]).arg(&plugin));
    ok(phs(&env).args(["plugins", "config", "hook", "--team", &token, "--set", &format!("url={url}")]));
    ok(phs(&env).args(["plugins", "enable", "hook", "--team", &token]));

    produce(&var("KAFKA_HOSTS"), &format!("{prefix}{}", phs::kafka::ASYNC_EVENTS_TOPIC), n).await;
    let mut server = phs(&env)
        .arg("serve")
        .env("PLUGIN_SERVER_MODE", "async")
        .env("ADMIN_ADDR", "127.0.0.1:0")
        .env("CAPTURE_ADDR", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if got.lock().unwrap().events >= n {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "{hook}: only {} of {n} after 15 minutes",
            got.lock().unwrap().events
        );
        assert!(server.try_wait().unwrap().is_none(), "phs serve exited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = cpu_seconds(server.id());
    let _ = server.kill();
    let _ = server.wait();
    let got = got.lock().unwrap();
    let took = got.last.unwrap() - got.first.unwrap();
    println!(
        "{hook:<12} {n} events in {:.2} s: {:.0} events/s; phs CPU {:.1} µs/event; first after {:.2} s",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        cpu * 1e6 / n as f64,
        (got.first.unwrap() - started).as_secs_f64(),
    );
}

fn main() {
    let n: usize = std::env::var("BENCH_EVENTS").ok().map_or(100_000, |v| v.parse().unwrap());
    let hooks = match std::env::var("BENCH_HOOK") {
        Ok(h) => vec![h],
        Err(_) => vec!["onEvent".to_string(), "exportEvents".to_string()],
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    for hook in hooks {
        assert!(["onEvent", "exportEvents"].contains(&hook.as_str()), "BENCH_HOOK={hook}: onEvent or exportEvents");
        rt.block_on(run(&hook, n));
    }
}
