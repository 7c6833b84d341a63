//! What plugin code can reach: the globals (`console`, `print`, `json`,
//! `require` of the plugin's own files) and the `meta` table passed to every
//! hook (`config`, `global`, `attachments`, `cache`).
//!
//! Everything here is scoped to one plugin config. Cache keys get the
//! original's prefix `@plugin/{plugin_id}/{team_id}/` so no two teams (or
//! plugins) can read each other's keys whatever key a plugin asks for.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlua::{Lua, LuaSerdeExt, Table, Value, Variadic};

use super::logs::{LogEntry, LogLevel, LogSink, LogSource};
use super::sandbox::Deadline;
use super::source::PluginSource;
use crate::cache::Cache;

/// Who the plugin runs for, and the services it may use.
#[derive(Clone)]
pub struct Context {
    pub team_id: i64,
    pub plugin_id: i64,
    pub plugin_config_id: i64,
    /// The validated config (see `Manifest::validate_config`).
    pub config: serde_json::Map<String, serde_json::Value>,
    pub cache: Arc<dyn Cache>,
    pub logs: Arc<dyn LogSink>,
}

/// Console entries a plugin config may write per second; the rest are
/// dropped and counted, so a noisy plugin cannot flood log storage.
pub const LOGS_PER_SECOND: u32 = 100;

pub fn install_globals(lua: &Lua, ctx: &Context, source: &PluginSource, _deadline: Arc<Deadline>) -> mlua::Result<()> {
    let g = lua.globals();
    let console = lua.create_table()?;
    let limiter = Arc::new(Mutex::new(RateLimit::default()));
    for (name, level) in [
        ("debug", LogLevel::Debug),
        ("log", LogLevel::Log),
        ("info", LogLevel::Info),
        ("warn", LogLevel::Warn),
        ("error", LogLevel::Error),
    ] {
        let logs = ctx.logs.clone();
        let limiter = limiter.clone();
        let f = lua.create_function(move |lua, args: Variadic<Value>| {
            let mut rl = limiter.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(dropped) = rl.admit() {
                let message = if dropped > 0 {
                    format!("{dropped} console entries were dropped: more than {LOGS_PER_SECOND} per second")
                } else {
                    format_args(lua, &args)
                };
                let source = if dropped > 0 { LogSource::System } else { LogSource::Console };
                let lvl = if dropped > 0 { LogLevel::Warn } else { level };
                logs.log(LogEntry::new(source, lvl, message));
                if dropped > 0 {
                    logs.log(LogEntry::new(LogSource::Console, level, format_args(lua, &args)));
                }
            }
            Ok(())
        })?;
        console.raw_set(name, f)?;
    }
    g.raw_set("print", console.raw_get::<Value>("log")?)?;
    g.raw_set("console", console)?;

    let json = lua.create_table()?;
    json.raw_set(
        "encode",
        lua.create_function(|lua, v: Value| {
            let j: serde_json::Value = lua.from_value(v)?;
            serde_json::to_string(&j).map_err(mlua::Error::external)
        })?,
    )?;
    json.raw_set(
        "decode",
        lua.create_function(|lua, s: String| {
            let j: serde_json::Value =
                serde_json::from_str(&s).map_err(|e| mlua::Error::runtime(format!("json.decode: {e}")))?;
            lua.to_value(&j)
        })?,
    )?;
    g.raw_set("json", json)?;

    install_require(lua, source)
}

/// `require("lib.util")` loads the plugin's own `lib/util.lua`, once.
fn install_require(lua: &Lua, source: &PluginSource) -> mlua::Result<()> {
    let files = source.files.clone();
    let loaded = lua.create_table()?;
    let require = lua.create_function(move |lua, name: String| {
        if let Some(v) = loaded.raw_get::<Option<Value>>(name.as_str())? {
            return Ok(v);
        }
        let path = format!("{}.lua", name.replace('.', "/"));
        let code = files
            .get(&path)
            .ok_or_else(|| mlua::Error::runtime(format!("module '{name}' not found: plugins can only require their own files ({path})")))?;
        let v: Value = lua.load(code.as_str()).set_name(format!("@{path}")).set_mode(mlua::ChunkMode::Text).call(())?;
        let v = if v.is_nil() { Value::Boolean(true) } else { v };
        loaded.raw_set(name.as_str(), v.clone())?;
        Ok(v)
    })?;
    lua.globals().raw_set("require", require)
}

