//! Processing on several shards (WORKER_CONCURRENCY): events of one
//! (team, distinct_id) stay in order and on one Lua state, several states
//! share the work, and every event is stored once across a kill -9.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::embedded::{cli, plugin_dir, wait_for_events};
use crate::util::server::{Server, start, wait_healthy};

/// Tags each event with the state that ran it (a random id per Lua state,
/// made in setupPlugin) and with the seq of the event of its distinct id
/// that the plugin saw before it (-1: none since the server started).
const ORDER_PLUGIN: &str = r#"
function setupPlugin(meta)
  meta.global.state = tostring(math.random(1, 1000000000))
end

function processEvent(event, meta)
  local key = "last:" .. event.distinct_id
  event.properties.prev = meta.cache:get(key, -1)
  event.properties.state = meta.global.state
  meta.cache:set(key, event.properties.seq)
  return event
end
"#;

/// One sender per set of distinct ids, so that each id's events reach the
/// log in seq order; it stops at the first request not answered with 200.
fn send_in_order(
    url: String,
    token: String,
    ids: Vec<String>,
    acked: std::sync::Arc<std::sync::Mutex<HashSet<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut seq: HashMap<String, i64> = HashMap::new();
        for round in 0..100_000 {
            let events: Vec<Value> = (0..20)
                .map(|i| {
                    let id = ids[(round * 7 + i) % ids.len()].clone();
                    let n = seq.entry(id.clone()).or_insert(-1);
                    *n += 1;
                    json!({"event": "step", "distinct_id": id, "uuid": uuid::Uuid::now_v7().to_string(),
                           "properties": {"seq": *n}})
                })
                .collect();
            let uuids: Vec<String> =
                events.iter().map(|e| e["uuid"].as_str().unwrap_or_default().to_string()).collect();
            let body = json!({"api_key": token, "batch": events}).to_string();
            match client.post(&url).header("content-type", "application/json").body(body).send().await {
                Ok(r) if r.status() == 200 => acked.lock().unwrap().extend(uuids),
                _ => return,
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_stay_in_order_on_many_shards_and_are_stored_once_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let token = cli(&d, &["teams", "create", "shop"]).trim().to_string();
    let plugin = plugin_dir(&d, "Order Witness", json!([]), ORDER_PLUGIN);
    cli(&d, &["plugins", "install", plugin.to_str().unwrap()]);
    cli(&d, &["plugins", "enable", "Order Witness", "--team", &token]);
    let env = [
        ("PHS_DATA_DIR", d.display().to_string()),
        ("WORKER_CONCURRENCY", "4".to_string()),
        ("TASKS_PER_WORKER", "3".to_string()),
        // Rerouting hot keys to the overflow log gives up their order, as in the original.
        ("EVENT_OVERFLOW_BUCKET_CAPACITY", "0".to_string()),
    ];

    let mut server = start(&env);
    wait_healthy(&mut server);
    let url = format!("http://{}/batch", server.capture);
    let acked = std::sync::Arc::new(std::sync::Mutex::new(HashSet::new()));
    let senders: Vec<_> = ["a", "b"]
        .iter()
        .map(|set| {
            let ids = (0..12).map(|i| format!("{set}{i}")).collect();
            send_in_order(url.clone(), token.clone(), ids, acked.clone())
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    kill_9(&mut server);
    for s in senders {
        s.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 200, "acknowledged only {}", acked.len());

    let mut server = start(&env);
    wait_healthy(&mut server);
    let rows = wait_for_events(&d, acked.len());
    let stored: HashSet<&str> = rows.iter().map(|r| r["uuid"].as_str().unwrap()).collect();
    assert_eq!(rows.len(), stored.len(), "an event was stored twice");
    let missing = acked.iter().filter(|u| !stored.contains(u.as_str())).count();
    assert_eq!(missing, 0, "acknowledged events lost");

    // Each event saw its key's previous event just before it (or, first
    // after a start, none): no event of a key overtook an earlier one.
    let mut states_of: HashMap<&str, HashSet<&str>> = HashMap::new();
    for r in &rows {
        let p = &r["properties"];
        let (seq, prev) = (p["seq"].as_i64().unwrap(), p["prev"].as_i64().unwrap());
        assert!(prev == -1 || prev == seq - 1, "{} seq {seq} ran after seq {prev}", r["distinct_id"]);
        states_of.entry(r["distinct_id"].as_str().unwrap()).or_default().insert(p["state"].as_str().unwrap());
    }
    // Each run's states are new, and within a run a key stays on its shard's state.
    for (key, states) in &states_of {
        assert!(states.len() <= 2, "{key} ran on {} Lua states in two runs", states.len());
    }
    let all: HashSet<&&str> = states_of.values().flatten().collect();
    assert!(all.len() >= 3, "the work of two runs on 4 shards ran on only {} Lua states", all.len());
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

fn kill_9(server: &mut Server) {
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
