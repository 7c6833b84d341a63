//! The bench's teams and plugin configs, made through phs's own library
//! (the CLI would cost a process per team at 10,000 teams).

use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;
use phs::config::StoreSettings;
use phs::plugins::registry;
use phs::store::Store;
use phs::store::model::NewTeam;

/// Creates `teams` teams and enables `configs` copies of Hello World on each
/// (plugins "Hello World 1".."Hello World N", one config per team and
/// plugin, as PostHog allows); returns the teams' tokens.
pub async fn teams_and_plugins(settings: &StoreSettings, work: &Path, teams: usize, configs: usize) -> Vec<String> {
    let store: Arc<dyn Store> = phs::store::connect(settings).await.expect("connect to the bench's store");
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("lua-plugins/hello-world");
    let mut plugins = Vec::new();
    for i in 1..=configs {
        let copy = work.join(format!("hello-world-{i}"));
        std::fs::create_dir_all(&copy).expect("make a plugin copy's folder");
        std::fs::copy(hello.join("index.lua"), copy.join("index.lua")).expect("copy index.lua");
        let manifest = std::fs::read_to_string(hello.join("plugin.json")).expect("read plugin.json");
        let mut manifest: serde_json::Value = serde_json::from_str(&manifest).expect("plugin.json is JSON");
        manifest["name"] = format!("Hello World {i}").into();
        std::fs::write(copy.join("plugin.json"), manifest.to_string()).expect("write plugin.json");
        plugins.push(registry::install(store.as_ref(), &copy).await.expect("install a Hello World copy"));
    }
    // A few at a time: one team's inserts and enables are a handful of round trips.
    futures_util::stream::iter(0..teams)
        .map(|i| {
            let (store, plugins) = (store.clone(), &plugins);
            async move {
                let new = NewTeam { name: format!("bench {i}"), anonymize_ips: false, api_token: None };
                let team = store.create_team(new).await.expect("create a team");
                for plugin in plugins {
                    registry::enable(store.as_ref(), &team, plugin).await.expect("enable Hello World");
                }
                team.api_token
            }
        })
        .buffered(16)
        .collect()
        .await
}
