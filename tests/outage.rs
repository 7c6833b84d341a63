//! Dependency outages: ingestion pauses while a dependency is down, resumes
//! when it is back, without a restart of phs and without losing anything
//! that was acknowledged.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::embedded::wait_for_events;
use crate::util::server::{start, wait_healthy};
use crate::util::{OwnPostgres, phs_ok};

/// Postgres (persons and teams) restarts while events stream in: every
/// acknowledged event is stored once and every person holds its last update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_stream_loses_nothing() {
    let pg = Arc::new(OwnPostgres::start());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let env = [("PHS_DATA_DIR", d.display().to_string()), ("DATABASE_URL", pg.url())];
    let run = |args: &[&str]| phs_ok(&env, args);
    run(&["migrate"]);
    let token = run(&["teams", "create", "shop"]).trim().to_string();
    let mut server = start(&env);
    wait_healthy(&mut server);

    // One sender, so each distinct id's `seq` grows in the order events are acknowledged.
    let url = format!("http://{}/batch", server.capture);
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let last_seq = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let (acked, last_seq, stop, token) = (acked.clone(), last_seq.clone(), stop.clone(), token.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut seq = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let events: Vec<Value> = (0..20)
                    .map(|i| {
                        seq += 1;
                        json!({"event": "tick", "distinct_id": format!("u{}", i % 5), "uuid": uuid::Uuid::now_v7().to_string(),
                               "properties": {"$set": {"seq": seq}}})
                    })
                    .collect();
                let body = json!({"api_key": token, "batch": events}).to_string();
                let ok = matches!(client.post(&url).body(body).send().await, Ok(r) if r.status() == 200);
                if ok {
                    let mut acked = acked.lock().unwrap();
                    let mut last = last_seq.lock().unwrap();
                    for e in &events {
                        acked.insert(e["uuid"].as_str().unwrap().to_string());
                        last.insert(
                            e["distinct_id"].as_str().unwrap().to_string(),
                            e["properties"]["$set"]["seq"].clone(),
                        );
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let restarting = pg.clone();
    tokio::task::spawn_blocking(move || restarting.restart_after(Duration::from_secs(3))).await.unwrap();
    // Keep streaming a little after Postgres is back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    sender.await.unwrap();

    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 100, "acknowledged only {}", acked.len());
    let rows = wait_for_events(&d, acked.len());
    let stored: HashSet<String> = rows.iter().map(|r| r["uuid"].as_str().unwrap().to_string()).collect();
    assert_eq!(rows.len(), stored.len(), "an event was stored twice");
    let missing: Vec<_> = acked.difference(&stored).collect();
    assert!(missing.is_empty(), "{} acknowledged events lost, e.g. {:?}", missing.len(), missing.first());
    assert!(server.child.try_wait().unwrap().is_none(), "phs serve exited during the outage");

    for (id, seq) in last_seq.lock().unwrap().iter() {
        let person: Value = serde_json::from_str(&run(&["persons", "show", id, "--team", &token, "--json"])).unwrap();
        assert_eq!(&person["properties"]["seq"], seq, "person {id} lost its last update");
    }
}
