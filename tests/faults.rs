//! Dependency faults (issue 16): during a steady load, one dependency
//! (Postgres, Redis, ClickHouse or the broker) goes down for PHS_FAULT_SECS
//! (12 by default; 30 is the long profile) or answers slowly, behind a fault
//! proxy, since the services are shared and must never be stopped. While it
//! lasts phs stays alive, uses little CPU (no spin), keeps its memory
//! bounded, says so in `/_health`, `/metrics`, `phs top` and a bounded
//! number of log lines naming the dependency; once it is back phs recovers
//! by itself and every acknowledged event is stored exactly once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::util::eventually::{eventually, eventually_blocking};
use crate::util::fault_proxy::{FaultProxy, Mode};
use crate::util::load::{self, Outcome};
use crate::util::own_broker::OwnBroker;
use crate::util::production::Deployment;
use crate::util::server::{Server, start, wait_healthy};
use crate::util::{clickhouse_host, fresh_postgres_db, phs, phs_ok, redis_url};

/// How long a dependency stays down or slow: PHS_FAULT_SECS, 12 s unless set.
fn fault_secs() -> Duration {
    let secs = std::env::var("PHS_FAULT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(12);
    Duration::from_secs(secs)
}

#[derive(Clone, Copy, Debug)]
enum Dep {
    Postgres,
    Redis,
    ClickHouse,
    Kafka,
}

impl Dep {
    /// The service, as `/_health`, the metrics and the log name it.
    /// Whether a batch waits on it while it is down, so `/_health` must fail (503), not only name it.
    /// A broker outage leaves phs with nothing to do: degraded (200 naming it), or 503 while polls
    /// keep failing for over PHS_HEALTH_MAX_BATCH_SECONDS; either is true.
    fn stalls_ingestion(self) -> bool {
        !matches!(self, Dep::Kafka)
    }

    fn backend(self) -> &'static str {
        match self {
            Dep::Postgres => "postgres",
            Dep::Redis => "redis",
            Dep::ClickHouse => "clickhouse",
            Dep::Kafka => "kafka",
        }
    }
}

/// `host:port` of a URL.
fn host_port(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    format!("{}:{}", u.host_str().unwrap(), u.port_or_known_default().unwrap())
}

/// A running `phs serve` with one dependency behind `proxy`, and where its events are stored.
struct Rig {
    server: Server,
    proxy: FaultProxy,
    token: String,
    stored: Stored,
    _broker: Option<OwnBroker>,
}

enum Stored {
    ClickHouse(Box<Deployment>),
    Embedded(tempfile::TempDir),
}

/// What every server of these tests gets: `/_health` turns 503 after 2 s of an outage, not 20.
const HEALTH: (&str, &str) = ("PHS_HEALTH_MAX_BATCH_SECONDS", "2");

/// A plugin whose processEvent needs Redis: it counts the events in `meta.cache` and marks each with its count.
const COUNTER: &str =
    "function processEvent(event, meta)\n  event.properties.seen = meta.cache.incr('seen')\n  return event\nend";

