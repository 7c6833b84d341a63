//! Crash loops (issue 16's crash safety): events stream in at a steady rate
//! while `phs serve` is stopped again and again (SIGKILL, or SIGTERM) at
//! random points and restarted. Afterwards every event is stored exactly
//! once, persons and distinct ids agree between Postgres and ClickHouse,
//! and onEvent, exportEvents and jobs saw every event they should.
//!
//! CI runs the short profile (20,000 events, 3 stops each); `scripts/torture`
//! runs 1,000,000 events with 5 stops through the same tests. `soak` holds a
//! steady load and watches the server's resources. `cluster` and `schedule`
//! share the work over several `phs serve` instances (issue 17).

mod checks;
mod cluster;
mod load;
mod schedule;
mod soak;

use std::time::Duration;

use rand::RngExt;

use self::load::{PLUGIN, Profile, Receiver, Target, send_all};
use crate::util::embedded::plugin_dir;
use crate::util::production::Deployment;
use crate::util::server::{Server, sigterm, start, wait_exit, wait_healthy};

#[derive(Clone, Copy, PartialEq)]
enum Stop {
    Kill,
    Term,
}

/// Installs the torture plugin for the team through `cli`, reporting to `url`.
fn install(cli: &dyn Fn(&[&str]) -> String, dir: &std::path::Path, token: &str, url: &str) {
    let schema = serde_json::json!([{"key": "url", "type": "string", "required": true},
                                     {"key": "exportEventsBufferSeconds", "type": "string"},
                                     {"key": "exportEventsBufferBytes", "type": "string"}]);
    let plugin = plugin_dir(dir, "torture", schema, PLUGIN);
    cli(&["plugins", "install", &plugin.display().to_string()]);
    let url = format!("url={url}");
    cli(&["plugins", "config", "torture", "--team", token, "--set", &url, "--set", "exportEventsBufferSeconds=2"]);
    cli(&["plugins", "enable", "torture", "--team", token]);
}

/// Stops the server `p.kills` times at random points while the load runs,
/// restarting it each time (publishing its new capture address); returns the
/// last server, healthy.
fn stop_loop(
    env: Vec<(&'static str, String)>,
    first: Server,
    p: &Profile,
    how: Stop,
    capture: Option<std::sync::Arc<std::sync::Mutex<String>>>,
) -> (Server, u32) {
    let mut server = first;
    let mut rng = rand::rng();
    let span = p.duration().as_secs_f64().max(2.0);
    let mut stops = 0;
    for _ in 0..p.kills {
        // Spread the stops over the load; each server lives at least a second after it is healthy.
        let pause = rng.random_range(1.0..(span / p.kills as f64).max(1.5));
        std::thread::sleep(Duration::from_secs_f64(pause));
        match how {
            Stop::Kill => {
                server.child.kill().unwrap();
                server.child.wait().unwrap();
            }
            Stop::Term => {
                sigterm(&server.child);
                let status = wait_exit(&mut server, Duration::from_secs(60));
                assert!(status.success(), "the drain after SIGTERM ends cleanly: {status}");
            }
        }
        stops += 1;
        server = start(&env);
        wait_healthy(&mut server);
        if let Some(c) = &capture {
            *c.lock().unwrap() = server.capture.clone();
        }
    }
    (server, stops)
}

async fn production_crash_loop(how: Stop) {
    let p = Profile::from_env();
    let d = Deployment::new().await;
    let token = d.cli(&["teams", "create", "torture"]).trim().to_string();
    let (receiver, url) = Receiver::start().await;
    install(&|args| d.cli(args), d.dir.path(), &token, &url);
    let mut env = d.env.clone();
    env.push(("PHS_PLUGIN_FETCH_ALLOW_PRIVATE", "true".into()));
    let mut server = start(&env);
    wait_healthy(&mut server);

    let load = tokio::spawn({
        let (target, token) = (Target::Kafka(Box::new(d.producer())), token.clone());
        let p = Profile::from_env();
        async move { send_all(target, token, &p).await }
    });
    let (server, stops) = {
        let (env, p) = (env.clone(), Profile::from_env());
        tokio::task::spawn_blocking(move || stop_loop(env, server, &p, how, None)).await.unwrap()
    };
    load.await.unwrap();
    assert_eq!(stops as usize, p.kills);

    let stored = checks::clickhouse_events(&d, p.events).await;
    if how == Stop::Term {
        assert_eq!(stored.rows, p.events as u64, "rows without FINAL: a batch was written twice across a SIGTERM");
    }
    checks::persons_agree(&d, &token).await;
    checks::hooks_saw_everything(&receiver, p.events).await;
    drop(server);
}

/// SIGKILL at random points, with persons on Postgres and events in ClickHouse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_survives_a_sigkill_loop() {
    production_crash_loop(Stop::Kill).await;
}

/// SIGTERM at random points: the same, and no event is written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_survives_a_sigterm_loop_without_duplicates() {
    production_crash_loop(Stop::Term).await;
}

/// SIGKILL at random points, embedded: events through the capture endpoint
/// (the SDK's retries resend what was not acknowledged), stored in SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_survives_a_sigkill_loop() {
    let p = Profile::from_env();
    let dir = tempfile::tempdir().unwrap();
    let env =
        vec![("PHS_DATA_DIR", dir.path().display().to_string()), ("PHS_PLUGIN_FETCH_ALLOW_PRIVATE", "true".into())];
    let cli = |args: &[&str]| crate::util::phs_ok(&env, args);
    let token = cli(&["teams", "create", "torture"]).trim().to_string();
    let (receiver, url) = Receiver::start().await;
    install(&cli, dir.path(), &token, &url);
    let mut server = start(&env);
    wait_healthy(&mut server);

    let capture = std::sync::Arc::new(std::sync::Mutex::new(server.capture.clone()));
    let load = tokio::spawn({
        let (target, token) = (Target::Capture(capture.clone()), token.clone());
        async move { send_all(target, token, &Profile::from_env()).await }
    });
    let (server, _) = {
        let env = env.clone();
        tokio::task::spawn_blocking(move || stop_loop(env, server, &Profile::from_env(), Stop::Kill, Some(capture)))
            .await
            .unwrap()
    };
    load.await.unwrap();
    checks::sqlite_events(dir.path(), p.events).await;
    checks::hooks_saw_everything(&receiver, p.events).await;
    drop(server);
}
