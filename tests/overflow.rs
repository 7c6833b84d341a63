//! Hot keys: past its burst, a (token, distinct_id)'s events go to the
//! overflow topic and a second pipeline ingests them. Every event is still
//! stored once, the hot person's updates still apply in order, and the
//! count of rerouted events is exported.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::eventually::{eventually, eventually_blocking};
use crate::util::server::{start, wait_for_metric, wait_healthy};

/// Sends 40 events of one person (each `$set`ting `n` to its index) and 3
/// of each of five others, in one request, with a burst of 5 and no
/// refill, to a `phs serve` with `env`; checks what `phs` then shows.
async fn hot_key_overflows(env: Vec<(&'static str, String)>) {
    let cli = |args: &[&str]| crate::util::phs_ok(&env, args);
    let token = cli(&["teams", "create", "shop"]).trim().to_string();
    let mut server_env = env.clone();
    server_env.push(("EVENT_OVERFLOW_BUCKET_CAPACITY", "5".into()));
    server_env.push(("EVENT_OVERFLOW_BUCKET_REPLENISH_RATE", "0".into()));
    let mut server = start(&server_env);
    wait_healthy(&mut server);

    let mut batch: Vec<Value> =
        (0..40).map(|i| json!({"event": "click", "distinct_id": "hot", "properties": {"$set": {"n": i}}})).collect();
    for cold in 0..5 {
        for _ in 0..3 {
            batch.push(json!({"event": "click", "distinct_id": format!("cold-{cold}")}));
        }
    }
    let url = format!("http://{}/batch", server.capture);
    let body = json!({"api_key": token, "batch": batch}).to_string().into_bytes();
    let (code, reply) = crate::util::embedded::post(&url, "application/json", body).await;
    assert_eq!(code, 200, "{reply}");

    let rows = eventually_blocking(Duration::from_secs(60), "55 stored events", || {
        let out = cli(&["events", "list", "--json", "--limit", "1000"]);
        let rows: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if rows.len() >= 55 { Ok(rows) } else { Err(format!("only {} of 55 events stored", rows.len())) }
    });
    let uuids: std::collections::HashSet<&str> = rows.iter().map(|r| r["uuid"].as_str().unwrap()).collect();
    assert_eq!((rows.len(), uuids.len()), (55, 55), "every event stored once");
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for r in &rows {
        *per_id.entry(r["distinct_id"].as_str().unwrap()).or_default() += 1;
    }
    assert_eq!(per_id["hot"], 40);
    assert!((0..5).all(|c| per_id[format!("cold-{c}").as_str()] == 3), "{per_id:?}");

    // The overflow pipeline runs after the main one wrote the first five: the last $set wins.
    eventually_blocking(Duration::from_secs(30), "the hot person's last update", || {
        let person: Value =
            serde_json::from_str(&cli(&["persons", "show", "hot", "--team", "shop", "--json"])).unwrap();
        (person["properties"]["n"] == 39).then_some(()).ok_or(person)
    });

    wait_for_metric(&server.addr, "phs_events_overflowed_total 35", Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_a_hot_key_goes_to_the_overflow_log() {
    let dir = tempfile::tempdir().unwrap();
    hot_key_overflows(vec![("PHS_DATA_DIR", dir.path().display().to_string())]).await;
    assert!(dir.path().join("overflow-log.sqlite3").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_a_hot_key_goes_to_the_overflow_topic() {
    let d = crate::util::production::Deployment::new().await;
    hot_key_overflows(d.env.clone()).await;
    let overflow = d.settings.kafka.topic("events_plugin_ingestion_overflow");
    let rerouted = crate::util::production::consume(&d.settings, &overflow, 35).await;
    assert_eq!(rerouted.len(), 35);
    assert!(rerouted.iter().all(|m| m.payload.windows(5).any(|w| w == b"\"hot\"")), "only the hot key overflows");
}

/// The limit holds across instances: two ingestion instances in one group,
/// with the hot key's events sent to both capture endpoints in turn, reroute
/// as many as one instance would. Capture keys every message by
/// `token:distinct_id`, so all of a key's messages are on one partition,
/// which one instance consumes: its bucket is the key's only one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_two_instances_hold_one_limit_per_key() {
    let d = crate::util::production::Deployment::new().await;
    let token = d.cli(&["teams", "create", "shop"]).trim().to_string();
    let mut env = d.env.clone();
    env.push(("EVENT_OVERFLOW_BUCKET_CAPACITY", "5".into()));
    env.push(("EVENT_OVERFLOW_BUCKET_REPLENISH_RATE", "0".into()));
    let mut a = start(&env);
    wait_healthy(&mut a);
    let mut b = start(&env);
    wait_healthy(&mut b);
    // A rebalance would give the key's new owner a fresh bucket: send once both own their share.
    // The consumption topic's assignments, not the overflow topic's ("..._overflow").
    let topic = format!("topic={} ", d.settings.kafka.topic("events_plugin_ingestion"));
    eventually_blocking(Duration::from_secs(60), "the partitions split between the two", || {
        // How many partitions the instance's latest assignment gave it.
        let owned = |log: String| {
            let last = log.lines().rfind(|l| l.contains("partitions assigned") && l.contains(&topic))?;
            Some(last.split("partitions=").nth(1)?.split(',').count())
        };
        match (owned(a.log_text()), owned(b.log_text())) {
            (Some(in_a), Some(in_b)) if in_a + in_b == 8 => Ok(()),
            seen => Err(format!("partitions owned: {seen:?}")),
        }
    });
    for round in 0..8 {
        let capture = if round % 2 == 0 { &a.capture } else { &b.capture };
        let batch: Vec<Value> = (0..5)
            .map(|i| json!({"event": "click", "distinct_id": "hot", "properties": {"i": round * 5 + i}}))
            .collect();
        let body = json!({"api_key": token, "batch": batch}).to_string().into_bytes();
        let (code, reply) =
            crate::util::embedded::post(&format!("http://{capture}/batch"), "application/json", body).await;
        assert_eq!(code, 200, "{reply}");
    }
    let overflowed = |addr: String| async move {
        let metrics = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("phs_events_overflowed_total "))
            .map_or(0, |n| n.parse::<u64>().unwrap())
    };
    eventually(Duration::from_secs(60), "35 of the 40 rerouted across the two", || async {
        let (in_a, in_b) = (overflowed(a.addr.clone()).await, overflowed(b.addr.clone()).await);
        (in_a + in_b == 35).then_some(()).ok_or(format!("rerouted: {in_a} + {in_b}"))
    })
    .await;
}
