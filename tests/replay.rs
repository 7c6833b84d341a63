//! `phs replay` embedded: the local log and the dead-letter table as a user
//! replays them. Dry runs show per-plugin diffs, drops and errors, keep
//! every write in the overlay (nothing reaches SQLite, the log or a
//! receiver except GETs) while reads see real data; selection by offset,
//! time and filters; `--compare`, `--plugin-dir`, `--plugin-config`;
//! re-ingest keeping uuids; dead letters re-ingested after a fix.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use phs::pipeline::source::local_log::LocalLog;
use phs::wire::Producer;
use serde_json::{Value, json};

use crate::util::embedded::{cli, plugin_dir, wait_for_events};
use crate::util::phs_with;

/// Rewrites events and writes everywhere a plugin can: storage (after
/// reading a real key), cache, fetch (a POST and a GET) and capture.
const SHAPER: &str = r#"
function processEvent(event, meta)
  event.properties = event.properties or {}
  event.properties.shaped = true
  event.properties.secret = nil
  event.properties.prior = meta.storage.get("prior")
  if event.event == "rename" then event.event = "renamed" end
  meta.storage.set("seen", event.distinct_id)
  meta.cache:set("last", event.event)
  if event.event == "call" then
    fetch(meta.config.url .. "/hook", { method = "POST", body = "x" })
    fetch(meta.config.url .. "/lookup")
    posthog.capture("side effect", { from = event.event })
  end
  return event
end
"#;

/// Drops `drop`, throws on `boom`.
const GATE: &str = r#"
function processEvent(event, meta)
  if event.event == "drop" then return nil end
  if event.event == "boom" then error("boom on " .. event.distinct_id) end
  return event
end
"#;

/// The fix of GATE: `boom` is dropped instead of throwing.
const GATE_FIXED: &str = r#"
function processEvent(event, meta)
  if event.event == "drop" or event.event == "boom" then return nil end
  return event
end
"#;

/// Counts the requests a plugin sends, by method.
#[derive(Clone, Default)]
pub struct Receiver {
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    pub async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let seen = r.seen.clone();
        let app = axum::Router::new().fallback(move |method: axum::http::Method, uri: axum::http::Uri| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(format!("{method} {}", uri.path()));
                "{}"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, url)
    }

    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// A message in the capture format with its own uuid.
pub fn message(token: &str, event: &str, distinct_id: &str, properties: Value) -> (Vec<u8>, String) {
    let uuid = uuid::Uuid::now_v7().to_string();
    let m = json!({"uuid": uuid, "distinct_id": distinct_id, "ip": "10.0.0.1", "site_url": "http://x",
                   "data": json!({"event": event, "properties": properties}).to_string(), "token": token,
                   "now": "2026-01-01T12:00:00Z", "sent_at": null});
    (m.to_string().into_bytes(), uuid)
}

/// The JSON lines of a `--json` replay: the events, then the summary.
pub fn parse(stdout: &str) -> (Vec<Value>, Value) {
    let mut lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary = lines.pop().expect("a summary line")["summary"].clone();
    assert!(!summary.is_null(), "the last line is the summary: {stdout}");
    (lines, summary)
}

pub fn step<'a>(report: &'a Value, plugin: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["plugin"].as_str().unwrap().starts_with(plugin))
        .unwrap_or_else(|| panic!("no step of {plugin} in {report}"))
}

pub fn by_event<'a>(reports: &'a [Value], event: &str) -> &'a Value {
    reports.iter().find(|r| r["event"] == event).unwrap_or_else(|| panic!("no report of `{event}`"))
}

struct Embedded {
    _dir: tempfile::TempDir,
    data: PathBuf,
    token: String,
    receiver: Receiver,
    /// The uuids of the valid events, by event name.
    uuids: Vec<(String, String)>,
    shaper_config: i64,
    gate_config: i64,
}

