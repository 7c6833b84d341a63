//! Scheduled tasks and jobs shared by instances (issue 17): two `scheduler`
//! instances and two `jobs` instances on Kafka, Postgres, Redis and
//! ClickHouse. Each tick runs once in the cluster (the schedule lock), the
//! survivor takes the ticks over when the holder is killed, and every job
//! runs once while both job workers compete for the queue; after a job
//! worker's SIGKILL every job still runs (at least once: a job killed
//! between its work and its deletion runs again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::cluster::role;
use crate::util::embedded::plugin_dir;
use crate::util::eventually::eventually_blocking;
use crate::util::production::Deployment;
use crate::util::unique;

/// The scheduler's "minute" in this test.
const TICK: Duration = Duration::from_millis(300);

/// Each tick reports its id, and queues a job that reports it again.
const TICKER: &str = r#"
jobs = {
  mark = function(payload, meta)
    fetch(meta.config.url .. "/job", {method = "POST", body = payload.id})
  end,
}
function runEveryMinute(meta)
  local id = string.format("%.3f-%d", os.now(), math.random(1, 1000000000))
  -- Queued before it is reported: a scheduler killed in between leaves a job, not a tick without one.
  meta.jobs.mark({id = id}):runNow()
  fetch(meta.config.url .. "/tick", {method = "POST", body = id})
end"#;

/// What the receiver got: per path, each body with when it arrived.
type Got = Arc<Mutex<Vec<(String, String, Instant)>>>;

async fn receiver() -> (Got, String) {
    let got: Got = Arc::default();
    let app = {
        let got = got.clone();
        axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
            let got = got.clone();
            async move {
                got.lock().unwrap().push((uri.path().to_string(), body, Instant::now()));
                axum::http::StatusCode::OK
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (got, format!("http://{addr}"))
}

fn of(got: &Got, path: &str) -> Vec<(String, Instant)> {
    got.lock().unwrap().iter().filter(|(p, _, _)| p == path).map(|(_, b, at)| (b.clone(), *at)).collect()
}

/// Waits until `more` further ticks arrived.
fn ticks_go_on(got: &Got, more: usize, what: &str) {
    let from = of(got, "/tick").len();
    eventually_blocking(Duration::from_secs(30), what, || {
        let n = of(got, "/tick").len();
        if n >= from + more { Ok(()) } else { Err(n - from) }
    });
}

/// How many times each id arrived on `path`.
fn runs(got: &Got, path: &str) -> HashMap<String, usize> {
    let mut runs = HashMap::new();
    for (id, _) in of(got, path) {
        *runs.entry(id).or_default() += 1;
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_and_jobs_run_once_in_the_cluster_through_kills() {
    let d = Deployment::new().await;
    let token = d.cli(&["teams", "create", "ticks"]).trim().to_string();
    let (got, url) = receiver().await;
    let plugin = plugin_dir(d.dir.path(), "ticker", json!([{"key": "url", "type": "string"}]), TICKER);
    d.cli(&["plugins", "install", &plugin.display().to_string()]);
    d.cli(&["plugins", "config", "ticker", "--team", &token, "--set", &format!("url={url}")]);
    d.cli(&["plugins", "enable", "ticker", "--team", &token]);
    let mut env = d.env.clone();
    env.extend([
        ("PHS_PLUGIN_FETCH_ALLOW_PRIVATE", "true".to_string()),
        ("PHS_SCHEDULE_TICK_MS", TICK.as_millis().to_string()),
        ("PHS_SCHEDULE_LOCK_KEY", unique("phs_test_cluster_schedule")),
        ("SCHEDULE_LOCK_TTL", "2".to_string()),
    ]);

    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut schedulers = [role(&env, "scheduler"), role(&env, "scheduler")];
        let mut workers = [role(&env, "jobs"), role(&env, "jobs")];
        ticks_go_on(&got, 10, "ten ticks with two schedulers");

        // Phase one, nothing killed: both job workers take jobs, each exactly once.
        let ticks = of(&got, "/tick");
        eventually_blocking(Duration::from_secs(30), "the first ticks' jobs", || {
            let ran = runs(&got, "/job");
            let missing = ticks.iter().filter(|(id, _)| !ran.contains_key(id)).count();
            if missing == 0 { Ok(()) } else { Err(missing) }
        });
        let twice: Vec<_> = runs(&got, "/job").into_iter().filter(|(_, n)| *n > 1).collect();
        assert!(twice.is_empty(), "jobs ran more than once with no worker killed: {twice:?}");

        // Each scheduler killed in turn (one of them holds the lock): the other takes the ticks
        // over within the lock's 2 s.
        for (i, scheduler) in schedulers.iter_mut().enumerate() {
            let _ = scheduler.child.kill();
            scheduler.child.wait().unwrap();
            ticks_go_on(&got, 5, &format!("ticks after scheduler {i}'s SIGKILL"));
            *scheduler = role(&env, "scheduler");
        }
        // A job worker killed mid-stream: its leased jobs come back after the 30 s lease.
        let _ = workers[0].child.kill();
        workers[0].child.wait().unwrap();
        ticks_go_on(&got, 5, "ticks after a job worker's SIGKILL");
        workers[0] = role(&env, "jobs");
        ticks_go_on(&got, 3, "ticks after the restarts");
        drop(schedulers);
        let elapsed = started.elapsed();

        let ticks = of(&got, "/tick");
        eventually_blocking(Duration::from_secs(60), "every tick's job", || {
            let ran = runs(&got, "/job");
            let missing = ticks.iter().filter(|(id, _)| !ran.contains_key(id)).count();
            if missing == 0 { Ok(()) } else { Err(missing) }
        });
        drop(workers);
        // Once per tick: two schedulers running each tick would report about twice as many.
        let most = (elapsed.as_secs_f64() / TICK.as_secs_f64() * 1.15) as usize + 3;
        assert!(ticks.len() <= most, "{} ticks in {elapsed:?} of {TICK:?} ticks: some ran twice", ticks.len());
        let mut at: Vec<Instant> = ticks.iter().map(|(_, at)| *at).collect();
        at.sort();
        let close = at.windows(2).filter(|w| w[1] - w[0] < TICK / 3).count();
        assert!(
            close <= 2,
            "{close} pairs of ticks less than a third of a tick apart: some ticks ran on both schedulers"
        );
        let twice = runs(&got, "/job").values().filter(|n| **n > 1).count();
        eprintln!("{} ticks in {elapsed:.1?}; {twice} jobs ran twice (after the job worker's SIGKILL)", ticks.len());
    })
    .await
    .unwrap();
}
