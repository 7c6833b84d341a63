//! Events end to end on the embedded default: capture -> local log ->
//! plugins -> SQLite events, as a user of `phs serve` sees them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::embedded::{cli, post, wait_for_events};
use crate::util::eventually::{eventually, eventually_blocking};
use crate::util::server::{start, wait_healthy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_goes_through_a_plugin_into_the_events_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let token = cli(&d, &["teams", "create", "shop"]).trim().to_string();
    cli(&d, &["plugins", "install", "lua-plugins/hello-world"]);
    cli(
        &d,
        &["plugins", "config", "Hello World", "--team", &token, "--set", "greeting=phs", "--set", "drop_event=noise"],
    );
    cli(&d, &["plugins", "enable", "Hello World", "--team", &token]);

    let mut server = start(&[("PHS_DATA_DIR", d.display().to_string())]);
    wait_healthy(&mut server);
    let url = format!("http://{}/batch/", server.capture);
    let body = json!({"api_key": token, "batch": [
        {"event": "signed_up", "distinct_id": "u1", "properties": {"plan": "pro"}, "timestamp": "2024-05-01T10:00:00.123456Z"},
        {"event": "noise", "distinct_id": "u1"},
    ]});
    let (code, reply) = post(&url, "application/json", body.to_string().into_bytes()).await;
    assert_eq!((code, &reply), (200, &json!({"status": 1})));

    let rows = wait_for_events(&d, 1);
    assert_eq!(rows.len(), 1, "the `noise` event should have been dropped by the plugin: {rows:?}");
    let e = &rows[0];
    assert_eq!((e["event"].as_str(), e["distinct_id"].as_str()), (Some("signed_up"), Some("u1")));
    assert_eq!(e["properties"]["hello"], "phs");
    assert_eq!(e["properties"]["plan"], "pro");
    assert_eq!(e["properties"]["$plugins_succeeded"], json!(["Hello World (1)"]));
    assert_eq!(e["properties"]["$ip"], "127.0.0.1");
    assert_eq!(e["timestamp"], "2024-05-01T10:00:00.123456Z", "sub-second precision is kept");

    // Bad requests are refused with a reason, and nothing is stored for them.
    let (code, reply) = post(
        &url,
        "application/json",
        br#"{"api_key": "phc_nope", "batch": [{"event": "x", "distinct_id": "d"}]}"#.to_vec(),
    )
    .await;
    assert_eq!(code, 401, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("phc_nope"));
    let (code, reply) = post(&url, "application/json", b"{not json".to_vec()).await;
    assert_eq!(code, 400, "{reply}");
    let (code, _) =
        post(&url, "application/json", json!({"api_key": token, "event": "x"}).to_string().into_bytes()).await;
    assert_eq!(code, 400, "an event without distinct_id is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_plugins_keep_the_event_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let token = cli(&d, &["teams", "create", "shop"]).trim().to_string();
    let plugin = d.join("broken");
    std::fs::create_dir_all(&plugin).unwrap();
    std::fs::write(plugin.join("plugin.json"), r#"{"name": "broken"}"#).unwrap();
    std::fs::write(
        plugin.join("index.lua"),
        "function processEvent(e)\n  e.properties.touched = true\n  console.log('about to fail')\n  error('kaput on ' .. e.event)\nend",
    )
    .unwrap();
    cli(&d, &["plugins", "install", plugin.to_str().unwrap()]);
    cli(&d, &["plugins", "enable", "broken", "--team", &token]);

    let mut server = start(&[("PHS_DATA_DIR", d.display().to_string())]);
    wait_healthy(&mut server);
    let url = format!("http://{}/e", server.capture);
    let (code, _) = post(
        &url,
        "application/json",
        json!({"token": token, "event": "e1", "distinct_id": "u"}).to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, 200);
    let rows = wait_for_events(&d, 1);
    let props = &rows[0]["properties"];
    assert_eq!(props["$plugins_failed"], json!(["broken (1)"]));
    assert!(props.get("touched").is_none(), "a failed plugin's changes are not kept");

    // The error is stored on the config and as a log entry, with file and line.
    eventually_blocking(Duration::from_secs(10), "a log entry for the failure", || {
        let logs = cli(&d, &["plugins", "logs", "1"]);
        let found = logs.contains("index.lua:4: kaput on e1") && logs.contains("about to fail");
        found.then_some(()).ok_or(logs)
    });
    // --level keeps that level and above: the console.log entry is below ERROR.
    let errors = cli(&d, &["plugins", "logs", "1", "--level", "error"]);
    assert!(errors.contains("kaput on e1") && !errors.contains("about to fail"), "{errors}");
    let listed: Value = serde_json::from_str(&cli(&d, &["plugins", "list", "--json"])).unwrap();
    assert!(listed["configs"][0]["error"]["message"].as_str().unwrap().contains("kaput on e1"));
}

/// Every request recorded from PostHog's SDKs (../shared/capture-requests)
/// is accepted and yields the events it should, with the same distinct_id,
/// event name and properties.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_sdk_requests_are_accepted() {
    use base64::Engine;
    let dump = std::fs::read_to_string("../shared/capture-requests/requests_dump.jsonl")
        .expect("../shared/capture-requests/requests_dump.jsonl is missing: it sits beside the project");
    let requests: Vec<Value> = dump
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(requests.len(), 16);

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let mut tokens: Vec<String> = requests
        .iter()
        .flat_map(|r| r["output"].as_array().unwrap().iter().map(|o| o["token"].as_str().unwrap().to_string()))
        .collect();
    tokens.sort();
    tokens.dedup();
    for (i, t) in tokens.iter().enumerate() {
        cli(&d, &["teams", "create", &format!("t{i}"), "--token", t]);
    }
    let mut server = start(&[("PHS_DATA_DIR", d.display().to_string())]);
    wait_healthy(&mut server);

    let mut expected = Vec::new();
    for r in &requests {
        let body = base64::engine::general_purpose::STANDARD.decode(r["body"].as_str().unwrap()).unwrap();
        let url = format!("http://{}{}", server.capture, r["path"].as_str().unwrap());
        let (code, reply) = post(&url, r["content_type"].as_str().unwrap(), body).await;
        assert_eq!(code, 200, "{}: {reply}", r["path"]);
        for o in r["output"].as_array().unwrap() {
            let data: Value = serde_json::from_str(o["data"].as_str().unwrap()).unwrap();
            expected.push((
                o["uuid"].as_str().unwrap().to_string(),
                o["distinct_id"].as_str().unwrap().to_string(),
                data,
            ));
        }
    }
    // Two requests are sent twice on purpose (gzip detection); their events keep their uuids.
    let mut unique: Vec<_> = expected.iter().map(|(u, _, _)| u.clone()).collect();
    unique.sort();
    unique.dedup();
    let rows = wait_for_events(&d, unique.len());
    assert_eq!(rows.len(), unique.len());
    for (uuid, distinct_id, data) in &expected {
        let row =
            rows.iter().find(|r| r["uuid"] == uuid.as_str()).unwrap_or_else(|| panic!("event {uuid} was not stored"));
        assert_eq!(row["distinct_id"].as_str(), Some(distinct_id.as_str()), "{uuid}");
        assert_eq!(row["event"], data["event"], "{uuid}");
        let props = row["properties"].as_object().unwrap();
        for (k, v) in data["properties"].as_object().unwrap() {
            if k == "$set" || k == "$set_once" {
                continue; // merged with the top-level $set, checked below
            }
            assert_eq!(props.get(k), Some(v), "{uuid}: property {k}");
        }
        if let Some(set) = data.get("$set").and_then(Value::as_object) {
            for (k, v) in set {
                assert_eq!(&props["$set"][k], v, "{uuid}: $set.{k}");
            }
        }
    }
}

#[tokio::test]
async fn malformed_log_messages_go_to_the_dead_letter_queue() {
    use phs::pipeline::source::local_log::LocalLog;
    use phs::wire::Producer;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let token = cli(&d, &["teams", "create", "shop"]).trim().to_string();
    let log = LocalLog::open(&d).await.unwrap();
    let good = |event: &str| {
        json!({"uuid": uuid::Uuid::now_v7().to_string(), "distinct_id": "d", "ip": null, "site_url": "s",
               "data": json!({"event": event}).to_string(), "token": token, "now": "2024-01-01T00:00:00Z", "sent_at": null})
        .to_string()
        .into_bytes()
    };
    let mut unknown: Value = serde_json::from_slice(&good("x")).unwrap();
    unknown["token"] = json!("phc_unknown");
    let messages: Vec<(String, Vec<u8>)> = vec![
        good("before"),
        b"{not json".to_vec(),
        vec![0xff, 0xfe, 0x00],
        serde_json::to_vec(&unknown).unwrap(),
        json!({"uuid": uuid::Uuid::now_v7().to_string(), "distinct_id": "d", "ip": null, "site_url": "s", "data": "{\"properties\": {}}", "token": token,
               "now": "2024-01-01T00:00:00Z", "sent_at": null}).to_string().into_bytes(),
        {
            let mut huge: Value = serde_json::from_slice(&good("huge")).unwrap();
            huge["data"] = json!(json!({"event": "huge", "properties": {"blob": "x".repeat(1_100_000)}}).to_string());
            serde_json::to_vec(&huge).unwrap()
        },
        good("after"),
    ]
    .into_iter()
    .map(|p| ("k".to_string(), p))
    .collect();
    log.append(&messages).await.unwrap();

    let mut server = start(&[("PHS_DATA_DIR", d.display().to_string())]);
    wait_healthy(&mut server);
    let rows = wait_for_events(&d, 2);
    let names: Vec<&str> = rows.iter().map(|r| r["event"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"before") && names.contains(&"after"),
        "poison must not block the events after it: {names:?}"
    );
    let counts = eventually(Duration::from_secs(10), "5 dead letters", || async {
        let counts = log.dead_letter_counts().await.unwrap();
        let all = counts.iter().map(|(_, n)| n).sum::<i64>() == 5;
        all.then_some(counts.clone()).ok_or_else(|| format!("dead letters: {counts:?}"))
    })
    .await;
    let reasons: Vec<&str> = counts.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        reasons,
        vec!["invalid_utf8", "malformed_message", "missing_event_name", "oversized_event", "unknown_token"]
    );
    // Everything gets committed (right after the dead letters): a restart reprocesses nothing.
    let end = log.end_offset().await.unwrap();
    eventually(Duration::from_secs(10), "every offset committed", || async {
        let committed = log.committed("phs-ingestion").await.unwrap();
        (committed == end).then_some(()).ok_or_else(|| format!("committed {committed} of {end}"))
    })
    .await;
}

