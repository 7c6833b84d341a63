//! Plugins built in a test: a one-file source and the context a state runs in.

use std::collections::BTreeMap;
use std::sync::Arc;

use phs::cache::Cache;
use phs::plugins::logs::MemoryLog;
use phs::plugins::{Context, Manifest, PluginSource};

pub fn source(code: &str) -> PluginSource {
    let manifest = Manifest::parse(r#"{"name": "test plugin"}"#).unwrap();
    PluginSource::new(manifest, BTreeMap::from([("index.lua".to_string(), code.to_string())])).unwrap()
}

pub fn ctx(team_id: i64, cache: Arc<dyn Cache>, logs: Arc<MemoryLog>) -> Context {
    Context {
        team_id,
        plugin_id: 7,
        plugin_config_id: team_id * 10,
        config: Default::default(),
        cache,
        storage: Arc::new(phs::store::memory::MemoryStorage::default()),
        jobs: Arc::new(phs::store::memory::MemoryJobs::default()),
        logs,
        capture: None,
        fetch: Default::default(),
        attachments: Vec::new(),
        geoip: None,
    }
}

/// The runtime's hostile set: each event named after an attack runs it (see
/// [`HOSTILE_ATTACKS`]); `steal` tries other teams' cache and storage.
pub const HOSTILE: &str = include_str!("../fixtures/hostile/hostile_set.lua");

/// Every event name [`HOSTILE`] knows, in an order where no three calls in a
/// row hit a limit (which would disable the plugin; see `MAX_LIMITS_IN_A_ROW`).
pub const HOSTILE_ATTACKS: [&str; 12] =
    ["spin", "io", "bomb", "os", "rep", "recurse", "require", "debug", "bytecode", "flood", "steal", "plain"];
