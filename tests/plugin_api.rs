//! The parts of the plugin API beyond the core hooks: `meta.cache` lists,
//! `meta.attachments` and `meta.geoip`, on every backend they touch.

use std::sync::Arc;
use std::time::Duration;

use phs::cache::Cache;
use phs::plugins::logs::MemoryLog;
use phs::plugins::{Context, Limits, PluginVm, ProcessOutcome};

use crate::util::plugins::source;
use serde_json::{Value, json};

use crate::util::embedded::plugin_dir;
use crate::util::{redis_url, unique_id};

fn ctx(team_id: i64, cache: Arc<dyn Cache>) -> Context {
    crate::util::plugins::ctx(team_id, cache, Arc::new(MemoryLog::default()))
}

fn limits() -> Limits {
    Limits {
        memory: 16 * 1024 * 1024,
        process_event: Duration::from_millis(500),
        process_event_wall: Duration::from_secs(5),
        on_event: Duration::from_secs(1),
        task_cpu: Duration::from_secs(5),
        task: Duration::from_secs(5),
    }
}

/// Runs processEvent once and returns the resulting event's properties.
pub async fn props(vm: &PluginVm, event: Value) -> Value {
    match vm.process_event(&event).await {
        Ok(ProcessOutcome::Event(e)) => e["properties"].clone(),
        Ok(ProcessOutcome::Dropped) => panic!("dropped"),
        Err(e) => panic!("processEvent failed: {e}"),
    }
}