/// Installs [`COUNTER`] for the team of `token` with `phs` on `env`.
fn install_counter(env: &[(&'static str, String)], token: &str, dir: &std::path::Path) {
    let plugin = crate::util::embedded::plugin_dir(dir, "counter", serde_json::json!([]), COUNTER);
    phs_ok(env, &["plugins", "install", plugin.to_str().unwrap()]);
    phs_ok(env, &["plugins", "enable", "counter", "--team", token]);
}

/// A production deployment (Postgres, ClickHouse, Kafka; Redis too for `Dep::Redis`, with
/// [`COUNTER`] installed) with `dep` behind a proxy.
async fn production(dep: Dep) -> Rig {
    let mut broker = None;
    let proxy = match dep {
        Dep::Postgres => FaultProxy::start(&host_port(&crate::util::postgres_admin_url())).await,
        Dep::Redis => FaultProxy::start(&host_port(&redis_url())).await,
        Dep::ClickHouse => FaultProxy::start(&host_port(&clickhouse_host())).await,
        Dep::Kafka => {
            // The shared broker advertises its own port, which would take clients past the proxy.
            let proxy = FaultProxy::start("127.0.0.1:1").await;
            let own = OwnBroker::start(proxy.port);
            proxy.retarget(&own.address());
            broker = Some(own);
            proxy
        }
    };
    let through = format!("127.0.0.1:{}", proxy.port);
    let overrides = match dep {
        Dep::Postgres => {
            let mut url = url::Url::parse(&fresh_postgres_db().await).unwrap();
            url.set_port(Some(proxy.port)).unwrap();
            vec![("DATABASE_URL", url.to_string())]
        }
        Dep::Redis => vec![("REDIS_URL", format!("redis://{through}"))],
        Dep::ClickHouse => vec![("CLICKHOUSE_HOST", through)],
        Dep::Kafka => vec![("KAFKA_HOSTS", through)],
    };
    let d = Deployment::with(&overrides).await;
    let token = d.cli(&["teams", "create", "shop"]).trim().to_string();
    if matches!(dep, Dep::Redis) {
        install_counter(&d.env, &token, d.dir.path());
    }
    let mut env = d.env.clone();
    env.push((HEALTH.0, HEALTH.1.into()));
    let mut server = start(&env);
    wait_healthy(&mut server);
    Rig { server, proxy, token, stored: Stored::ClickHouse(Box::new(d)), _broker: broker }
}

/// An embedded server (SQLite, local log) whose cache is Redis behind a proxy.
async fn embedded_with_redis() -> Rig {
    let proxy = FaultProxy::start(&host_port(&redis_url())).await;
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("PHS_DATA_DIR", dir.path().display().to_string()),
        ("REDIS_URL", format!("redis://127.0.0.1:{}", proxy.port)),
        (HEALTH.0, HEALTH.1.into()),
    ];
    let token = phs_ok(&env, &["teams", "create", "shop"]).trim().to_string();
    install_counter(&env, &token, dir.path());
    let mut server = start(&env);
    wait_healthy(&mut server);
    Rig { server, proxy, token, stored: Stored::Embedded(dir), _broker: None }
}

impl Rig {
    /// The uuids stored once they include every one of `acked`, and how many rows hold them.
    async fn stored(&self, acked: &HashSet<String>) -> (HashSet<String>, usize) {
        match &self.stored {
            Stored::ClickHouse(d) => d.wait_for_uuids(acked).await,
            Stored::Embedded(dir) => {
                let env = [("PHS_DATA_DIR", dir.path().display().to_string())];
                eventually_blocking(Duration::from_secs(90), "every acknowledged event stored", || {
                    let out = phs_ok(&env, &["events", "list", "--json", "--limit", "1000000"]);
                    let uuids: Vec<String> = out
                        .lines()
                        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["uuid"].as_str().unwrap().into())
                        .collect();
                    let stored: HashSet<String> = uuids.iter().cloned().collect();
                    let missing = acked.difference(&stored).count();
                    if missing == 0 { Ok((stored, uuids.len())) } else { Err(format!("{missing} missing")) }
                })
            }
        }
    }

    /// The stored events that lack the mark of [`COUNTER`] (it did not run on them), as text: their
    /// `$plugins_*` properties say what happened instead.
    async fn uncounted(&self) -> Vec<String> {
        match &self.stored {
            Stored::ClickHouse(d) => {
                let client = phs::clickhouse::client(&d.settings.clickhouse).unwrap();
                let q = "SELECT properties FROM events FINAL WHERE position(properties, '\"seen\"') = 0";
                let mut uncounted = client.query(q).fetch_all::<String>().await.unwrap();
                if !uncounted.is_empty() {
                    // What the plugin's calls met instead (config 1 is the only one).
                    uncounted.push(d.cli(&["plugins", "logs", "1", "--level", "warn"]));
                }
                uncounted
            }
            Stored::Embedded(dir) => {
                let env = [("PHS_DATA_DIR", dir.path().display().to_string())];
                let out = phs_ok(&env, &["events", "list", "--json", "--limit", "1000000"]);
                let mut uncounted: Vec<String> = out
                    .lines()
                    .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                    .filter(|e| e["properties"]["seen"].is_null())
                    .map(|e| e.to_string())
                    .collect();
                if !uncounted.is_empty() {
                    // What the plugin's calls met instead (config 1 is the only one).
                    uncounted.push(phs_ok(&env, &["plugins", "logs", "1", "--level", "warn"]));
                }
                uncounted
            }
        }
    }

    fn pid(&self) -> u32 {
        self.server.child.id()
    }

    fn assert_alive(&mut self, when: &str) {
        if let Some(status) = self.server.child.try_wait().unwrap() {
            panic!("phs serve exited ({status}) {when}");
        }
    }

    async fn health(&self) -> (u16, String) {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        match client.get(format!("http://{}/_health", self.server.addr)).send().await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        }
    }

    async fn metrics(&self) -> String {
        let r = reqwest::get(format!("http://{}/metrics", self.server.addr)).await.unwrap();
        r.text().await.unwrap()
    }

    /// `phs top --once` on this server: its exit code and text.
    fn top(&self) -> (Option<i32>, String) {
        let out = phs().args(["top", "--once", "--server", &self.server.addr]).output().unwrap();
        (out.status.code(), crate::util::stdout(&out))
    }
}