/// kill -9 while events stream in: every event acknowledged with 200 is
/// stored after a restart, exactly once per uuid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let token = cli(&d, &["teams", "create", "shop"]).trim().to_string();
    cli(&d, &["plugins", "install", "lua-plugins/hello-world"]);
    cli(&d, &["plugins", "enable", "Hello World", "--team", &token]);
    let env = [("PHS_DATA_DIR", d.display().to_string())];

    let mut server = start(&env);
    wait_healthy(&mut server);
    let url = format!("http://{}/batch", server.capture);
    let stream = crate::util::server::stream_batches(&url, &token);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let (acked, _) = stream.finish().await;
    // Only a floor: the point is that none of what was acknowledged is lost.
    assert!(acked.len() >= 100, "acknowledged only {}", acked.len());

    // Restart: the pipeline resumes from its committed offset.
    let mut server = start(&env);
    wait_healthy(&mut server);
    let rows = wait_for_events(&d, acked.len());
    let stored: std::collections::HashSet<String> =
        rows.iter().map(|r| r["uuid"].as_str().unwrap().to_string()).collect();
    assert_eq!(rows.len(), stored.len(), "an event was stored twice");
    let missing: Vec<_> = acked.difference(&stored).collect();
    assert!(missing.is_empty(), "{} acknowledged events lost, e.g. {:?}", missing.len(), missing.first());
    assert!(rows.iter().all(|r| r["properties"]["hello"] == "world"), "every event went through the plugin");
}

