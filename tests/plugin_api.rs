//! The parts of the plugin API beyond the core hooks: `meta.cache` lists,
//! `meta.attachments` and `meta.geoip`, on every backend they touch.

use std::sync::Arc;
use std::time::Duration;

use phs::cache::Cache;
use phs::plugins::logs::MemoryLog;
use phs::plugins::{Context, Limits, PluginVm, ProcessOutcome};

use crate::plugins::source;
use serde_json::{Value, json};

use crate::util::{redis_url, unique_id};

fn ctx(team_id: i64, cache: Arc<dyn Cache>) -> Context {
    crate::plugins::ctx(team_id, cache, Arc::new(MemoryLog::default()))
}

fn limits() -> Limits {
    Limits { memory: 16 * 1024 * 1024, process_event: Duration::from_millis(500), task: Duration::from_secs(5) }
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
