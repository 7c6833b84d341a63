//! The embedded deployment from a test's side: `phs` commands on a data
//! directory, its stored events, requests to the capture endpoint, and
//! plugin folders to install.

use std::time::Duration;

use serde_json::{Value, json};

/// `phs ARGS` on the embedded data directory `dir`, which must succeed: its stdout.
pub fn cli(dir: &std::path::Path, args: &[&str]) -> String {
    crate::util::phs_ok(&[("PHS_DATA_DIR", dir.display().to_string())], args)
}

/// Polls `phs events list --json` until `n` events are stored.
pub fn wait_for_events(dir: &std::path::Path, n: usize) -> Vec<Value> {
    crate::util::eventually::eventually_blocking(Duration::from_secs(30), &format!("{n} stored events"), || {
        let out = cli(dir, &["events", "list", "--json", "--limit", "100000"]);
        let rows: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if rows.len() >= n { Ok(rows) } else { Err(format!("only {} of {n} events stored", rows.len())) }
    })
}

pub async fn post(url: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let r = reqwest::Client::new().post(url).header("content-type", content_type).body(body).send().await.unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

/// Writes a plugin folder: plugin.json with `schema` as its config, and index.lua.
pub fn plugin_dir(root: &std::path::Path, name: &str, schema: Value, code: &str) -> std::path::PathBuf {
    let dir = root.join(name.replace(' ', "-"));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = json!({"name": name, "config": schema});
    std::fs::write(dir.join("plugin.json"), manifest.to_string()).unwrap();
    std::fs::write(dir.join("index.lua"), code).unwrap();
    dir
}

/// Creates a team: its id and API token.
pub fn team(dir: &std::path::Path, name: &str) -> (i64, String) {
    let t: Value = serde_json::from_str(&cli(dir, &["teams", "create", name, "--json"])).unwrap();
    (t["id"].as_i64().unwrap(), t["api_token"].as_str().unwrap().to_string())
}

/// Every stored event of one team (`phs events list --team`).
pub fn team_events(dir: &std::path::Path, team: i64) -> Vec<Value> {
    let out = cli(dir, &["events", "list", "--team", &team.to_string(), "--json", "--limit", "1000000"]);
    out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}
