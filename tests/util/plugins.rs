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
pub const HOSTILE: &str = r#"
    local attacks = {
      spin = function() while true do end end,
      bomb = function() local t = {} for i = 1, 1e9 do t[i] = {i} end end,
      rep = function() local s = string.rep("x", 1e9) end,
      recurse = function() local function f(n) return f(n + 1) + 1 end f(1) end,
      io = function() io.open("/etc/passwd") end,
      os = function() os.execute("touch /tmp/phs-hostile-serve") end,
      require = function() require("os") end,
      debug = function() debug.sethook() end,
      bytecode = function() assert(load("\27Lua\84\0")) end,
      flood = function() for i = 1, 10000 do console.log("flood", i) end end,
    }
    function processEvent(event, meta)
      local attack = attacks[event.event]
      if attack then attack() end
      if event.event == "steal" then
        -- Keys are prefixed per team and plugin: no spelling reaches team B's.
        local keys = {"secret", "../secret", "@plugin/1/2/secret"}
        for _, k in ipairs(keys) do
          if meta.cache:get(k) ~= nil then event.properties.stolen = k end
        end
        event.properties.storage = meta.storage:get("secret", "none")
      end
      return event
    end"#;

/// Every event name [`HOSTILE`] knows, in an order where no three calls in a
/// row hit a limit (which would disable the plugin; see `MAX_LIMITS_IN_A_ROW`).
pub const HOSTILE_ATTACKS: [&str; 12] =
    ["spin", "io", "bomb", "os", "rep", "recurse", "require", "debug", "bytecode", "flood", "steal", "plain"];