impl Embedded {
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![("PHS_DATA_DIR", self.data.display().to_string()), ("PHS_PLUGIN_FETCH_ALLOW_PRIVATE", "true".into())]
    }

    fn replay(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut all = vec!["replay"];
        all.extend_from_slice(args);
        phs_with(&self.env(), &all)
    }

    fn replay_json(&self, args: &[&str]) -> (Vec<Value>, Value) {
        let mut all = args.to_vec();
        all.push("--json");
        let (code, out, err) = self.replay(&all);
        assert_eq!(code, Some(0), "replay {args:?} failed: {err}");
        parse(&out)
    }

    async fn log(&self) -> LocalLog {
        LocalLog::open(&self.data).await.unwrap()
    }
}

/// A data directory with team `demo`, plugins Shaper then Gate, a real
/// storage value `prior`, and seven messages in the log: keep, rename, drop,
/// boom, call, one invalid and one of an unknown token.
async fn embedded() -> Embedded {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let token = cli(&data, &["teams", "create", "demo"]).trim().to_string();
    let (receiver, url) = Receiver::start().await;
    let schema = json!([{"key": "url", "name": "URL", "type": "string"}]);
    let shaper = plugin_dir(dir.path(), "Shaper", schema, SHAPER);
    let gate = plugin_dir(dir.path(), "Gate", json!([]), GATE);
    for (p, name) in [(&shaper, "Shaper"), (&gate, "Gate")] {
        cli(&data, &["plugins", "install", p.to_str().unwrap()]);
        cli(&data, &["plugins", "enable", name, "--team", "demo"]);
    }
    cli(&data, &["plugins", "config", "Shaper", "--team", "demo", "--set", &format!("url={url}")]);
    let settings = crate::util::store_settings(None, &data);
    let store = phs::store::connect(&settings).await.unwrap();
    let configs = store.list_plugin_configs(None).await.unwrap();
    let plugins = store.list_plugins().await.unwrap();
    let config_of = |name: &str| {
        let id = plugins.iter().find(|p| p.name == name).unwrap().id;
        configs.iter().find(|c| c.plugin_id == id).unwrap().id
    };
    let (shaper_config, gate_config) = (config_of("Shaper"), config_of("Gate"));
    store.storage_set(shaper_config, "prior", "real value").await.unwrap();
    let log = LocalLog::open(&data).await.unwrap();
    let mut uuids = Vec::new();
    let mut messages = Vec::new();
    for (event, id) in [("keep", "u1"), ("rename", "u2"), ("drop", "u3"), ("boom", "u4"), ("call", "u5")] {
        let (payload, uuid) = message(&token, event, id, json!({"secret": "s", "plan": "free"}));
        uuids.push((event.to_string(), uuid));
        messages.push((format!("{token}:{id}"), payload));
    }
    messages.push(("k".into(), b"{not json".to_vec()));
    messages.push(("k".into(), message("phc_nobody", "stray", "u6", json!({})).0));
    log.append(&messages).await.unwrap();
    Embedded { _dir: dir, data, token, receiver, uuids, shaper_config, gate_config }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_shows_each_plugins_changes_drops_and_errors_and_writes_nothing() {
    let e = embedded().await;
    let log = e.log().await;
    let end_before = log.end_offset().await.unwrap();
    let (reports, summary) = e.replay_json(&["--from-beginning", "--side-effects"]);

    assert_eq!(reports.len(), 7, "every message is reported: {reports:?}");
    let keep = by_event(&reports, "keep");
    let shaper = step(keep, "Shaper");
    assert_eq!(shaper["outcome"], "changed");
    let changes = shaper["changes"].as_array().unwrap();
    let change = |path: &str| changes.iter().find(|c| c["path"] == path).unwrap_or_else(|| panic!("no {path}"));
    assert_eq!(change("properties.shaped")["after"], true);
    assert_eq!(change("properties.secret")["before"], "s");
    assert!(change("properties.secret")["after"].is_null(), "a removed property has no after");
    assert_eq!(change("properties.prior")["after"], "real value", "reads see the real storage");
    assert_eq!(step(keep, "Gate")["outcome"], "unchanged");
    assert_eq!(keep["fate"], "ingested");
    assert_eq!(keep["uuid"], e.uuids[0].1);

    let renamed = by_event(&reports, "rename");
    let c = step(renamed, "Shaper")["changes"].as_array().unwrap().iter().find(|c| c["path"] == "event").cloned();
    assert_eq!(c.unwrap(), json!({"path": "event", "before": "rename", "after": "renamed"}));
    assert_eq!(renamed["output"]["event"], "renamed");

    let dropped = by_event(&reports, "drop");
    assert_eq!(step(dropped, "Gate")["outcome"], "dropped");
    assert_eq!(dropped["fate"], "dropped");
    assert!(dropped.get("output").is_none());

    let boom = by_event(&reports, "boom");
    let failed = step(boom, "Gate");
    assert_eq!(failed["outcome"], "failed");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("boom on u4"), "{error}");
    assert!(error.contains("index.lua:4"), "the error names file and line: {error}");
    assert_eq!(boom["fate"], "ingested", "a failing plugin leaves the event as it was");

    let call = by_event(&reports, "call");
    let effects = call["side_effects"].as_array().unwrap();
    let has = |want: Value| {
        assert!(
            effects.iter().any(|e| want.as_object().unwrap().iter().all(|(k, v)| &e[k] == v)),
            "no side effect like {want} in {effects:?}"
        )
    };
    has(json!({"kind": "fetch", "method": "POST", "sent": false}));
    has(json!({"kind": "fetch", "method": "GET", "sent": true}));
    has(json!({"kind": "capture", "event": "side effect"}));
    has(json!({"kind": "storage", "op": "set", "key": "seen", "value": "u5"}));
    has(json!({"kind": "cache", "op": "set", "value": "call"}));
    has(json!({"kind": "cache", "op": "set"}));

    assert_eq!(reports.iter().filter(|r| r["fate"] == "invalid").count(), 1);
    let stray = reports.iter().find(|r| r["fate"] == "unknown_team").expect("the unknown token is reported");
    assert_eq!(stray["event"], "stray");

    assert_eq!(summary["read"], 7);
    assert_eq!(summary["dropped"], 1);
    assert_eq!(summary["invalid"], 1);
    assert_eq!(summary["unknown_team"], 1);
    let gate = &summary["plugins"][format!("Gate ({})", e.gate_config)];
    assert_eq!((gate["dropped"].as_u64(), gate["failed"].as_u64()), (Some(1), Some(1)), "{summary}");
    assert_eq!(summary["side_effects"]["fetches held"], 1);
    assert_eq!(summary["side_effects"]["captures"], 1);

    // Nothing was written: no event, no storage key, no capture in the log,
    // no error on the config, and only the GET reached the receiver.
    assert_eq!(cli(&e.data, &["events", "list", "--json"]).trim(), "", "a dry run stores no event");
    let store = phs::store::connect(&crate::util::store_settings(None, &e.data)).await.unwrap();
    assert_eq!(store.storage_get(e.shaper_config, "seen").await.unwrap(), None);
    assert_eq!(store.storage_get(e.shaper_config, "prior").await.unwrap().as_deref(), Some("real value"));
    assert_eq!(log.end_offset().await.unwrap(), end_before, "posthog.capture appended nothing");
    let configs = store.list_plugin_configs(None).await.unwrap();
    assert!(configs.iter().all(|c| c.error.is_none() && c.enabled), "a dry run stores no plugin error: {configs:?}");
    assert_eq!(e.receiver.requests(), ["GET /lookup"], "only the GET went out");
    assert_eq!(log.committed("phs-ingestion").await.unwrap(), 0, "replay moves no consumer offset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_sends_nothing_and_the_human_output_is_a_readable_diff() {
    let e = embedded().await;
    let (code, out, err) = e.replay(&["--from-beginning", "--offline", "--color", "always"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(e.receiver.requests().is_empty(), "--offline sends no request: {:?}", e.receiver.requests());
    assert!(err.contains("dry run: nothing is written"), "the dry run says so first: {err}");
    assert!(out.contains("\x1b[32m+ properties.shaped = true"), "additions are green: {out}");
    assert!(out.contains("- properties.secret (was \"s\")"), "{out}");
    assert!(out.contains("~ event: \"rename\" -> \"renamed\""), "{out}");
    assert!(out.contains("dropped the event"), "{out}");
    assert!(out.contains("boom on u4"), "{out}");
    assert!(out.contains("── summary"), "{out}");
    assert!(out.contains("7 read, 7 matched"), "{out}");
    let (_, plain, _) = e.replay(&["--from-beginning", "--color", "never", "--offline"]);
    assert!(!plain.contains('\x1b'), "--color never has no escapes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_times_partitions_and_filters_select_the_events() {
    let e = embedded().await;
    let offsets = |reports: &[Value]| reports.iter().map(|r| r["offset"].as_i64().unwrap()).collect::<Vec<_>>();
    let (r, _) = e.replay_json(&["--from-offset", "2", "--to-offset", "4", "--offline"]);
    assert_eq!(offsets(&r), [2, 3, 4]);
    let (r, s) = e.replay_json(&["--from-beginning", "--limit", "2", "--offline"]);
    assert_eq!(offsets(&r), [1, 2]);
    assert_eq!(s["read"], 2);
    let (r, _) = e.replay_json(&["--from-beginning", "--event", "rename", "--offline"]);
    assert_eq!(offsets(&r), [2]);
    let (r, _) = e.replay_json(&["--from-beginning", "--distinct-id", "u4", "--offline"]);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["event"], "boom");
    let (r, _) = e.replay_json(&["--from-beginning", "--uuid", &e.uuids[4].1, "--offline"]);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["event"], "call");
    let (r, s) = e.replay_json(&["--from-beginning", "--team", "demo", "--offline"]);
    assert_eq!(r.len(), 5, "the invalid message and the stray token are not the team's");
    assert_eq!(s["read"], 7);
    let (r, _) = e.replay_json(&["--from-beginning", "--team", &e.token, "--offline"]);
    assert_eq!(r.len(), 5);
    let (r, _) = e.replay_json(&["--from-timestamp", "-1h", "--offline"]);
    assert_eq!(r.len(), 7);
    let (r, _) = e.replay_json(&["--from-beginning", "--until", "-1h", "--offline"]);
    assert!(r.is_empty(), "nothing was appended over an hour ago");
    let (r, _) = e.replay_json(&["--from-timestamp", "2099-01-01T00:00:00Z", "--offline"]);
    assert!(r.is_empty());
    let (r, _) = e.replay_json(&["--from-beginning", "--partition", "0", "--offline"]);
    assert_eq!(r.len(), 7);

    for (args, says) in [
        (vec!["--from-offset", "99"], "past the end of the local log"),
        (vec!["--from-offset", "0"], "older than the retained local log"),
        (vec!["--from-beginning", "--partition", "3"], "no partition 3"),
        (vec!["--from-offset", "4", "--to-offset", "2"], "before the first offset"),
        (vec!["--from-beginning", "--team", "nobody"], "no team `nobody`"),
        (vec!["--from-beginning", "--plugin-dir", "/nonexistent"], "does not load"),
    ] {
        let (code, _, err) = e.replay(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} should say `{says}`: {err}");
        assert_eq!(err.lines().filter(|l| l.starts_with("phs:")).count(), 1, "one clear line: {err}");
    }
}

fn fixed_gate(root: &Path) -> PathBuf {
    plugin_dir(&root.join("fix"), "Gate", json!([]), GATE_FIXED)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_prints_only_the_events_whose_output_differs() {
    let e = embedded().await;
    let fix = fixed_gate(&e.data);
    let (r, s) = e.replay_json(&["--from-beginning", "--compare", fix.to_str().unwrap(), "--offline"]);
    assert_eq!(r.len(), 1, "only the differing event is printed: {r:?}");
    let boom = &r[0];
    assert_eq!(boom["event"], "boom");
    assert_eq!(step(boom, "Gate")["outcome"], "failed");
    let local = boom["compare"]["local_steps"].as_array().unwrap();
    assert!(local.iter().any(|s| s["plugin"].as_str().unwrap().starts_with("Gate") && s["outcome"] == "dropped"));
    assert!(boom["compare"]["local_output"].is_null(), "the local version drops it");
    assert_eq!(s["differing"], 1);

    let (code, out, err) = e.replay(&["--from-beginning", "--compare", fix.to_str().unwrap(), "--offline"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.matches("── 0:").count(), 1, "only the differing event is printed: {out}");
    assert!(out.contains("installed -> local"), "{out}");
    assert!(out.contains("1 event differs"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_plugin_dir_or_chosen_configs_replace_the_installed_chain() {
    let e = embedded().await;
    let fix = fixed_gate(&e.data);
    let (r, _) = e.replay_json(&["--from-beginning", "--plugin-dir", fix.to_str().unwrap(), "--offline"]);
    assert_eq!(by_event(&r, "boom")["fate"], "dropped", "the local Gate runs instead of the installed one");
    let gate_only = e.gate_config.to_string();
    let (r, s) = e.replay_json(&["--from-beginning", "--plugin-config", &gate_only, "--offline"]);
    let keep = by_event(&r, "keep");
    assert_eq!(keep["steps"].as_array().unwrap().len(), 1, "only the chosen config runs: {keep}");
    assert!(keep["steps"][0]["plugin"].as_str().unwrap().starts_with("Gate"));
    assert!(s["plugins"].as_object().unwrap().keys().all(|k| k.starts_with("Gate")));

    let other = plugin_dir(&e.data.join("other"), "Not Installed", json!([]), GATE);
    let (code, _, err) = e.replay(&["--from-beginning", "--plugin-dir", other.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no installed plugin is named `Not Installed`"), "{err}");
    let broken = plugin_dir(&e.data.join("broken"), "Gate", json!([]), "function processEvent(event meta)");
    let (code, _, err) = e.replay(&["--from-beginning", "--plugin-dir", broken.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("does not load") && err.contains("index.lua"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reingest_writes_the_events_again_under_their_uuids() {
    let e = embedded().await;
    let (code, _, err) = e.replay(&["--from-beginning", "--reingest"]);
    assert_eq!(code, Some(2), "no terminal and no --yes: it refuses to guess: {err}");
    assert!(err.contains("pass --yes"), "{err}");
    assert_eq!(cli(&e.data, &["events", "list", "--json"]).trim(), "");

    // The original seven only: re-ingesting runs posthog.capture for real, which appends to the log.
    for round in 0..2 {
        let (code, out, err) = e.replay(&["--from-beginning", "--to-offset", "7", "--reingest", "--yes", "--offline"]);
        assert_eq!(code, Some(0), "round {round}: {err}");
        assert!(err.contains("re-ingest 5 events") && err.contains("2 invalid or of no team are left out"), "{err}");
        assert!(out.contains("5 re-ingested"), "{out}");
    }
    // "drop" is dropped by Gate; the other four are stored once each, under their uuids.
    let stored = wait_for_events(&e.data, 4);
    assert_eq!(stored.len(), 4, "a second re-ingest replaces, not duplicates: {stored:?}");
    let mut got: Vec<&str> = stored.iter().map(|r| r["uuid"].as_str().unwrap()).collect();
    got.sort_unstable();
    let mut want: Vec<&str> = e.uuids.iter().filter(|(ev, _)| ev != "drop").map(|(_, u)| u.as_str()).collect();
    want.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(e.log().await.committed("phs-ingestion").await.unwrap(), 0, "re-ingest moves no consumer offset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_that_pass_after_a_fix_are_reingested_and_removed() {
    use phs::pipeline::sink::{DeadLetter, DeadLetterQueue};
    use phs::wire::Message;
    let e = embedded().await;
    let log = e.log().await;
    // Two events refused by a bug since fixed, and one that is still invalid.
    let (a, a_uuid) = message(&e.token, "keep", "d1", json!({}));
    let (b, b_uuid) = message(&e.token, "keep", "d2", json!({}));
    let messages = [
        Message { partition: 0, offset: 100, payload: a },
        Message { partition: 0, offset: 101, payload: b },
        Message { partition: 0, offset: 102, payload: b"{still not json".to_vec() },
    ];
    let reasons = ["internal_error", "internal_error", "malformed_message"];
    let letters: Vec<DeadLetter> = messages
        .iter()
        .zip(reasons)
        .map(|(m, reason)| DeadLetter { message: m, reason, detail: "test".into(), stage: "persons", team_id: None })
        .collect();
    log.send(&letters).await.unwrap();

    let (r, _) = e.replay_json(&["--dead-letters", "--from-beginning", "--reason", "internal_error", "--offline"]);
    assert_eq!(r.len(), 2, "--reason selects by the letter's reason");
    assert_eq!(r[0]["dead_letter"]["reason"], "internal_error");

    let (code, out, err) = e.replay(&["--dead-letters", "--from-beginning", "--reingest", "--yes", "--offline"]);
    assert_eq!(code, Some(1), "one letter is refused again: {out} {err}");
    assert!(out.contains("first refused as internal_error: 2 passed, 0 refused again"), "{out}");
    assert!(
        out.contains("first refused as malformed_message: 0 passed, 1 refused again (malformed_message 1)"),
        "{out}"
    );
    let stored = wait_for_events(&e.data, 2);
    let uuids: Vec<&str> = stored.iter().map(|r| r["uuid"].as_str().unwrap()).collect();
    assert!(uuids.contains(&a_uuid.as_str()) && uuids.contains(&b_uuid.as_str()), "{uuids:?}");
    assert_eq!(
        log.dead_letter_counts().await.unwrap(),
        [("malformed_message".to_string(), 1)],
        "passed letters are removed, the refused one stays once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persons_shows_the_person_writes_against_real_persons_and_makes_none() {
    use phs::store::{NewDistinctId, NewPerson, PersonWrites};
    let e = embedded().await;
    let store = phs::store::connect(&crate::util::store_settings(None, &e.data)).await.unwrap();
    let team = store.team_by_token(&e.token).await.unwrap().unwrap().id;
    let known = uuid::Uuid::now_v7();
    let writes = PersonWrites {
        creates: vec![NewPerson {
            uuid: known,
            team_id: team,
            properties: json!({"plan": "free", "name": "Ada"}),
            created_at: chrono::Utc::now(),
            is_identified: false,
        }],
        updates: vec![],
        distinct_ids: vec![NewDistinctId { team_id: team, person_uuid: known, distinct_id: "p1".into() }],
    };
    store.write_persons(&writes).await.unwrap();
    let log = e.log().await;
    let (upgrade, _) = message(&e.token, "upgrade", "p1", json!({"$set": {"plan": "pro"}}));
    let (newcomer, _) = message(&e.token, "visit", "p2", json!({}));
    log.append(&[("a".into(), upgrade), ("b".into(), newcomer)]).await.unwrap();

    let (r, s) = e.replay_json(&["--from-offset", "8", "--persons", "--offline"]);
    assert_eq!(r.len(), 2, "{r:?}");
    let upgraded = &by_event(&r, "upgrade")["persons"];
    let update = upgraded.as_array().unwrap().iter().find(|w| w["change"] == "updated").expect("an update");
    assert_eq!(update["detail"]["person"], known.to_string());
    assert_eq!(update["detail"]["before"]["plan"], "free", "the real person was read");
    assert_eq!(update["detail"]["after"]["plan"], "pro");
    assert_eq!(update["detail"]["after"]["name"], "Ada");
    let visit = by_event(&r, "visit")["persons"].as_array().unwrap().clone();
    assert!(visit.iter().any(|w| w["change"] == "created"), "{visit:?}");
    assert!(
        visit.iter().any(|w| w["change"] == "distinct_id_added" && w["detail"]["distinct_id"] == "p2"),
        "{visit:?}"
    );
    assert!(
        s["side_effects"].get("person writes").is_none(),
        "person writes are shown per event, not as plugin side effects"
    );

    let (code, out, err) = e.replay(&["--from-offset", "8", "--persons", "--offline", "--color", "never"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("person updated") && out.contains("~ plan: \"free\" -> \"pro\""), "{out}");
    assert!(out.contains("distinct id added \"p2\""), "{out}");

    let p1 = store.person_by_distinct_id(team, "p1").await.unwrap().unwrap();
    assert_eq!(p1.properties["plan"], "free", "the real person is unchanged");
    assert_eq!(p1.version, 0);
    assert!(store.person_by_distinct_id(team, "p2").await.unwrap().is_none(), "no person was created for real");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_reads_new_messages_until_ctrl_c_then_prints_the_summary() {
    use std::io::BufRead;
    let e = embedded().await;
    let mut child = crate::util::phs()
        .args(["replay", "--from-offset", "7", "--follow", "--json", "--offline"])
        .envs(e.env())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let first = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("offset 7 is replayed");
    assert_eq!(serde_json::from_str::<Value>(&first).unwrap()["offset"], 7);
    // A message appended after replay started still comes, since it follows the log.
    let (late, late_uuid) = message(&e.token, "late", "u9", json!({}));
    e.log().await.append(&[("k".into(), late)]).await.unwrap();
    let second = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("the new message is replayed");
    assert_eq!(serde_json::from_str::<Value>(&second).unwrap()["uuid"], late_uuid);
    let ok = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let status = crate::util::eventually::eventually_blocking(
        std::time::Duration::from_secs(20),
        "replay to stop after Ctrl-C",
        || child.try_wait().unwrap().ok_or("still running"),
    );
    assert_eq!(status.code(), Some(130), "an interrupted run exits 130");
    let summary: Value = serde_json::from_str(&rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap()).unwrap();
    assert_eq!(summary["summary"]["interrupted"], true);
    assert_eq!(summary["summary"]["read"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_config_values_never_appear_in_the_output() {
    let e = embedded().await;
    let schema = json!([{"key": "token", "name": "Token", "type": "string", "secret": true}]);
    let code = r#"
function processEvent(event, meta)
  fetch("http://127.0.0.1:9/hook?key=" .. meta.config.token, { method = "POST" })
  event.properties.echo = meta.config.token
  if event.event == "boom" then error("bad token " .. meta.config.token) end
  return event
end
"#;
    let dir = plugin_dir(&e.data.join("leaky"), "Leaky", schema, code);
    cli(&e.data, &["plugins", "install", dir.to_str().unwrap()]);
    cli(&e.data, &["plugins", "enable", "Leaky", "--team", "demo"]);
    let secret = "s3cr3t-Value-42";
    cli(&e.data, &["plugins", "config", "Leaky", "--team", "demo", "--set", &format!("token={secret}")]);
    for args in [&["--side-effects", "--all"][..], &["--json", "--side-effects"][..]] {
        let mut all = vec!["--from-beginning", "--offline"];
        all.extend_from_slice(args);
        let (code, out, err) = e.replay(&all);
        assert_eq!(code, Some(0), "{err}");
        assert!(out.contains("bad token ********"), "the error is shown, its secret masked: {out}");
        assert!(out.contains("key=********"), "the request is shown, its secret masked: {out}");
        assert!(!out.contains(secret) && !err.contains(secret), "{args:?} shows the secret: {out}");
    }
}