/// The `meta` table handed to every hook.
pub fn meta_table(lua: &Lua, ctx: &Context, deadline: Arc<Deadline>) -> mlua::Result<Table> {
    let meta = lua.create_table()?;
    meta.raw_set("config", lua.to_value(&ctx.config)?)?;
    meta.raw_set("global", lua.create_table()?)?;
    meta.raw_set("attachments", lua.create_table()?)?;
    meta.raw_set("cache", cache_table(lua, ctx, deadline)?)?;
    Ok(meta)
}

fn cache_table(lua: &Lua, ctx: &Context, deadline: Arc<Deadline>) -> mlua::Result<Table> {
    let prefix = format!("@plugin/{}/{}/", ctx.plugin_id, ctx.team_id);
    let t = lua.create_table()?;
    let c = ctx.cache.clone();
    let (p, d) = (prefix.clone(), deadline.clone());
    t.raw_set(
        "get",
        lua.create_async_function(move |lua, (_self, key, default): (Value, String, Value)| {
            let (c, k, d) = (c.clone(), format!("{p}{key}"), d.clone());
            async move {
                match host_call(&d, c.get(&k)).await? {
                    Some(raw) => match serde_json::from_str::<serde_json::Value>(&raw) {
                        Ok(j) => lua.to_value(&j),
                        Err(_) => Ok(Value::String(lua.create_string(&raw)?)),
                    },
                    None => Ok(default),
                }
            }
        })?,
    )?;
    let (c, p, d) = (ctx.cache.clone(), prefix.clone(), deadline.clone());
    t.raw_set(
        "set",
        lua.create_async_function(move |lua, (_self, key, value, ttl): (Value, String, Value, Option<f64>)| {
            let (c, k, d) = (c.clone(), format!("{p}{key}"), d.clone());
            async move {
                let j: serde_json::Value = lua.from_value(value)?;
                let ttl = ttl.filter(|s| *s > 0.0).map(Duration::from_secs_f64);
                host_call(&d, c.set(&k, &j.to_string(), ttl)).await
            }
        })?,
    )?;
    let (c, p, d) = (ctx.cache.clone(), prefix.clone(), deadline.clone());
    t.raw_set(
        "incr",
        lua.create_async_function(move |_lua, (_self, key, by): (Value, String, Option<i64>)| {
            let (c, k, d) = (c.clone(), format!("{p}{key}"), d.clone());
            async move { host_call(&d, c.incr(&k, by.unwrap_or(1))).await }
        })?,
    )?;
    let (c, p, d) = (ctx.cache.clone(), prefix, deadline);
    t.raw_set(
        "expire",
        lua.create_async_function(move |_lua, (_self, key, ttl): (Value, String, f64)| {
            let (c, k, d) = (c.clone(), format!("{p}{key}"), d.clone());
            async move { host_call(&d, c.expire(&k, Duration::from_secs_f64(ttl.max(0.001)))).await }
        })?,
    )?;
    Ok(t)
}

/// Awaits a host call without counting the wait against the plugin's CPU deadline.
async fn host_call<T, E: std::fmt::Display>(
    deadline: &Deadline,
    fut: impl Future<Output = Result<T, E>>,
) -> mlua::Result<T> {
    let start = Instant::now();
    let r = fut.await;
    deadline.extend(start.elapsed());
    r.map_err(|e| mlua::Error::runtime(e.to_string()))
}

/// console.* arguments joined by spaces; tables as JSON, like the original.
fn format_args(lua: &Lua, args: &[Value]) -> String {
    args.iter()
        .map(|v| match v {
            Value::String(s) => s.to_string_lossy(),
            Value::Table(_) => lua
                .from_value::<serde_json::Value>(v.clone())
                .map(|j| j.to_string())
                .unwrap_or_else(|_| "[table]".into()),
            Value::Nil => "nil".into(),
            other => other.to_string().unwrap_or_else(|_| format!("[{}]", other.type_name())),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A one-second window counter. `admit` returns None to drop an entry, or
/// Some(n) to log it, n being how many were dropped before it.
#[derive(Default)]
struct RateLimit {
    window: Option<Instant>,
    count: u32,
    dropped: u32,
}

impl RateLimit {
    fn admit(&mut self) -> Option<u32> {
        let now = Instant::now();
        if self.window.is_none_or(|w| now.duration_since(w) >= Duration::from_secs(1)) {
            self.window = Some(now);
            self.count = 0;
        }
        if self.count >= LOGS_PER_SECOND {
            self.dropped += 1;
            return None;
        }
        self.count += 1;
        Some(std::mem::take(&mut self.dropped))
    }
}
