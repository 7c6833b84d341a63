//! A cluster on Kafka (issue 17): two ingestion instances and one async
//! instance share the work through their consumer groups while the load
//! runs, and one ingestion instance and the async one are each killed with
//! SIGKILL once and restarted. Every event is stored once, persons agree,
//! onEvent, exportEvents and jobs saw every event, the job queue never held
//! an `$events` job (the hand-off went through Kafka), and both ingestion
//! instances took partitions.

use std::time::Duration;

use super::load::{Profile, Receiver, Target, send_all};
use super::{checks, install};
use crate::util::eventually::{eventually, eventually_blocking};
use crate::util::production::Deployment;
use crate::util::server::{Server, start, wait_healthy};

/// A `phs serve` in PLUGIN_SERVER_MODE `mode`, healthy.
pub(super) fn role(env: &[(&'static str, String)], mode: &str) -> Server {
    let mut env = env.to_vec();
    env.push(("PLUGIN_SERVER_MODE", mode.into()));
    let mut server = start(&env);
    wait_healthy(&mut server);
    server
}

/// SIGKILL (a second kill of a dead child is harmless), then the same role again.
fn kill_and_restart(server: &mut Server, env: &[(&'static str, String)], mode: &str) {
    let _ = server.child.kill();
    server.child.wait().unwrap();
    *server = role(env, mode);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ingestion_instances_and_an_async_one_share_the_work_through_kills() {
    let p = Profile::from_env();
    let d = Deployment::new().await;
    let token = d.cli(&["teams", "create", "cluster"]).trim().to_string();
    let (receiver, url) = Receiver::start().await;
    install(&|args| d.cli(args), d.dir.path(), &token, &url);
    // Until the async instance's kill, export buffers flush only when full or 10 minutes old, which
    // the run never reaches: what the killed instance buffered must come back from the topic.
    let buffers = |seconds: &str, bytes: &str| {
        let (seconds, bytes) =
            (format!("exportEventsBufferSeconds={seconds}"), format!("exportEventsBufferBytes={bytes}"));
        d.cli(&["plugins", "config", "torture", "--team", &token, "--set", &seconds, "--set", &bytes]);
    };
    buffers("600", "100000000");
    let mut env = d.env.clone();
    env.push(("PHS_PLUGIN_FETCH_ALLOW_PRIVATE", "true".into()));
    let logs = tempfile::tempdir().unwrap();
    let first_log = logs.path().join("ingestion-a.log");
    let mut ingest_a = crate::util::server::start_logged(
        &[env.clone(), vec![("PLUGIN_SERVER_MODE", "ingestion".into())]].concat(),
        &first_log,
    );
    wait_healthy(&mut ingest_a);
    let ingest_b = role(&env, "ingestion");
    let mut worker = role(&env, "async");

    let load = tokio::spawn({
        let (target, token) = (Target::Kafka(Box::new(d.producer())), token.clone());
        let p = Profile::from_env();
        async move { send_all(target, token, &p).await }
    });
    // The async instance is killed a quarter into onEvent's calls, while its export buffers hold
    // every event it read; an ingestion instance half-way through.
    let on_event = |share: usize| {
        let (receiver, watched) = (receiver.clone(), p.events / 100);
        move || {
            let what = format!("1/{share} of the watched events through onEvent");
            eventually_blocking(Duration::from_secs(120), &what, || {
                let got = receiver.on_event.lock().unwrap().len();
                if got >= watched / share { Ok(()) } else { Err(got) }
            })
        }
    };
    let (after_a_quarter, after_half) = (on_event(4), on_event(2));
    let (ingest_a, worker) = tokio::task::spawn_blocking({
        let env = env.clone();
        let short_buffers = d.env.clone();
        let token = token.clone();
        move || {
            after_a_quarter();
            worker.child.kill().unwrap();
            worker.child.wait().unwrap();
            let set = ["exportEventsBufferSeconds=2", "exportEventsBufferBytes=1000000"];
            crate::util::phs_ok(
                &short_buffers,
                &["plugins", "config", "torture", "--team", &token, "--set", set[0], "--set", set[1]],
            );
            kill_and_restart(&mut worker, &env, "async");
            after_half();
            kill_and_restart(&mut ingest_a, &env, "ingestion");
            (ingest_a, worker)
        }
    })
    .await
    .unwrap();
    load.await.unwrap();

    checks::clickhouse_events(&d, p.events).await;
    checks::persons_agree(&d, &token).await;
    checks::hooks_saw_everything(&receiver, p.events).await;

    // The hand-off went through the topic: the job queue holds no `$events` job. (Plugin jobs an
    // onEvent run again after the kill queued anew may still be waiting: they are not hand-offs.)
    let database = d.env.iter().find(|(k, _)| *k == "DATABASE_URL").unwrap().1.clone();
    let pg = sqlx::PgPool::connect(&database).await.unwrap();
    let handoffs: i64 = sqlx::query_scalar("SELECT count(*) FROM phs_plugin_job WHERE name = $1")
        .bind(phs::plugins::delivery::EVENTS_JOB)
        .fetch_one(&pg)
        .await
        .unwrap();
    assert_eq!(handoffs, 0, "`$events` jobs in the queue");
    // The first ingestion instance, before its kill, shared the partitions with the other.
    let before_kill = std::fs::read_to_string(&first_log).unwrap();
    assert!(
        before_kill.lines().any(|l| l.contains("kafka partitions assigned") && l.contains("events_plugin_ingestion")),
        "the first ingestion instance never took partitions: {before_kill}"
    );
    assert!(ingest_b.log_text().contains("kafka partitions assigned"), "the second ingestion instance took none");
    assert!(!ingest_b.log_text().contains("phs_async_events"), "an ingestion instance joined the async group");
    assert!(worker.log_text().contains("phs_async_events"), "the async instance never read the stored-events topic");
    drop((ingest_a, ingest_b, worker));
}

/// The finer modes split the async side over instances: onEvent and
/// exportEvents each read the stored-events topic in a group of their own
/// (so both see every event), and a `jobs` instance runs the jobs onEvent
/// queues. A `scheduler` instance is not needed for this plugin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_side_split_over_instances_sees_every_event() {
    let p = Profile { events: 2_000, rate: 2_000, kills: 0 };
    let d = Deployment::new().await;
    let token = d.cli(&["teams", "create", "split"]).trim().to_string();
    let (receiver, url) = Receiver::start().await;
    install(&|args| d.cli(args), d.dir.path(), &token, &url);
    let mut env = d.env.clone();
    env.push(("PHS_PLUGIN_FETCH_ALLOW_PRIVATE", "true".into()));
    let servers: Vec<Server> =
        ["ingestion", "async-onevent", "async-exports", "jobs"].iter().map(|mode| role(&env, mode)).collect();
    send_all(Target::Kafka(Box::new(d.producer())), token.clone(), &p).await;
    checks::clickhouse_events(&d, p.events).await;
    checks::hooks_saw_everything(&receiver, p.events).await;
    for (server, mode) in servers.iter().zip(["ingestion", "async-onevent", "async-exports", "jobs"]) {
        assert!(server.log_text().contains("no capture endpoint") != (mode == "ingestion"), "{mode}");
        if mode == "jobs" {
            continue; // It reads no topic.
        }
        // Each consumer's partitions and lag are in its /_snapshot (and so in `phs top`), caught up.
        let topic = if mode.starts_with("async") { "phs_async_events" } else { "events_plugin_ingestion" };
        let url = format!("http://{}/_snapshot", server.addr);
        let lags = eventually(Duration::from_secs(30), &format!("{mode}'s {topic} lag at 0"), async || {
            let snapshot: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
            let lags: Vec<i64> = snapshot["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["topic"].as_str().unwrap().ends_with(topic))
                .map(|p| p["lag"].as_i64().unwrap())
                .collect();
            if !lags.is_empty() && lags.iter().all(|l| *l == 0) {
                Ok(lags)
            } else {
                Err(snapshot["partitions"].clone())
            }
        })
        .await;
        assert_eq!(lags.len(), 8, "{mode}: {lags:?}");
    }
    drop(servers);
}
