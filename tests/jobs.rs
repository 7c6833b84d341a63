//! The durable job queue on both backends, `meta.jobs`, `RetryError`, the
//! VM calls of the async hooks, and the scheduler's lock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use phs::plugins::logs::MemoryLog;
use phs::plugins::{CallError, Context, Limits, PluginSource, PluginVm};
use phs::store::memory::MemoryJobs;
use phs::store::{JobQueue, NewJob, NewTeam, Store};
use serde_json::json;

use crate::util::eventually::eventually;
use crate::util::{postgres_store, sqlite_store};

async fn config_for(store: &Arc<dyn Store>, name: &str) -> (i64, i64) {
    let team = store.create_team(NewTeam { name: name.into(), anonymize_ips: false, api_token: None }).await.unwrap();
    let plugin = store
        .install_plugin(&phs::store::NewPlugin {
            name: name.into(),
            description: None,
            url: None,
            config_schema: json!([]),
            capabilities: json!({}),
            files: vec![("index.lua".into(), "-- empty".into())],
        })
        .await
        .unwrap();
    (team.id, store.plugin_config(team.id, plugin.id).await.unwrap().id)
}

fn job(team_id: i64, config_id: i64, name: &str, in_ms: i64) -> NewJob {
    NewJob {
        team_id,
        plugin_config_id: config_id,
        name: name.into(),
        payload: json!({"n": name}),
        attempt: 0,
        run_at: Utc::now() + chrono::Duration::milliseconds(in_ms),
    }
}