/// `phs_dependency_up` of `backend` in a Prometheus text, if it is there.
fn dependency_up(metrics: &str, backend: &str) -> Option<u8> {
    dependency_metric(metrics, "up", backend).map(|v| v as u8)
}

/// The value of `phs_dependency_NAME` for `backend`, if it is there.
fn dependency_metric(metrics: &str, name: &str, backend: &str) -> Option<f64> {
    let (prefix, needle) = (format!("phs_dependency_{name}{{"), format!("backend=\"{backend}\"}}"));
    metrics.lines().find(|l| l.starts_with(&prefix) && l.contains(&needle))?.rsplit(' ').next()?.parse().ok()
}

/// What one fault did, as measured.
#[derive(Debug)]
struct Figures {
    fault: Duration,
    cpu: Duration,
    rss_before_mib: f64,
    rss_max_mib: f64,
    log_lines: usize,
    acked_before: usize,
    acked_during: usize,
    outcome: Outcome,
}

/// Runs the load, applies `fault` for [`fault_secs`], lifts it, and checks what
/// every fault must leave true. Returns the figures for the fault's own checks.
async fn under_load(rig: &mut Rig, dep: Dep, fault: Mode) -> Figures {
    let url = format!("http://{}/batch", rig.server.capture);
    let load = load::steady(&url, &rig.token, 10, Duration::from_millis(100));
    eventually(Duration::from_secs(30), "the load to be acknowledged", async || load.acked() >= 50).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (pid, backend) = (rig.pid(), dep.backend());
    let rss_before = load::rss_mib(pid);
    let (cpu_before, log_before) = (load::cpu_time(pid), rig.server.log_text().lines().count());
    let acked_before = load.acked();

    rig.proxy.set(fault);
    if fault == Mode::Down {
        rig.proxy.wait_refusing().await;
    }
    let started = Instant::now();
    let (mut rss_max, mut unhealthy, mut metric_down, mut top) = (rss_before, None, false, None);
    let mut slowest_probe = 0.0f64;
    while started.elapsed() < fault_secs() {
        rig.assert_alive(&format!("{:?} into the {backend} fault", started.elapsed()));
        rss_max = rss_max.max(load::rss_mib(pid));
        if fault == Mode::Down {
            let (code, body) = rig.health().await;
            let expected = if dep.stalls_ingestion() { code == 503 } else { code == 200 || code == 503 };
            if expected && body.contains(backend) && unhealthy.is_none() {
                unhealthy = Some(body);
                top = Some(rig.top());
            }
            metric_down |= dependency_up(&rig.metrics().await, backend) == Some(0);
        } else {
            let probe = dependency_metric(&rig.metrics().await, "probe_seconds", backend);
            slowest_probe = slowest_probe.max(probe.unwrap_or(0.0));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let fault_took = started.elapsed();
    let cpu = load::cpu_time(pid).saturating_sub(cpu_before);
    let log = rig.server.log_text();
    let during: Vec<&str> = log.lines().skip(log_before).collect();
    let acked_during = load.acked() - acked_before;
    rig.proxy.set(Mode::Pass);

    if fault == Mode::Down {
        let expected = if dep.stalls_ingestion() { "503" } else { "200 (degraded) or 503" };
        let body = unhealthy
            .unwrap_or_else(|| panic!("/_health never answered {expected} naming {backend} during the outage"));
        assert!(metric_down, "/metrics never showed phs_dependency_up{{backend=\"{backend}\"}} 0 during the outage");
        let (code, text) = top.unwrap();
        if dep.stalls_ingestion() {
            assert_eq!(code, Some(1), "phs top --once exits 1 for an unhealthy instance: {text}");
        }
        assert!(text.contains(backend), "phs top shows the {backend} outage: {text}");
        assert!(
            during.iter().any(|l| l.to_lowercase().contains(backend)),
            "the log names {backend} during the outage: {during:?}\n(/_health said {body})"
        );
    }
    if let Mode::Slow(delay) = fault {
        assert!(
            slowest_probe >= delay.as_secs_f64(),
            "phs_dependency_probe_seconds shows the slow {backend} (at most {slowest_probe} s)"
        );
    }
    // Recovery by itself: healthy again without a restart, the metric back to 1.
    eventually(Duration::from_secs(60), "/_health to answer 200 after the fault", async || {
        let (code, body) = rig.health().await;
        if code == 200 && body.contains("\"status\":\"ok\"") { Ok(()) } else { Err(format!("{code} {body}")) }
    })
    .await;
    eventually(Duration::from_secs(10), "phs_dependency_up back to 1", async || {
        dependency_up(&rig.metrics().await, backend) == Some(1)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let outcome = load.stop().await;
    rig.assert_alive("after the fault");

    let (stored, rows) = rig.stored(&outcome.acked).await;
    assert_eq!(rows, stored.len(), "an event is stored twice after the {backend} fault");
    assert!(stored.is_subset(&outcome.sent), "stored events that were never sent");
    let figures = Figures {
        fault: fault_took,
        cpu,
        rss_before_mib: rss_before,
        rss_max_mib: rss_max,
        log_lines: during.len(),
        acked_before,
        acked_during,
        outcome,
    };
    eprintln!(
        "FAULT {backend} {fault:?}: {:.1} s, acked {} before + {} during, {} acked in all, {} stored, {} requests \
         refused; CPU {:.2} s ({:.1}% of a core); RSS {:.0} -> max {:.0} MiB; {} log lines",
        figures.fault.as_secs_f64(),
        figures.acked_before,
        figures.acked_during,
        figures.outcome.acked.len(),
        stored.len(),
        figures.outcome.failed,
        figures.cpu.as_secs_f64(),
        100.0 * figures.cpu.as_secs_f64() / fault_took.as_secs_f64(),
        figures.rss_before_mib,
        figures.rss_max_mib,
        figures.log_lines,
    );
    // No spin: a loop retrying without pause would take a whole core.
    let share = cpu.as_secs_f64() / fault_took.as_secs_f64();
    assert!(share < 0.25, "phs used {share:.2} of a core during the {backend} fault: {figures:?}");
    assert!(rss_max < rss_before + 100.0, "memory grew during the {backend} fault: {figures:?}");
    // Logs without flooding: at most 2 lines a second on average (a retry backs off to 10 s).
    let per_sec = figures.log_lines as f64 / fault_took.as_secs_f64();
    assert!(per_sec <= 2.0, "{} log lines in the {backend} fault: {during:?}", figures.log_lines);
    figures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_pauses_ingestion_and_loses_nothing() {
    let mut rig = production(Dep::Postgres).await;
    let f = under_load(&mut rig, Dep::Postgres, Mode::Down).await;
    assert!(f.acked_during > 0, "capture (Kafka) accepts while Postgres is down: {f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_down_pauses_ingestion_and_loses_nothing() {
    let mut rig = production(Dep::ClickHouse).await;
    let f = under_load(&mut rig, Dep::ClickHouse, Mode::Down).await;
    assert!(f.acked_during > 0, "capture (Kafka) accepts while ClickHouse is down: {f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_down_refuses_capture_and_loses_nothing_acknowledged() {
    let mut rig = production(Dep::Kafka).await;
    under_load(&mut rig, Dep::Kafka, Mode::Down).await;
}

/// With a plugin that needs Redis, its events wait for it: nothing passes on unprocessed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_in_production_pauses_a_plugin_that_needs_it_and_loses_nothing() {
    let mut rig = production(Dep::Redis).await;
    let f = under_load(&mut rig, Dep::Redis, Mode::Down).await;
    assert!(f.acked_during > 0, "capture accepts while Redis is down: {f:?}");
    // The plugin's events waited for Redis instead of passing on without it (or disabling it).
    let uncounted = rig.uncounted().await;
    assert!(uncounted.is_empty(), "events stored without the Redis plugin having run on them: {uncounted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_embedded_pauses_a_plugin_that_needs_it_and_loses_nothing() {
    let mut rig = embedded_with_redis().await;
    let f = under_load(&mut rig, Dep::Redis, Mode::Down).await;
    assert!(f.acked_during > 0, "capture accepts while Redis is down: {f:?}");
    // The plugin's events waited for Redis instead of passing on without it (or disabling it).
    let uncounted = rig.uncounted().await;
    assert!(uncounted.is_empty(), "events stored without the Redis plugin having run on them: {uncounted:?}");
}

/// Every chunk to and from Postgres 200 ms late: slower, never wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_postgres_slows_ingestion_and_loses_nothing() {
    let mut rig = production(Dep::Postgres).await;
    let f = under_load(&mut rig, Dep::Postgres, Mode::Slow(Duration::from_millis(200))).await;
    assert!(f.acked_during > 0, "{f:?}");
}

/// Every chunk to and from ClickHouse 200 ms late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clickhouse_slows_ingestion_and_loses_nothing() {
    let mut rig = production(Dep::ClickHouse).await;
    let f = under_load(&mut rig, Dep::ClickHouse, Mode::Slow(Duration::from_millis(200))).await;
    assert!(f.acked_during > 0, "{f:?}");
}