/// posthog.capture from a plugin sends a new event through ingestion for the same team.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_capture_new_events_for_their_team() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let token = cli(&d, &["teams", "create", "shop"]).trim().to_string();
    let plugin = d.join("welcome");
    std::fs::create_dir_all(&plugin).unwrap();
    std::fs::write(plugin.join("plugin.json"), r#"{"name": "welcome"}"#).unwrap();
    std::fs::write(
        plugin.join("index.lua"),
        r#"function processEvent(e, meta)
             if e.event == "signed_up" then
               posthog.capture("welcome_sent", {distinct_id = e.distinct_id, plan = e.properties.plan})
               posthog.capture("plugin_heartbeat")
             end
             return e
           end"#,
    )
    .unwrap();
    cli(&d, &["plugins", "install", plugin.to_str().unwrap()]);
    cli(&d, &["plugins", "enable", "welcome", "--team", &token]);
    let mut server = start(&[("PHS_DATA_DIR", d.display().to_string())]);
    wait_healthy(&mut server);
    let url = format!("http://{}/e", server.capture);
    let body = json!({"token": token, "event": "signed_up", "distinct_id": "u9", "properties": {"plan": "pro"}});
    let (code, _) = post(&url, "application/json", body.to_string().into_bytes()).await;
    assert_eq!(code, 200);
    let rows = wait_for_events(&d, 3);
    let find = |name: &str| rows.iter().find(|r| r["event"] == name).unwrap_or_else(|| panic!("no {name} in {rows:?}"));
    let welcome = find("welcome_sent");
    assert_eq!((welcome["distinct_id"].as_str(), welcome["team_id"].as_i64()), (Some("u9"), Some(1)));
    assert_eq!(welcome["properties"]["plan"], "pro");
    assert_eq!(welcome["properties"]["$lib"], "posthog-plugin-server");
    assert_eq!(find("plugin_heartbeat")["distinct_id"], "welcome", "the default distinct_id is the plugin's name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_that_anonymize_ips_store_no_ip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let token = cli(&d, &["teams", "create", "private", "--anonymize-ips"]).trim().to_string();
    let mut server = start(&[("PHS_DATA_DIR", d.display().to_string())]);
    wait_healthy(&mut server);
    let url = format!("http://{}/e", server.capture);
    let body = json!({"token": token, "event": "e", "distinct_id": "u", "properties": {"$ip": "9.9.9.9"}});
    let (code, _) = post(&url, "application/json", body.to_string().into_bytes()).await;
    assert_eq!(code, 200);
    let rows = wait_for_events(&d, 1);
    assert!(rows[0]["properties"].get("$ip").is_none(), "{}", rows[0]);
}