async fn job_queue_behaves(store: Arc<dyn Store>) {
    let (team, config) = config_for(&store, "jobs").await;
    let lease = Duration::from_millis(400);
    store
        .enqueue_jobs(&[job(team, config, "later", 60_000), job(team, config, "b", -10), job(team, config, "a", -20)])
        .await
        .unwrap();
    assert_eq!(store.pending_jobs(Some(config)).await.unwrap(), 3);
    assert_eq!(store.pending_jobs(Some(config + 1000)).await.unwrap(), 0);

    // Only due jobs, oldest first, with their payloads.
    let claimed = store.claim_jobs(Utc::now(), lease, 10).await.unwrap();
    let names: Vec<&str> = claimed.iter().map(|j| j.spec.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(claimed[0].spec.payload, json!({"n": "a"}));
    assert_eq!((claimed[0].spec.team_id, claimed[0].spec.plugin_config_id, claimed[0].spec.attempt), (team, config, 0));

    // A leased job is hidden until its lease ends, then comes back (its worker died).
    assert!(store.claim_jobs(Utc::now(), lease, 10).await.unwrap().is_empty());
    store.finish_job(claimed[0].id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let again = store.claim_jobs(Utc::now(), lease, 10).await.unwrap();
    assert_eq!(again.iter().map(|j| j.spec.name.as_str()).collect::<Vec<_>>(), ["b"], "finished jobs stay finished");
    store.finish_job(again[0].id).await.unwrap();

    // A heartbeat keeps a held job hidden past its first lease; the job it does not extend comes back.
    store.enqueue_jobs(&[job(team, config, "held", -5), job(team, config, "dropped", -4)]).await.unwrap();
    let pair = store.claim_jobs(Utc::now(), lease, 10).await.unwrap();
    assert_eq!(pair.iter().map(|j| j.spec.name.as_str()).collect::<Vec<_>>(), ["held", "dropped"]);
    store.extend_leases(&[pair[0].id], Utc::now(), Duration::from_secs(60)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let back = store.claim_jobs(Utc::now(), lease, 10).await.unwrap();
    assert_eq!(
        back.iter().map(|j| j.spec.name.as_str()).collect::<Vec<_>>(),
        ["dropped"],
        "the held job stayed hidden"
    );
    for j in pair {
        store.finish_job(j.id).await.unwrap();
    }

    // The future job is due when its time comes.
    let later = store.claim_jobs(Utc::now() + chrono::Duration::minutes(2), lease, 10).await.unwrap();
    assert_eq!(later.len(), 1);
    store.finish_job(later[0].id).await.unwrap();
    assert_eq!(store.pending_jobs(None).await.unwrap(), 0);

    // Claimers racing over the same jobs never get the same one.
    let many: Vec<NewJob> = (0..60).map(|i| job(team, config, &format!("j{i}"), -1)).collect();
    store.enqueue_jobs(&many).await.unwrap();
    let mut handles = Vec::new();
    for _ in 0..6 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = s.claim_jobs(Utc::now(), Duration::from_secs(60), 4).await.unwrap();
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!((n, all.len()), (60, 60), "a job was claimed twice or lost");

    // Removing the plugin removes its jobs.
    let plugin = store.list_plugins().await.unwrap()[0].id;
    store.remove_plugin(plugin).await.unwrap();
    assert_eq!(store.pending_jobs(None).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_queue_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    job_queue_behaves(sqlite_store(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_queue_postgres() {
    let dir = tempfile::tempdir().unwrap();
    job_queue_behaves(postgres_store(&dir).await).await;
}

#[test]
fn jobs_migrations_are_in_step() {
    let columns = |sql: &str| -> Vec<String> {
        sql.lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("--") && !l.starts_with("CREATE") && !l.starts_with(')') && !l.is_empty())
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    };
    let pg = columns(include_str!("../migrations/postgres/0002_jobs.sql"));
    let lite = columns(include_str!("../migrations/sqlite/0002_jobs.sql"));
    assert!(pg.len() >= 9, "{pg:?}");
    assert_eq!(pg, lite);
}

// The VM side, with an in-memory queue.

fn vm_with(code: &str, jobs: Arc<MemoryJobs>, logs: Arc<MemoryLog>) -> PluginVm {
    let source = PluginSource::new(
        phs::plugins::Manifest::parse(r#"{"name": "async"}"#).unwrap(),
        BTreeMap::from([("index.lua".to_string(), code.to_string())]),
    )
    .unwrap();
    let ctx = Context {
        team_id: 3,
        plugin_id: 4,
        plugin_config_id: 5,
        config: Default::default(),
        cache: Arc::new(phs::cache::memory::MemoryCache::default()),
        storage: Arc::new(phs::store::memory::MemoryStorage::default()),
        jobs,
        logs,
        capture: None,
        fetch: Default::default(),
        attachments: Vec::new(),
        geoip: None,
    };
    let limits = Limits {
        memory: 16 * 1024 * 1024,
        process_event: Duration::from_millis(200),
        process_event_wall: Duration::from_secs(2),
        on_event: Duration::from_millis(300),
        task_cpu: Duration::from_secs(2),
        task: Duration::from_secs(2),
    };
    PluginVm::load(&source, ctx, limits).unwrap()
}

#[tokio::test]
async fn retry_error_is_recognised_and_other_errors_are_not() {
    let vm = vm_with(
        r#"function onEvent(event, meta)
             if event.event == "retry" then error(RetryError("rate limited")) end
             if event.event == "plain" then error("boom") end
             if event.event == "spin" then while true do end end
             if event.event == "caught" then
               local ok, e = pcall(error, RetryError("inner"))
               assert(not ok)
               meta.global.caught = tostring(e)
             end
           end
           function exportEvents(events, meta) error(RetryError("export " .. #events)) end"#,
        Arc::default(),
        Arc::default(),
    );
    assert_eq!(vm.capabilities().methods, ["onEvent", "exportEvents"]);
    let on = |name: &str| json!({"event": name, "properties": {}});
    assert_eq!(vm.on_event(&on("retry")).await, Err(CallError::Retry("rate limited".into())));
    match vm.on_event(&on("plain")).await {
        Err(CallError::Plugin { message }) => assert!(message.contains("boom"), "{message}"),
        other => panic!("expected a plugin error, got {other:?}"),
    }
    // onEvent has its own, short limit.
    assert!(matches!(vm.on_event(&on("spin")).await, Err(CallError::TimeLimit(t)) if t == Duration::from_millis(300)));
    vm.on_event(&on("caught")).await.unwrap();
    vm.on_event(&on("fine")).await.unwrap();
    let events = vec![on("a"), on("b")];
    assert_eq!(vm.export_events(&events).await, Err(CallError::Retry("export 2".into())));
}

#[tokio::test]
async fn meta_jobs_enqueue_with_run_now_in_and_at() {
    let jobs = Arc::new(MemoryJobs::default());
    let vm = vm_with(
        r#"jobs = {
             greet = function(payload, meta) meta.global.greeted = payload.who end,
             fail = function(payload, meta) error("job failed on purpose") end,
           }
           function runEveryMinute(meta)
             meta.jobs.greet({who = "now"}):runNow()
             meta.jobs.greet({who = "in"}):runIn(2, "minutes")
             meta.jobs.greet({who = "in1"}).runIn(1, "second")
             meta.jobs.greet({who = "at"}):runAt(os.time() + 3600)
             meta.jobs.greet({who = "iso"}):runAt("2030-01-01T00:00:00Z")
             meta.jobs.greet():runIn(0, "milliseconds")
           end
           function runEveryHour(meta) meta.jobs.greet({}):runIn(1, "fortnights") end
           function runEveryDay(meta) meta.jobs.nope({}):runNow() end
           function processEvent(event, meta) event.properties.greeted = meta.global.greeted return event end"#,
        jobs.clone(),
        Arc::default(),
    );
    assert_eq!(vm.capabilities().jobs, ["fail", "greet"]);
    assert_eq!(vm.capabilities().scheduled_tasks, ["runEveryMinute", "runEveryHour", "runEveryDay"]);
    let before = Utc::now();
    vm.run_task("runEveryMinute").await.unwrap();
    let far = Utc::now() + chrono::Duration::days(3650);
    let all: Vec<NewJob> =
        jobs.claim_jobs(far, Duration::from_secs(1), 100).await.unwrap().into_iter().map(|j| j.spec).collect();
    assert_eq!(all.len(), 6);
    let at = |who: &str| {
        let j = all.iter().find(|j| j.payload.get("who") == Some(&json!(who))).unwrap();
        assert_eq!((j.name.as_str(), j.team_id, j.plugin_config_id), ("greet", 3, 5));
        (j.run_at - before).num_milliseconds()
    };
    assert!((0..1000).contains(&at("now")));
    assert!((119_000..121_000).contains(&at("in")));
    assert!((900..2000).contains(&at("in1")));
    assert!((3_598_000..3_602_000).contains(&at("at")));
    assert_eq!(
        all.iter().find(|j| j.payload["who"] == "iso").unwrap().run_at,
        "2030-01-01T00:00:00Z".parse::<chrono::DateTime<Utc>>().unwrap()
    );
    assert!(all.iter().any(|j| j.payload == json!({})), "a nil payload becomes an empty table");

    // Unknown units and unknown jobs are errors that say what is wrong.
    let unit = vm.run_task("runEveryHour").await.unwrap_err().to_string();
    assert!(unit.contains("unknown unit `fortnights`"), "{unit}");
    let unknown = vm.run_task("runEveryDay").await.unwrap_err().to_string();
    assert!(unknown.contains("nope"), "{unknown}");

    // The worker's side: running a job by name.
    vm.run_job("greet", &json!({"who": "job"})).await.unwrap();
    let out = vm.process_event(&json!({"event": "e", "properties": {}})).await.unwrap();
    assert!(matches!(out, phs::plugins::ProcessOutcome::Event(e) if e["properties"]["greeted"] == "job"));
    assert!(vm.run_job("fail", &json!({})).await.unwrap_err().to_string().contains("job failed on purpose"));
    assert!(vm.run_job("missing", &json!({})).await.unwrap_err().to_string().contains("no job named `missing`"));
}

#[test]
fn run_in_units() {
    use phs::plugins::jobs::run_in;
    let ms = |n: f64, u: &str| run_in(n, u).unwrap().num_milliseconds();
    assert_eq!(ms(5.0, "milliseconds"), 5);
    assert_eq!(ms(1.0, "second"), 1000);
    assert_eq!(ms(2.0, "minutes"), 120_000);
    assert_eq!(ms(1.0, "hour"), 3_600_000);
    assert_eq!(ms(1.0, "days"), 86_400_000);
    assert_eq!(ms(1.0, "week"), 7 * 86_400_000);
    assert_eq!(ms(1.0, "month"), 30 * 86_400_000);
    assert_eq!(ms(1.0, "quarters"), 90 * 86_400_000);
    assert_eq!(ms(1.0, "year"), 365 * 86_400_000);
    assert!(run_in(1.0, "fortnight").unwrap_err().contains("unknown unit"));
    assert!(run_in(-1.0, "seconds").is_err());
    assert!(run_in(f64::NAN, "seconds").is_err());
}

/// A scheduler over its own plugin runner: `plugin_cache` is what plugins
/// see, `lock_cache` holds the schedule lock.
fn scheduler(
    store: &Arc<dyn Store>,
    plugin_cache: Arc<dyn phs::cache::Cache>,
    lock_cache: Arc<dyn phs::cache::Cache>,
    instance_id: String,
    key: &str,
    ttl: Duration,
) -> Arc<phs::worker::schedule::Scheduler> {
    let runner = phs::plugins::runner::PluginRunner::new(
        phs::plugins::runner::Backends::of(store.clone(), plugin_cache),
        None,
        Default::default(),
        uuid::Uuid::now_v7(),
    );
    let settings = phs::worker::WorkerSettings {
        schedule_lock_ttl: ttl,
        schedule_tick: None,
        job_poll: Duration::from_secs(1),
        on_event_lanes: 1,
        instance_id,
        schedule_lock_key: key.into(),
    };
    phs::worker::schedule::Scheduler::new(runner, phs::worker::schedule::LockHome::Cache(lock_cache), &settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_scheduler_holds_the_lock() {
    let url = url::Url::parse(&crate::util::redis_url()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let key = crate::util::unique("phs_test_schedule_lock");
    let mut schedulers = Vec::new();
    for i in 0..3 {
        // Each instance has its own connection to the one Redis.
        let cache = phs::cache::connect(Some(&url)).await.unwrap();
        let memory = Arc::new(phs::cache::memory::MemoryCache::default());
        schedulers.push(scheduler(&store, memory, cache, format!("instance{i}"), &key, Duration::from_millis(500)));
    }
    let mut held = Vec::new();
    for s in &schedulers {
        held.push(s.hold_lock().await);
    }
    assert_eq!(held, [true, false, false], "exactly the first instance holds the schedule lock");
    // The holder keeps it by extending; when it stops, another takes over after the ttl.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(schedulers[0].hold_lock().await);
    assert!(!schedulers[1].hold_lock().await);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(schedulers[1].hold_lock().await, "the lock did not pass on after its holder stopped extending it");
    assert!(!schedulers[0].hold_lock().await);
    assert!(!schedulers[2].hold_lock().await);
}

/// A scenario fixture that runs a task, the jobs it queued, and checks the
/// captures; a wrong expectation fails with a readable difference.
#[test]
fn plugins_test_runs_scenarios_with_jobs_and_reports_differences() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("tests")).unwrap();
    std::fs::write(p.join("plugin.json"), r#"{"name": "chain"}"#).unwrap();
    std::fs::write(
        p.join("index.lua"),
        r#"jobs = {
             step = function(payload, meta)
               posthog.capture("step", {n = payload.n})
               if payload.n < 3 then meta.jobs.step({n = payload.n + 1}):runIn(1, "hour") end
             end,
           }
           function runEveryHour(meta) meta.jobs.step({n = 1}):runNow() end"#,
    )
    .unwrap();
    let fixture = |captures: serde_json::Value| {
        json!({
            "description": "each job queues the next, however far ahead",
            "run": ["runEveryHour", "jobs"],
            "expected_captures": captures,
        })
        .to_string()
    };
    let steps =
        |ns: &[i64]| json!(ns.iter().map(|n| json!({"event": "step", "properties": {"n": n}})).collect::<Vec<_>>());
    std::fs::write(p.join("tests/chain.json"), fixture(steps(&[1, 2, 3]))).unwrap();
    let out = crate::util::phs().args(["plugins", "test"]).arg(p).output().unwrap();
    assert!(out.status.success(), "{}{}", crate::util::stdout(&out), crate::util::stderr(&out));
    assert!(crate::util::stdout(&out).contains("1 of 1 fixtures passed"));

    std::fs::write(p.join("tests/chain.json"), fixture(steps(&[1, 2, 4]))).unwrap();
    let out = crate::util::phs().args(["plugins", "test"]).arg(p).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = crate::util::stdout(&out);
    assert!(text.contains("~ captures[2].properties.n: expected 4, got 3"), "{text}");

    // A step that does not exist is a usage error naming it.
    std::fs::write(p.join("tests/chain.json"), json!({"run": ["runEveryWeek"], "expected_captures": []}).to_string())
        .unwrap();
    let out = crate::util::phs().args(["plugins", "test"]).arg(p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(crate::util::stderr(&out).contains("unknown step `runEveryWeek`"), "{}", crate::util::stderr(&out));
}

/// The scheduler sets up plugins with tasks eagerly, and skips a (task,
/// config) pair whose previous run is still going.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_sets_up_eagerly_and_skips_a_task_still_running() {
    use phs::cache::Cache;
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let team = store.create_team(NewTeam { name: "s".into(), anonymize_ips: false, api_token: None }).await.unwrap();
    let plugin_dir = dir.path().join("slow");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    std::fs::write(plugin_dir.join("plugin.json"), r#"{"name": "slow"}"#).unwrap();
    std::fs::write(
        plugin_dir.join("index.lua"),
        r#"function setupPlugin(meta) meta.cache:incr("setups") end
           function runEveryMinute(meta)
             meta.cache:incr("runs")
             local start = os.clock()
             while os.clock() - start < 0.6 do end
             meta.cache:incr("done")
           end"#,
    )
    .unwrap();
    let plugin = phs::plugins::registry::install(store.as_ref(), &plugin_dir).await.unwrap();
    phs::plugins::registry::enable(store.as_ref(), &team, &plugin).await.unwrap();
    let cache: Arc<dyn Cache> = Arc::new(phs::cache::memory::MemoryCache::default());
    let scheduler = scheduler(&store, cache.clone(), cache.clone(), "only".into(), "lock", Duration::from_secs(60));
    let key = |k: &str| format!("@plugin/{}/{}/{k}", plugin.id, team.id);

    // No event has arrived and no minute has passed: setupPlugin ran anyway.
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(scheduler.clone().run(stop.clone()));
    eventually(Duration::from_secs(5), "setupPlugin to run eagerly", || async {
        cache.get(&key("setups")).await.unwrap()
    })
    .await;
    stop.cancel();
    running.await.unwrap();

    let wait_for = |k: &'static str, n: &'static str| {
        let (cache, k) = (cache.clone(), key(k));
        async move {
            eventually(Duration::from_secs(10), &format!("{k} to reach {n}"), || async {
                let got = cache.get(&k).await.unwrap();
                (got.as_deref() == Some(n)).then_some(()).ok_or_else(|| format!("{got:?}"))
            })
            .await
        }
    };
    scheduler.fire("runEveryMinute").await;
    wait_for("runs", "1").await;
    scheduler.fire("runEveryMinute").await; // still running: skipped
    wait_for("done", "1").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(cache.get(&key("runs")).await.unwrap().as_deref(), Some("1"), "the second firing was not skipped");
    scheduler.fire("runEveryMinute").await; // the first run is over: runs again
    wait_for("done", "2").await;
    assert_eq!(cache.get(&key("runs")).await.unwrap().as_deref(), Some("2"));
    assert_eq!(cache.get(&key("setups")).await.unwrap().as_deref(), Some("1"), "setupPlugin ran more than once");
}
