//! Tenant isolation, tried as a hostile plugin author would: a plugin config
//! reaches only its own team's attachments, jobs and events (cache and
//! storage: `plugin_containment.rs`, `plugin_api.rs`, `plugins.rs`); the
//! admin listener binds to loopback by default; and a secret config value
//! never shows in `phs plugins list`, `phs plugins logs`, `/_snapshot`,
//! `phs top` (its JSON, its text and its screen in a real terminal) or the
//! server's own log, even when the plugin logs it, throws it, or puts it in
//! the event its error is shown with.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::embedded::{cli, plugin_dir, post, team, team_events as events_of};
use crate::util::eventually::eventually_blocking;
use crate::util::server::{start, wait_healthy};
use crate::util::{phs, stdout, unique};

/// One plugin, a config per team. Team A's config attacks; every config
/// reports what it can see.
const PROBE: &str = r#"
    jobs = {
      record = function(payload, meta)
        posthog.capture("job ran", {distinct_id = "jobs", ran_as = meta.config.name, asked_for = payload.team_id})
      end,
      -- phs's own job name: never offered in meta.jobs.
      ["$events"] = function(payload, meta) posthog.capture("fake events job ran", {distinct_id = "jobs"}) end,
    }
    function processEvent(event, meta)
      local p = event.properties
      p.seen_by = meta.config.name
      p.attachment = meta.attachments.file and meta.attachments.file.contents or "none"
      if meta.config.name ~= "A" then return event end
      if event.event == "jobs" then
        -- The payload names team B's ids; the job still runs for this config.
        meta.jobs.record({team_id = p.victim_team, plugin_config_id = p.victim_config}):runNow()
        p.dollar_job = tostring(meta.jobs["$events"])
      elseif event.event == "spoof" then
        local v = p.victim_token
        posthog.capture("spoofed", {distinct_id = "x", token = v, api_key = v, ["$token"] = v,
          team_id = p.victim_team, ["$set"] = {stolen = true}})
        posthog.capture("spoofed", {distinct_id = v .. ":x", properties = {token = v}})
      elseif event.event == "move" then
        event.team_id = p.victim_team
      elseif event.event == "overwrite" then
        event.uuid = p.victim_uuid
      end
      return event
    end"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_config_reaches_only_its_own_teams_attachments_jobs_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let (a, a_token) = team(&d, "attacker");
    let (b, b_token) = team(&d, "victim");
    let schema = json!([{"key": "name", "type": "string"}, {"key": "file", "type": "attachment"}]);
    cli(&d, &["plugins", "install", plugin_dir(&d, "probe", schema, PROBE).to_str().unwrap()]);
    for (name, token) in [("A", &a_token), ("B", &b_token)] {
        let file = d.join(format!("{name}.txt"));
        std::fs::write(&file, format!("{name}'s file")).unwrap();
        let file = format!("file=@{}", file.display());
        cli(&d, &["plugins", "config", "probe", "--team", token, "--set", &format!("name={name}"), "--set", &file]);
        cli(&d, &["plugins", "enable", "probe", "--team", token]);
    }
    let listed: Value = serde_json::from_str(&cli(&d, &["plugins", "list", "--json"])).unwrap();
    let b_config = listed["configs"].as_array().unwrap().iter().find(|c| c["team_id"] == b).unwrap()["id"].clone();

    let mut server = start(&[("PHS_DATA_DIR", d.display().to_string())]);
    wait_healthy(&mut server);
    let url = format!("http://{}/batch/", server.capture);
    let victim_uuid = uuid::Uuid::new_v4().to_string();
    let body = json!({"api_key": b_token, "batch": [{"event": "b1", "distinct_id": "v", "uuid": victim_uuid}]});
    assert_eq!(post(&url, "application/json", body.to_string().into_bytes()).await.0, 200);
    eventually_blocking(Duration::from_secs(30), "team B's event", || {
        let n = events_of(&d, b).len();
        if n == 1 { Ok(()) } else { Err(format!("{n} stored")) }
    });
    let victim =
        json!({"victim_team": b, "victim_config": b_config, "victim_token": b_token, "victim_uuid": victim_uuid});
    let batch: Vec<Value> = ["plain", "jobs", "spoof", "move", "overwrite"]
        .iter()
        .map(|e| json!({"event": e, "distinct_id": "attacker", "properties": victim}))
        .collect();
    let body = json!({"api_key": a_token, "batch": batch});
    assert_eq!(post(&url, "application/json", body.to_string().into_bytes()).await.0, 200);

    // A's five events, the job's capture and two spoofed captures, all in team A.
    let rows = eventually_blocking(Duration::from_secs(40), "team A's events and captures", || {
        let rows = events_of(&d, a);
        if rows.len() >= 8 { Ok(rows) } else { Err(format!("{rows:?}")) }
    });
    let by = |name: &str| -> Vec<&Value> { rows.iter().filter(|r| r["event"] == name).collect() };
    assert_eq!(by("plain")[0]["properties"]["attachment"], "A's file");
    assert_eq!(by("plain")[0]["properties"]["seen_by"], "A");
    let job = by("job ran");
    assert_eq!(job.len(), 1, "{rows:?}");
    assert_eq!(job[0]["properties"]["ran_as"], "A", "the job ran for another config: {}", job[0]);
    assert_eq!(by("jobs")[0]["properties"]["dollar_job"], "nil", "meta.jobs offered phs's own `$events` job");
    assert!(by("fake events job ran").is_empty());
    assert_eq!(by("spoofed").len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r["team_id"] == a), "{rows:?}");
    for changed in ["move", "overwrite"] {
        let e = by(changed)[0];
        assert_eq!(e["properties"]["$plugins_failed"].as_array().map(Vec::len), Some(1), "{changed}: {e}");
        assert_eq!(e["properties"]["seen_by"], Value::Null, "{changed}: the changed event was kept");
    }
    assert_ne!(by("overwrite")[0]["uuid"], victim_uuid.as_str());

    // Team B still has exactly its own event, unchanged, seen by its own config only.
    std::thread::sleep(Duration::from_secs(2));
    let theirs = events_of(&d, b);
    assert_eq!(theirs.len(), 1, "an event landed in team B: {theirs:?}");
    let p = &theirs[0]["properties"];
    assert_eq!(
        (theirs[0]["uuid"].as_str(), &p["seen_by"], &p["attachment"]),
        (Some(victim_uuid.as_str()), &json!("B"), &json!("B's file"))
    );
    let logs = cli(&d, &["plugins", "logs", &b_config.to_string()]);
    assert!(!logs.contains("changed"), "team A's failures were logged on team B's config: {logs}");
}

