//! One behavioural suite for the database traits, run against both backends:
//! the embedded SQLite file and a fresh real Postgres database.

use std::sync::Arc;

use phs::store::{NewTeam, Store};

use crate::util::{postgres_store, sqlite_store};

fn new_team(name: &str) -> NewTeam {
    NewTeam { name: name.into(), anonymize_ips: false, api_token: None }
}

async fn teams_behave(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    assert!(store.list_teams().await.unwrap().is_empty());

    let a = store.create_team(new_team("A")).await.unwrap();
    let b = store
        .create_team(NewTeam { name: "B".into(), anonymize_ips: true, api_token: Some("phc_fixed".into()) })
        .await
        .unwrap();
    assert_ne!(a.id, b.id);
    assert_ne!(a.api_token, b.api_token);
    assert_eq!(b.api_token, "phc_fixed");
    assert!(b.anonymize_ips && !a.anonymize_ips);
    assert_eq!(a.organization_id, b.organization_id, "teams share the default organization");

    assert_eq!(store.team_by_token(&a.api_token).await.unwrap().as_ref(), Some(&a));
    assert_eq!(store.team_by_token("phc_nope").await.unwrap(), None);
    assert_eq!(store.team_by_id(b.id).await.unwrap().as_ref(), Some(&b));
    assert_eq!(store.team_by_id(999_999).await.unwrap(), None);

    let listed = store.list_teams().await.unwrap();
    assert_eq!(listed, vec![a.clone(), b.clone()]);

    // A duplicate token is refused, not silently merged.
    let dup = store
        .create_team(NewTeam { name: "C".into(), anonymize_ips: false, api_token: Some("phc_fixed".into()) })
        .await;
    assert!(dup.is_err());
    assert_eq!(dup.unwrap_err().kind(), phs::store::ErrorKind::Data);

    // Concurrent creators end up in one organization with distinct teams.
    let mut handles = Vec::new();
    for i in 0..8 {
        let s = store.clone();
        handles.push(tokio::spawn(async move { s.create_team(new_team(&format!("T{i}"))).await.unwrap() }));
    }
    for h in handles {
        let t = h.await.unwrap();
        assert_eq!(t.organization_id, a.organization_id);
    }
    assert_eq!(store.list_teams().await.unwrap().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    teams_behave(sqlite_store(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_postgres() {
    let dir = tempfile::tempdir().unwrap();
    teams_behave(postgres_store(&dir).await).await;
}

#[tokio::test]
async fn unreachable_postgres_is_a_transient_error_naming_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let down = crate::util::ClosedPort::new();
    let port = down.port;
    let s = crate::util::store_settings(Some(format!("postgres://postgres:secret@127.0.0.1:{port}/x")), dir.path());
    let err = phs::store::connect(&s).await.err().expect("nothing listens there");
    assert_eq!(err.kind(), phs::store::ErrorKind::Transient);
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")) && !msg.contains("secret"), "{msg}");
}

#[test]
fn sqlite_and_postgres_schemas_have_the_same_tables_and_columns() {
    fn shape(sql: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut table = String::new();
        for line in sql.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
                table = rest.split_whitespace().next().unwrap().to_string();
            } else if !table.is_empty() && !line.starts_with("--") && !line.starts_with("CONSTRAINT") {
                if let Some(col) = line
                    .split_whitespace()
                    .next()
                    .filter(|c| c.chars().all(|x| x.is_ascii_alphanumeric() || x == '_' || x == '"'))
                {
                    out.push(format!("{table}.{col}"));
                }
            }
        }
        out
    }
    let pg = shape(concat!(
        include_str!("../migrations/postgres/0001_posthog_core.sql"),
        include_str!("../migrations/postgres/0003_definitions_and_merges.sql")
    ));
    let lite = shape(concat!(
        include_str!("../migrations/sqlite/0001_posthog_core.sql"),
        include_str!("../migrations/sqlite/0003_definitions_and_merges.sql")
    ));
    assert!(pg.len() > 80, "parsed too few columns: {}", pg.len());
    assert_eq!(pg, lite);
}

async fn plugins_behave(store: Arc<dyn Store>) {
    use phs::store::{NewPlugin, PluginConfigUpdate, PluginLog};
    use serde_json::json;
    let team = store.create_team(new_team("P")).await.unwrap();
    let other = store.create_team(new_team("Q")).await.unwrap();
    let new = |code: &str| NewPlugin {
        name: "Hello".into(),
        description: Some("d".into()),
        url: None,
        config_schema: json!([{"key": "greeting", "type": "string"}]),
        capabilities: json!({"methods": ["processEvent"], "scheduled_tasks": [], "jobs": []}),
        files: vec![("index.lua".into(), code.into()), ("plugin.json".into(), r#"{"name": "Hello"}"#.into())],
    };
    let p = store.install_plugin(&new("-- v1")).await.unwrap();
    assert_eq!(p.capabilities["methods"][0], "processEvent");
    // Installing the same name again replaces the code, keeping the id.
    let p2 = store.install_plugin(&new("-- v2")).await.unwrap();
    assert_eq!(p2.id, p.id);
    assert_eq!(store.list_plugins().await.unwrap().len(), 1);
    let files = store.plugin_files(p.id).await.unwrap();
    assert_eq!(
        files,
        vec![
            ("index.lua".to_string(), "-- v2".to_string()),
            ("plugin.json".to_string(), r#"{"name": "Hello"}"#.to_string())
        ]
    );

    let c = store.plugin_config(team.id, p.id).await.unwrap();
    assert!(!c.enabled && c.order == 1 && c.config == json!({}));
    assert_eq!(store.plugin_config(team.id, p.id).await.unwrap().id, c.id, "get-or-create is idempotent");
    let updated = store
        .update_plugin_config(
            c.id,
            &PluginConfigUpdate {
                enabled: Some(true),
                config: Some(json!({"greeting": "hi"})),
                error: Some(Some(json!({"message": "boom"}))),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        updated.enabled && updated.config["greeting"] == "hi" && updated.error.as_ref().unwrap()["message"] == "boom"
    );
    // Past the clock's resolution, so a moved updated_at shows.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let cleared = store
        .update_plugin_config(c.id, &PluginConfigUpdate { error: Some(None), order: Some(5), ..Default::default() })
        .await
        .unwrap();
    assert!(cleared.error.is_none() && cleared.enabled && cleared.order == 5);
    assert!(cleared.updated_at > updated.updated_at, "a new order is a new config");
    // An error recorded on a config is not a new config: the runner keeps its state (and meta.global).
    let errored = store
        .update_plugin_config(
            c.id,
            &PluginConfigUpdate { error: Some(Some(json!({"message": "x"}))), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(errored.updated_at, cleared.updated_at, "recording an error keeps updated_at");
    let oc = store.plugin_config(other.id, p.id).await.unwrap();
    assert_eq!(store.list_plugin_configs(Some(team.id)).await.unwrap().len(), 1);
    assert_eq!(store.list_plugin_configs(None).await.unwrap().len(), 2);

    // Storage is per plugin config.
    assert_eq!(store.storage_get(c.id, "k").await.unwrap(), None);
    store.storage_set(c.id, "k", r#"{"a":1}"#).await.unwrap();
    store.storage_set(c.id, "k", r#"{"a":2}"#).await.unwrap();
    assert_eq!(store.storage_get(c.id, "k").await.unwrap().as_deref(), Some(r#"{"a":2}"#));
    assert_eq!(store.storage_get(oc.id, "k").await.unwrap(), None, "another team's config sees nothing");
    assert!(store.storage_del(c.id, "k").await.unwrap());
    assert!(!store.storage_del(c.id, "k").await.unwrap());
    assert!(store.storage_set_if_absent(c.id, "cursor", "10").await.unwrap());
    assert!(!store.storage_set_if_absent(c.id, "cursor", "99").await.unwrap());
    assert_eq!(store.storage_incr(c.id, "cursor", 5).await.unwrap(), 15);
    assert_eq!(store.storage_incr(c.id, "fresh", 3).await.unwrap(), 3);
    // Concurrent increments are atomic.
    let mut hs = Vec::new();
    for _ in 0..20 {
        let s = store.clone();
        hs.push(tokio::spawn(async move { s.storage_incr(c.id, "race", 1).await.unwrap() }));
    }
    for h in hs {
        h.await.unwrap();
    }
    assert_eq!(store.storage_get(c.id, "race").await.unwrap().as_deref(), Some("20"));
    store.storage_set(c.id, "text", r#""abc""#).await.unwrap();
    assert!(store.storage_incr(c.id, "text", 1).await.is_err());

    // Logs, oldest first, and only after a given time.
    let t0 = chrono::Utc::now();
    let log = |i: i64| PluginLog {
        id: uuid::Uuid::now_v7(),
        team_id: team.id,
        plugin_id: p.id,
        plugin_config_id: c.id,
        timestamp: t0 + chrono::Duration::milliseconds(i),
        source: "CONSOLE".into(),
        level: "LOG".into(),
        message: format!("m{i}"),
        instance_id: uuid::Uuid::nil(),
    };
    store.append_plugin_logs(&[log(1), log(2), log(3)]).await.unwrap();
    let all = store.plugin_logs(c.id, None, 100).await.unwrap();
    assert_eq!(all.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(), vec!["m1", "m2", "m3"]);
    let after = store.plugin_logs(c.id, Some(all[0].timestamp), 100).await.unwrap();
    assert_eq!(after.len(), 2);

    // Removing the plugin removes its configs, storage and logs.
    assert!(store.remove_plugin(p.id).await.unwrap());
    assert!(store.list_plugin_configs(None).await.unwrap().is_empty());
    assert_eq!(store.storage_get(c.id, "cursor").await.unwrap(), None);
    assert!(store.plugin_logs(c.id, None, 10).await.unwrap().is_empty());
    assert!(!store.remove_plugin(p.id).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    plugins_behave(sqlite_store(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_postgres() {
    let dir = tempfile::tempdir().unwrap();
    plugins_behave(postgres_store(&dir).await).await;
}

/// meta.storage and utils.cursor from Lua, through each real backend.
async fn lua_storage_behaves(store: Arc<dyn Store>) {
    use phs::plugins::{Context, Limits, Manifest, PluginSource, PluginVm, ProcessOutcome};
    use std::collections::BTreeMap;
    let team = store.create_team(new_team("L")).await.unwrap();
    let plugin = store
        .install_plugin(&phs::store::NewPlugin {
            name: "first-seen".into(),
            description: None,
            url: None,
            config_schema: serde_json::json!([]),
            capabilities: serde_json::json!({}),
            files: vec![],
        })
        .await
        .unwrap();
    let config = store.plugin_config(team.id, plugin.id).await.unwrap();
    let code = r#"
        function setupPlugin(meta) meta.utils.cursor.init("seq", 100) end
        function processEvent(event, meta)
          local key = "seen:" .. event.event
          local first = meta.storage:get(key, nil) == nil
          if first then meta.storage.set(key, {at = event.properties.n}) end
          event.properties.first_time = first
          event.properties.seq = meta.utils.cursor.increment("seq")
          if event.event == "forget" then meta.storage.set("seen:a", nil) end
          return event
        end"#;
    let source = PluginSource::new(
        Manifest::parse(r#"{"name": "first-seen"}"#).unwrap(),
        BTreeMap::from([("index.lua".to_string(), code.to_string())]),
    )
    .unwrap();
    // Trait upcasting: the whole store serves as the plugin's storage.
    let storage: Arc<dyn phs::store::PluginStorage> = store.clone();
    let ctx = Context {
        team_id: team.id,
        plugin_id: plugin.id,
        plugin_config_id: config.id,
        config: Default::default(),
        cache: Arc::new(phs::cache::memory::MemoryCache::default()),
        storage,
        jobs: store.clone(),
        logs: Arc::new(phs::plugins::logs::MemoryLog::default()),
        capture: None,
        fetch: Default::default(),
        attachments: Vec::new(),
        geoip: None,
    };
    let vm = PluginVm::load(&source, ctx, Limits::default()).unwrap();
    vm.setup().await.unwrap();
    let run = |name: &str, n: i64| serde_json::json!({"event": name, "properties": {"n": n}});
    let mut seen = Vec::new();
    for (name, n) in [("a", 1), ("a", 2), ("b", 3), ("forget", 4), ("a", 5)] {
        let ProcessOutcome::Event(e) = vm.process_event(&run(name, n)).await.unwrap() else { panic!() };
        seen.push((e["properties"]["first_time"].as_bool().unwrap(), e["properties"]["seq"].as_i64().unwrap()));
    }
    assert_eq!(seen, vec![(true, 101), (false, 102), (true, 103), (true, 104), (true, 105)]);
    assert_eq!(store.storage_get(config.id, "seen:b").await.unwrap().as_deref(), Some(r#"{"at":3}"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lua_storage_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    lua_storage_behaves(sqlite_store(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lua_storage_postgres() {
    let dir = tempfile::tempdir().unwrap();
    lua_storage_behaves(postgres_store(&dir).await).await;
}

/// The schedule lock of a deployment without Redis: one owner at a time,
/// extended by its owner, free once released or expired.
async fn locks_behave(store: Arc<dyn Store>) {
    use std::time::Duration;
    let ttl = Duration::from_millis(400);
    // Many instances asking at once: exactly one gets it.
    let asks = (0..8).map(|i| {
        let store = store.clone();
        async move { store.lock("schedule", &format!("instance{i}"), ttl).await.unwrap() }
    });
    let held = futures_util::future::join_all(asks).await;
    assert_eq!(held.iter().filter(|h| **h).count(), 1, "{held:?}");
    let owner = format!("instance{}", held.iter().position(|h| *h).unwrap());
    let other = if owner == "instance0" { "instance1" } else { "instance0" };
    assert!(store.lock("schedule", &owner, ttl).await.unwrap(), "the owner extends it");
    assert!(!store.lock("schedule", other, ttl).await.unwrap());
    assert!(store.lock("another", other, ttl).await.unwrap(), "keys are independent");
    // Unextended, it expires and passes on.
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert!(store.lock("schedule", other, ttl).await.unwrap(), "an expired lock passes on");
    assert!(!store.lock("schedule", &owner, ttl).await.unwrap());
    assert!(!store.unlock("schedule", &owner).await.unwrap(), "only the owner releases it");
    assert!(store.unlock("schedule", other).await.unwrap());
    assert!(store.lock("schedule", &owner, ttl).await.unwrap(), "a released lock is free");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    locks_behave(sqlite_store(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_postgres() {
    let dir = tempfile::tempdir().unwrap();
    locks_behave(postgres_store(&dir).await).await;
}