async fn cache_lists_from_lua(cache: Arc<dyn Cache>) {
    let code = r#"
        function processEvent(event, meta)
          local c, p = meta.cache, event.properties
          if event.event == "fill" then
            p.len1 = c:lpush("queue", "first")
            p.len2 = c:lpush("queue", {"a", 2, true, {k = 1}})
            p.all = c:lrange("queue", 0, -1)
            p.tail = c:lrange("queue", -2, -1)
            p.llen = c:llen("queue")
            p.removed = c:lrem("queue", 0, "2")
            p.popped = c:lpop("queue", 2)
            p.one = c:lpop("queue")
            p.rest = c:lrange("queue", 0, -1)
            p.none = c:lpop("missing", 5)
            local ok, err = pcall(function()
              local many = {} for i = 1, 1001 do many[i] = i end
              c:lpush("big", many)
            end)
            p.too_many = err and tostring(err):match("at most 1000") ~= nil
            p.big_len = c:llen("big")
          else
            p.other_team_len = c:llen("queue")
          end
          return event
        end"#;
    let (team_a, team_b) = (unique_id(), unique_id());
    let a = PluginVm::load(&source(code), ctx(team_a, cache.clone()), limits()).unwrap();
    let b = PluginVm::load(&source(code), ctx(team_b, cache.clone()), limits()).unwrap();
    let p = props(&a, json!({"event": "fill", "properties": {}})).await;
    assert_eq!(p["len1"], 1);
    assert_eq!(p["len2"], 5);
    assert_eq!(p["all"], json!([r#"{"k":1}"#, "true", "2", "a", "first"]), "stringified, last pushed first");
    assert_eq!(p["tail"], json!(["a", "first"]));
    assert_eq!(p["llen"], 5);
    assert_eq!(p["removed"], 1);
    assert_eq!(p["popped"], json!([r#"{"k":1}"#, "true"]));
    assert_eq!(p["one"], json!(["a"]));
    assert_eq!(p["rest"], json!(["first"]));
    assert_eq!(p["none"], json!([]));
    assert_eq!(p["too_many"], true, "{p}");
    assert_eq!(p["big_len"], 0, "a refused lpush pushes nothing");
    let other = props(&b, json!({"event": "read", "properties": {}})).await;
    assert_eq!(other["other_team_len"], 0, "team B saw team A's list");
    // The keys carry the original's prefix.
    let key = format!("@plugin/7/{team_a}/queue");
    assert_eq!(cache.lrange(&key, 0, -1).await.unwrap(), vec!["first".to_string()]);
}

#[tokio::test]
async fn cache_lists_in_memory() {
    cache_lists_from_lua(Arc::new(phs::cache::memory::MemoryCache::default())).await;
}

#[tokio::test]
async fn cache_lists_in_redis() {
    let url = url::Url::parse(&redis_url()).unwrap();
    cache_lists_from_lua(phs::cache::connect(Some(&url)).await.unwrap()).await;
}

const ATTACHMENT_PLUGIN: &str = r#"
    function processEvent(event, meta)
      local a = meta.attachments.rules
      if a then
        event.properties.file_name = a.file_name
        event.properties.content_type = a.content_type
        event.properties.rules = json.decode(a.contents)
        event.properties.bytes = #meta.attachments.blob.contents
      end
      event.properties.missing = meta.attachments.nothing == nil
      return event
    end"#;

async fn attachments_behave(store: Arc<dyn phs::store::Store>) {
    use phs::plugins::registry;
    use phs::plugins::runner::{Backends, Outcome, PluginRunner, RunnerOptions};
    let tmp = tempfile::tempdir().unwrap();
    let schema = json!([
        {"key": "rules", "type": "attachment", "required": true},
        {"key": "blob", "type": "attachment", "secret": true},
        {"key": "nothing", "type": "attachment"},
        {"key": "mode", "type": "string", "default": "x"}
    ]);
    let dir = plugin_dir(tmp.path(), &crate::util::unique("attach"), schema, ATTACHMENT_PLUGIN);
    let rules = tmp.path().join("rules.json");
    std::fs::write(&rules, r#"{"rename": {"a": "b"}}"#).unwrap();
    let blob = tmp.path().join("data.bin");
    std::fs::write(&blob, [0u8, 255, 1, 0, 7]).unwrap();

    let plugin = registry::install(store.as_ref(), &dir).await.unwrap();
    let team = store
        .create_team(phs::store::NewTeam { name: "attach".into(), anonymize_ips: false, api_token: None })
        .await
        .unwrap();
    // A required attachment must be there before enabling.
    let err = registry::enable(store.as_ref(), &team, &plugin).await.unwrap_err().to_string();
    assert!(err.contains("rules") && err.contains("@PATH"), "{err}");
    let err = registry::configure(store.as_ref(), &team, &plugin, &[("rules".into(), "inline".into())])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("rules") && err.contains("@PATH"), "{err}");
    let err = registry::configure(store.as_ref(), &team, &plugin, &[("rules".into(), "@/nonexistent/x.json".into())])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/x.json"), "{err}");

    let set = [("rules".to_string(), format!("@{}", rules.display())), ("blob".into(), format!("@{}", blob.display()))];
    let config = registry::configure(store.as_ref(), &team, &plugin, &set).await.unwrap();
    // Setting again replaces, never duplicates.
    registry::configure(store.as_ref(), &team, &plugin, &set[..1]).await.unwrap();
    let stored = store.plugin_attachments(config.id).await.unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
    let shown = registry::masked(&plugin, &config, &stored);
    assert_eq!(shown["rules"], json!({"file_name": "rules.json", "content_type": "application/json", "size": 22}));
    assert_eq!(shown["blob"], "********", "a secret attachment is masked");
    registry::enable(store.as_ref(), &team, &plugin).await.unwrap();

    // The pipeline's states see them as meta.attachments.
    let cache: Arc<dyn Cache> = Arc::new(phs::cache::memory::MemoryCache::default());
    let runner =
        PluginRunner::new(Backends::of(store.clone(), cache), None, RunnerOptions::default(), uuid::Uuid::now_v7());
    let event = json!({"event": "e", "distinct_id": "d", "properties": {}});
    let Outcome::Event(out) = runner.process(team.id, event.as_object().unwrap().clone()).await else {
        panic!("dropped")
    };
    let p = &out["properties"];
    assert_eq!(p["file_name"], "rules.json", "{p}");
    assert_eq!(p["content_type"], "application/json");
    assert_eq!(p["rules"], json!({"rename": {"a": "b"}}));
    assert_eq!(p["bytes"], 5, "binary contents arrive whole");
    assert_eq!(p["missing"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    attachments_behave(crate::util::sqlite_store(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_postgres() {
    let dir = tempfile::tempdir().unwrap();
    attachments_behave(crate::util::postgres_store(&dir).await).await;
}

#[test]
fn plugins_config_sets_an_attachment_from_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let env = [("PHS_DATA_DIR", tmp.path().join("data").display().to_string())];
    let run = |args: &[&str]| crate::util::phs_with(&env, args);
    let schema = json!([{"key": "rules", "type": "attachment"}]);
    let dir = plugin_dir(tmp.path(), "Attach CLI", schema, ATTACHMENT_PLUGIN);
    let file = tmp.path().join("list.csv");
    std::fs::write(&file, "a,b\n1,2\n").unwrap();
    let (code, team, err) = run(&["teams", "create", "t"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&["plugins", "install", dir.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let set = format!("rules=@{}", file.display());
    let (code, out, err) = run(&["plugins", "config", "Attach CLI", "--team", team.trim(), "--set", &set]);
    assert_eq!(code, Some(0), "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["rules"], json!({"file_name": "list.csv", "content_type": "text/csv", "size": 8}));
    let (code, _, err) = run(&["plugins", "config", "Attach CLI", "--team", team.trim(), "--set", "rules=@/no/such"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("rules") && err.contains("/no/such"), "{err}");
}

/// A City record as MaxMind's databases hold it.
pub fn london() -> Value {
    json!({
        "city": {"geoname_id": 2643743, "names": {"en": "London", "de": "London"}},
        "continent": {"code": "EU", "geoname_id": 6255148, "names": {"en": "Europe"}},
        "country": {"geoname_id": 2635167, "iso_code": "GB", "names": {"en": "United Kingdom"}},
        "location": {"accuracy_radius": 100, "latitude": 51.5142, "longitude": -0.0931, "time_zone": "Europe/London"},
        "postal": {"code": "EC2V"},
        "subdivisions": [{"geoname_id": 6269131, "iso_code": "ENG", "names": {"en": "England"}}]
    })
}

/// Writes a small City database with the test's own writer.
pub fn mmdb_file(dir: &std::path::Path) -> std::path::PathBuf {
    let bytes = phs::plugins::geoip::writer::write(&[
        ("81.2.69.0/24".into(), london()),
        ("2a02:c7f::/32".into(), json!({"country": {"iso_code": "GB", "names": {"en": "United Kingdom"}}})),
    ])
    .unwrap();
    let path = dir.join("City.mmdb");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[tokio::test]
async fn geoip_locate_returns_city_records_or_nil() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Arc::new(phs::plugins::geoip::GeoIp::open(&mmdb_file(tmp.path())).unwrap());
    let code = r#"
        function processEvent(event, meta)
          local p = event.properties
          local r = meta.geoip.locate(p.ip)
          p.city = r and r.city.names.en
          p.country = r and r.country.iso_code
          p.continent = r and r.continent.code
          p.lat = r and r.location.latitude
          p.tz = r and r.location.time_zone
          p.postal = r and r.postal.code
          p.sub = r and r.subdivisions[1].iso_code
          p.method_call = meta.geoip:locate(p.ip) ~= nil
          p.v6 = meta.geoip.locate("2a02:c7f:1::1").country.iso_code
          p.unknown = meta.geoip.locate("8.8.8.8") == nil
          local ok, err = pcall(meta.geoip.locate, "not-an-ip")
          p.bad = tostring(err)
          return event
        end"#;
    let mut c = ctx(1, Arc::new(phs::cache::memory::MemoryCache::default()));
    c.geoip = Some(db);
    let vm = PluginVm::load(&source(code), c, limits()).unwrap();
    let p = props(&vm, json!({"event": "e", "properties": {"ip": "81.2.69.142"}})).await;
    assert_eq!(
        (&p["city"], &p["country"], &p["continent"], &p["tz"], &p["postal"], &p["sub"]),
        (&json!("London"), &json!("GB"), &json!("EU"), &json!("Europe/London"), &json!("EC2V"), &json!("ENG"))
    );
    assert_eq!(p["lat"], 51.5142);
    assert_eq!(p["method_call"], true);
    assert_eq!(p["v6"], "GB");
    assert_eq!(p["unknown"], true);
    assert!(p["bad"].as_str().unwrap().contains("`not-an-ip` is not an IP address"), "{p}");

    // Without a database, locate raises a clear error.
    let vm =
        PluginVm::load(&source(code), ctx(2, Arc::new(phs::cache::memory::MemoryCache::default())), limits()).unwrap();
    let err = vm.process_event(&json!({"event": "e", "properties": {"ip": "81.2.69.142"}})).await.unwrap_err();
    assert!(err.to_string().contains("no GeoIP database is configured (MMDB_FILE_LOCATION)"), "{err}");
}

#[test]
fn unreadable_geoip_databases_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.mmdb");
    std::fs::write(&junk, b"not a database").unwrap();
    for (path, says) in [("/no/such/City.mmdb", "cannot read"), (junk.to_str().unwrap(), "not a valid MaxMind DB")] {
        let out = crate::util::phs()
            .args(["serve", "--data-dir"])
            .arg(tmp.path())
            .env("MMDB_FILE_LOCATION", path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", crate::util::stderr(&out));
        let err = crate::util::stderr(&out);
        assert!(err.contains("MMDB_FILE_LOCATION") && err.contains(says), "{err}");
        let out = crate::util::phs()
            .args(["plugins", "test", "lua-plugins/hello-world", "--geoip-db", path])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", crate::util::stderr(&out));
        assert!(crate::util::stderr(&out).contains(says));
    }
}

/// (path in the archive, contents) of the bundled Hello World plugin, under `prefix`.
fn hello_world_entries(prefix: &str) -> Vec<(String, Vec<u8>)> {
    ["plugin.json", "index.lua", "README.md"]
        .iter()
        .map(|f| (format!("{prefix}{f}"), std::fs::read(format!("lua-plugins/hello-world/{f}")).unwrap()))
        .collect()
}

fn write_zip(path: &std::path::Path, entries: &[(String, Vec<u8>)]) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        zip.start_file(name.as_str(), opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// Writes names as given, `..` included (tar::Builder would refuse them).
fn write_tgz(path: &std::path::Path, entries: &[(String, Vec<u8>)]) {
    let gz = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append(&header, bytes.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn plugins_install_from_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let env = [("PHS_DATA_DIR", tmp.path().join("data").display().to_string())];
    let install = |archive: &std::path::Path| {
        let out = crate::util::phs()
            .args(["plugins", "install"])
            .arg(archive)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        (out.status.code(), crate::util::stderr(&out))
    };
    let good = [
        ("folder.zip", hello_world_entries("hello-world-main/")),
        ("flat.tar.gz", hello_world_entries("")),
        ("folder.tgz", hello_world_entries("plugin/")),
        ("flat.zip", hello_world_entries("./")),
    ];
    for (name, entries) in &good {
        let path = tmp.path().join(name);
        if name.ends_with(".zip") {
            write_zip(&path, entries)
        } else {
            write_tgz(&path, entries)
        }
        let (code, err) = install(&path);
        assert_eq!(code, Some(0), "{name}: {err}");
        assert!(err.contains("\"Hello World\"") && err.contains("processEvent"), "{name}: {err}");
    }
    let out = crate::util::phs()
        .args(["plugins", "list", "--json"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["plugins"].as_array().unwrap().len(), 1, "the same plugin, updated");

    let mut traversal = hello_world_entries("");
    traversal.push(("../evil.lua".into(), b"os.exit()".to_vec()));
    let mut two_roots = hello_world_entries("a/");
    two_roots.extend(hello_world_entries("b/"));
    let mut oversized = hello_world_entries("p/");
    oversized.push(("p/lib/huge.lua".into(), vec![b'-'; 2 * 1024 * 1024]));
    let absolute = vec![("/etc/plugin.json".to_string(), b"{}".to_vec())];
    type Bad = (&'static str, Vec<(String, Vec<u8>)>, &'static str);
    let bad: Vec<Bad> = vec![
        ("traversal.zip", traversal.clone(), "`../evil.lua` points outside the archive"),
        ("traversal.tar.gz", traversal, "`../evil.lua` points outside the archive"),
        ("absolute.zip", absolute, "`/etc/plugin.json` points outside the archive"),
        ("empty.zip", vec![("README.md".into(), b"hi".to_vec())], "no plugin.json"),
        ("two-roots.tgz", two_roots, "no plugin.json"),
        ("oversized.zip", oversized, "`p/lib/huge.lua` is 2097152 bytes"),
    ];
    for (name, entries, says) in bad {
        let path = tmp.path().join(name);
        if name.ends_with(".zip") {
            write_zip(&path, &entries)
        } else {
            write_tgz(&path, &entries)
        }
        let (code, err) = install(&path);
        assert_eq!(code, Some(2), "{name}: {err}");
        assert!(err.contains(says), "{name}: {err}");
    }
    let junk = tmp.path().join("junk.zip");
    std::fs::write(&junk, b"not a zip").unwrap();
    let (code, err) = install(&junk);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot read the archive"), "{err}");
    let other = tmp.path().join("plugin.rar");
    std::fs::write(&other, b"x").unwrap();
    let (code, err) = install(&other);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("expected a .zip, .tar.gz or .tgz"), "{err}");
}

/// Two teams' configs of one plugin on one database: whatever key a plugin
/// asks for, storage stays per config.
async fn storage_isolation(store: Arc<dyn phs::store::Store>) {
    let tmp = tempfile::tempdir().unwrap();
    let code = r#"
        function processEvent(event, meta)
          local p = event.properties
          if event.event == "write" then meta.storage:set("secret", "mine") end
          p.secret = meta.storage:get("secret", "none")
          for _, k in ipairs({"../secret", "1/secret", "%", "' OR 1=1 --"}) do
            if meta.storage:get(k) ~= nil then p.leaked = k end
          end
          p.cursor = meta.utils.cursor.increment("n")
          return event
        end"#;
    let dir = plugin_dir(tmp.path(), &crate::util::unique("storage"), json!([]), code);
    let plugin = phs::plugins::registry::install(store.as_ref(), &dir).await.unwrap();
    let mut vms = Vec::new();
    for name in ["a", "b"] {
        let team = store
            .create_team(phs::store::NewTeam { name: name.into(), anonymize_ips: false, api_token: None })
            .await
            .unwrap();
        let config = store.plugin_config(team.id, plugin.id).await.unwrap();
        let mut c = ctx(team.id, Arc::new(phs::cache::memory::MemoryCache::default()));
        c.plugin_id = plugin.id;
        c.plugin_config_id = config.id;
        c.storage = store.clone();
        vms.push(PluginVm::load(&source(code), c, limits()).unwrap());
    }
    let a = props(&vms[0], json!({"event": "write", "properties": {}})).await;
    assert_eq!((&a["secret"], &a["cursor"]), (&json!("mine"), &json!(1)));
    let b = props(&vms[1], json!({"event": "read", "properties": {}})).await;
    assert_eq!(b["secret"], "none", "team B read team A's storage");
    assert_eq!(b.get("leaked"), None, "{b}");
    assert_eq!(b["cursor"], 1, "cursors are per config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_is_per_config_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    storage_isolation(crate::util::sqlite_store(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_is_per_config_postgres() {
    let dir = tempfile::tempdir().unwrap();
    storage_isolation(crate::util::postgres_store(&dir).await).await;
}

/// Logs, throws and errors with its secret config value.
const LEAKY_PLUGIN: &str = r#"
function processEvent(event, meta)
  console.log("calling with " .. meta.config.token)
  error("rejected token " .. meta.config.token)
end"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_config_value_is_masked_in_logs_stored_errors_and_the_error_stream() {
    use phs::plugins::registry;
    use phs::plugins::runner::{Backends, PluginRunner, RunnerOptions};
    let tmp = tempfile::tempdir().unwrap();
    let store = crate::util::sqlite_store(&tmp).await;
    let schema = json!([{"key": "token", "type": "string", "secret": true, "required": true}]);
    let dir = plugin_dir(tmp.path(), &crate::util::unique("leaky"), schema, LEAKY_PLUGIN);
    let plugin = registry::install(store.as_ref(), &dir).await.unwrap();
    let team = store
        .create_team(phs::store::NewTeam { name: "leaky".into(), anonymize_ips: false, api_token: None })
        .await
        .unwrap();
    let secret = format!("tok-{}", crate::util::unique("s"));
    let config =
        registry::configure(store.as_ref(), &team, &plugin, &[("token".into(), secret.clone())]).await.unwrap();
    registry::enable(store.as_ref(), &team, &plugin).await.unwrap();
    let cache: Arc<dyn Cache> = Arc::new(phs::cache::memory::MemoryCache::default());
    let runner =
        PluginRunner::new(Backends::of(store.clone(), cache), None, RunnerOptions::default(), uuid::Uuid::now_v7());
    let event = json!({"event": "e", "distinct_id": "d", "properties": {}});
    runner.process(team.id, event.as_object().unwrap().clone()).await;
    runner.flush_logs().await;

    let logs = store.plugin_logs(config.id, None, 100).await.unwrap();
    let messages: Vec<&str> = logs.iter().map(|l| l.message.as_str()).collect();
    assert!(messages.iter().any(|m| m.contains("calling with ********")), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("rejected token ********")), "{messages:?}");
    assert!(messages.iter().all(|m| !m.contains(&secret)), "a log entry shows the secret: {messages:?}");
    let stored = store.list_plugin_configs(Some(team.id)).await.unwrap()[0].error.clone().unwrap();
    assert!(stored["message"].as_str().unwrap().contains("rejected token ********"), "{stored}");
    assert!(!stored.to_string().contains(&secret), "the stored error shows the secret: {stored}");
    let stream = serde_json::to_string(&phs::metrics::global().recent_errors()).unwrap();
    assert!(stream.contains("rejected token ********") && !stream.contains(&secret), "{stream}");
}