#[test]
fn the_admin_listener_binds_to_loopback_by_default() {
    use clap::CommandFactory;
    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        settings: phs::config::ServeSettings,
    }
    let command = Serve::command();
    let default = |id: &str| -> std::net::SocketAddr {
        let arg = command.get_arguments().find(|a| a.get_id() == id).unwrap_or_else(|| panic!("no {id} setting"));
        let value = arg.get_default_values().first().unwrap_or_else(|| panic!("{id} has no default"));
        value.to_str().unwrap().parse().unwrap()
    };
    let admin = default("admin_addr");
    assert!(admin.ip().is_loopback(), "ADMIN_ADDR defaults to {admin}");
    assert_eq!(admin.ip().to_string(), "127.0.0.1");
    // The capture endpoint too: exposing it is a deliberate CAPTURE_ADDR.
    assert!(default("capture_addr").ip().is_loopback());
}

const LEAKY: &str = r#"
    function processEvent(event, meta)
      local s = meta.config.api_key
      console.log("calling with", s, {key = s})
      print(s)
      console.error(json.encode({nested = {s}}))
      -- Stored with the event (the plugin's own choice), and shown with onEvent's error below.
      event.properties.leak = s
      if event.event == "throw" then error("rejected " .. s) end
      return event
    end
    function onEvent(event, meta) error("onEvent saw " .. meta.config.api_key) end"#;

const LEAKY_SETUP: &str = r#"
    function setupPlugin(meta) error("cannot log in with " .. meta.config.api_key) end
    function processEvent(event) return event end"#;

fn tmux(args: &[&str]) -> Output {
    Command::new("tmux").args(args).output().unwrap_or_else(|e| {
        panic!("tmux is needed for the terminal test and could not run ({e}); scripts/test installs it")
    })
}

struct Session(String);
impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_config_value_never_shows_in_listings_snapshots_top_or_logs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let secret = format!("sk-{}", unique("secret"));
    let schema = json!([{"key": "api_key", "type": "string", "secret": true, "required": true}]);
    let (_, token) = team(&d, "leaky");
    for (name, code) in [("leaky", LEAKY), ("leaky setup", LEAKY_SETUP)] {
        cli(&d, &["plugins", "install", plugin_dir(&d, name, schema.clone(), code).to_str().unwrap()]);
        cli(&d, &["plugins", "config", name, "--team", &token, "--set", &format!("api_key={secret}")]);
        cli(&d, &["plugins", "enable", name, "--team", &token]);
    }
    let log = d.join("serve.log");
    let env = [("PHS_DATA_DIR", d.display().to_string()), ("LOG_LEVEL", "debug".into())];
    let mut server = crate::util::server::start_logged(&env, &log);
    wait_healthy(&mut server);
    let url = format!("http://{}/batch/", server.capture);
    // setupPlugin is tried again on each event: six events disable "leaky setup" with its error as the reason.
    for name in ["plain", "throw", "plain", "throw", "plain", "throw"] {
        let body = json!({"api_key": token, "batch": [{"event": name, "distinct_id": "d"}]});
        assert_eq!(post(&url, "application/json", body.to_string().into_bytes()).await.0, 200);
    }
    let listed = eventually_blocking(Duration::from_secs(40), "the setup failures disabling its config", || {
        let listed = cli(&d, &["plugins", "list", "--json"]);
        if listed.contains("setupPlugin failed 5 times") { Ok(listed) } else { Err(listed) }
    });
    let logs_of = |id: &str| cli(&d, &["plugins", "logs", id]);
    let logs = eventually_blocking(Duration::from_secs(30), "onEvent's errors in the log", || {
        let logs = logs_of("1");
        if logs.contains("onEvent saw") { Ok(logs) } else { Err(logs) }
    });
    let masked = "********";
    for (what, text) in [
        ("plugins list --json", listed.clone()),
        ("plugins list", cli(&d, &["plugins", "list"])),
        ("plugins config", cli(&d, &["plugins", "config", "leaky", "--team", &token])),
        ("plugins logs 1", logs.clone()),
        ("plugins logs 2", logs_of("2")),
    ] {
        assert!(!text.contains(&secret), "{what} shows the secret:\n{text}");
    }
    assert!(logs.contains(&format!("calling with {masked}")) && logs.contains(&format!("rejected {masked}")), "{logs}");
    assert!(listed.contains(&format!("cannot log in with {masked}")), "the disable reason is not shown: {listed}");

    let snapshot = reqwest::get(format!("http://{}/_snapshot", server.addr)).await.unwrap().text().await.unwrap();
    assert!(!snapshot.contains(&secret), "/_snapshot shows the secret: {snapshot}");
    assert!(snapshot.contains(masked), "/_snapshot has no masked error to show: {snapshot}");
    for args in [&["--once", "--json"][..], &["--once"][..]] {
        let out = phs().arg("top").args(args).args(["--server", &server.addr]).output().unwrap();
        assert!(!stdout(&out).contains(&secret), "phs top {args:?} shows the secret: {}", stdout(&out));
    }

    // The real screen, with the newest error's details (traceback and event) open.
    let session = Session(unique("phs_top_secret"));
    let command = format!("{} top --server {} --interval 0.5", env!("CARGO_BIN_EXE_phs"), server.addr);
    assert!(tmux(&["new-session", "-d", "-s", &session.0, "-x", "160", "-y", "50", &command]).status.success());
    let screen = |needle: &str| {
        eventually_blocking(Duration::from_secs(20), &format!("`{needle}` on the screen"), || {
            let screen = stdout(&tmux(&["capture-pane", "-p", "-t", &session.0]));
            if screen.contains(needle) { Ok(screen) } else { Err(screen) }
        })
    };
    screen("Plugin errors");
    tmux(&["send-keys", "-t", &session.0, "BTab"]);
    tmux(&["send-keys", "-t", &session.0, "Enter"]);
    // "(config N)" is only in the details window.
    let details = screen("(config ");
    assert!(details.contains(masked) && !details.contains(&secret), "phs top's screen:\n{details}");

    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(&secret), "the server's log shows the secret");
}
