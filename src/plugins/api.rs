//! What plugin code can reach: the globals (`console`, `print`, `json`,
//! `require` of the plugin's own files) and the `meta` table passed to every
//! hook (`config`, `global`, `attachments`, `cache`, `storage`, `utils.cursor`).
//!
//! Everything here is scoped to one plugin config. Cache keys get the
//! original's prefix `@plugin/{plugin_id}/{team_id}/` so no two teams (or
//! plugins) can read each other's keys whatever key a plugin asks for.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlua::{Lua, LuaSerdeExt, Table, Value, Variadic};

mod cache;
pub mod capture_budget;

use super::convert::{from_lua, from_lua_within, to_lua};

use super::logs::{LogEntry, LogLevel, LogSink, LogSource};
use super::sandbox::Deadline;
use super::source::PluginSource;
use crate::cache::Cache;
use crate::store::PluginStorage;

/// Who the plugin runs for, and the services it may use.
#[derive(Clone)]
pub struct Context {
    pub team_id: i64,
    pub plugin_id: i64,
    pub plugin_config_id: i64,
    /// The validated config (see `Manifest::validate_config`).
    pub config: serde_json::Map<String, serde_json::Value>,
    pub cache: Arc<dyn Cache>,
    pub storage: Arc<dyn PluginStorage>,
    /// Where `meta.jobs` enqueues (the database's job queue, or memory in `phs plugins test`).
    pub jobs: Arc<dyn crate::store::JobQueue>,
    pub logs: Arc<dyn LogSink>,
    /// Where `posthog.capture` sends new events (the team's ingestion), if anywhere.
    pub capture: Option<Capture>,
    /// What `fetch` may reach.
    pub fetch: super::fetch::FetchPolicy,
    /// The files given for the config's attachment fields (`meta.attachments`).
    pub attachments: Vec<crate::store::PluginAttachment>,
    /// The GeoIP database behind `meta.geoip`, when one is configured.
    pub geoip: Option<Arc<super::geoip::GeoIp>>,
}

impl Context {
    /// A context of its own in memory (cache, storage, jobs, logs) for the
    /// given config: for loading a plugin to inspect it, and for tests and benches.
    pub fn in_memory(config: serde_json::Map<String, serde_json::Value>) -> Context {
        Context {
            team_id: 1,
            plugin_id: 1,
            plugin_config_id: 1,
            config,
            cache: Arc::new(crate::cache::memory::MemoryCache::default()),
            storage: Arc::new(crate::store::memory::MemoryStorage::default()),
            jobs: Arc::new(crate::store::memory::MemoryJobs::default()),
            logs: Arc::new(super::logs::MemoryLog::default()),
            capture: None,
            fetch: Default::default(),
            attachments: Vec::new(),
            geoip: None,
        }
    }
}

/// The ingestion entry `posthog.capture` uses: the log or topic, and the team's token.
#[derive(Clone)]
pub struct Capture {
    pub producer: Arc<dyn crate::wire::Producer>,
    pub token: String,
    /// The default distinct_id of captured events, as in the original: the plugin's name.
    pub plugin_name: String,
    /// The config's captures left; shared by its states.
    pub budget: Arc<capture_budget::CaptureBudget>,
}

/// Console entries a plugin config may write per second; the rest are
/// dropped and counted, so a noisy plugin cannot flood log storage.
pub const LOGS_PER_SECOND: u32 = 100;

pub fn install_globals(lua: &Lua, ctx: &Context, source: &PluginSource, deadline: Arc<Deadline>) -> mlua::Result<()> {
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
            let admitted = limiter.lock().unwrap_or_else(|p| p.into_inner()).admit();
            let dropped = match admitted {
                Admission::Log { dropped } => dropped,
                // Said at once, not only when the plugin next logs: it may never log again.
                Admission::FirstDropped => {
                    let note = format!(
                        "more than {LOGS_PER_SECOND} console entries in one second: the rest of this second's are dropped"
                    );
                    logs.log(LogEntry::new(LogSource::System, LogLevel::Warn, note));
                    return Ok(());
                }
                Admission::Dropped => return Ok(()),
            };
            if dropped > 0 {
                let note = format!("{dropped} console entries were dropped: more than {LOGS_PER_SECOND} per second");
                logs.log(LogEntry::new(LogSource::System, LogLevel::Warn, note));
            }
            logs.log(LogEntry::new(LogSource::Console, level, format_args(lua, &args)));
            Ok(())
        })?;
        console.raw_set(name, f)?;
    }
    g.raw_set("print", console.raw_get::<Value>("log")?)?;
    g.raw_set("console", console)?;

    let json = lua.create_table()?;
    json.raw_set("encode", lua.create_function(|lua, v: Value| encode(lua, v))?)?;
    json.raw_set(
        "decode",
        lua.create_function(|lua, s: String| {
            let j: serde_json::Value =
                serde_json::from_str(&s).map_err(|e| mlua::Error::runtime(format!("json.decode: {e}")))?;
            to_lua(lua, &j)
        })?,
    )?;
    // JSON null inside events, and a way to tell arrays from objects (their
    // metatable is protected, so getmetatable cannot).
    json.raw_set("null", Value::NULL)?;
    json.raw_set(
        "is_array",
        lua.create_function(|lua, v: Value| {
            Ok(match v {
                Value::Table(t) => t.metatable().is_some_and(|m| m == lua.array_metatable()),
                _ => false,
            })
        })?,
    )?;
    g.raw_set("json", json)?;

    g.raw_set("fetch", fetch_fn(lua, ctx, &deadline)?)?;

    let posthog = lua.create_table()?;
    posthog.raw_set("capture", capture_fn(lua, ctx, &deadline)?)?;
    g.raw_set("posthog", posthog)?;

    super::retry::install(lua)?;
    super::clock::install(lua)?;
    install_require(lua, source)
}

/// `fetch(url, {method, headers, body})` returns `{status, ok, headers, body}`
/// and a `json()` method; failures (refused address, timeout, size) raise.
fn fetch_fn(lua: &Lua, ctx: &Context, deadline: &Arc<Deadline>) -> mlua::Result<mlua::Function> {
    let policy = Arc::new(ctx.fetch.clone());
    let json_method = lua.create_function(|lua, this: Table| {
        let body: String = this.get("body")?;
        let j: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| mlua::Error::runtime(format!("response body is not JSON: {e}")))?;
        to_lua(lua, &j)
    })?;
    method(lua, deadline, None, move |lua, (url, opts): (String, Option<Value>)| {
        let opts = opts.map(|o| from_lua(&lua, o)).transpose();
        let (json_method, policy) = (json_method.clone(), policy.clone());
        async move {
            let opts: super::fetch::FetchOptions = match opts? {
                Some(o) => {
                    serde_json::from_value(o).map_err(|e| mlua::Error::runtime(format!("fetch options: {e}")))?
                }
                None => Default::default(),
            };
            let res = super::fetch::fetch(&policy, &url, opts).await.map_err(mlua::Error::runtime)?;
            let t = match to_lua(&lua, &res)? {
                Value::Table(t) => t,
                _ => unreachable!("fetch returns an object"),
            };
            t.raw_set("json", json_method)?;
            Ok(t)
        }
    })
}

/// `posthog.capture(event, properties)`: a new event for the same team, sent
/// through ingestion like any other. `properties.distinct_id` picks the
/// person (default: the plugin's name); `$lib` says it came from a plugin.
fn capture_fn(lua: &Lua, ctx: &Context, deadline: &Arc<Deadline>) -> mlua::Result<mlua::Function> {
    let capture = ctx.capture.clone();
    method(lua, deadline, None, move |lua, (event, properties): (String, Option<Value>)| {
        let capture = capture.clone();
        let props = properties.map(|p| from_lua(&lua, p)).transpose();
        async move {
            let Some(c) = capture else {
                return Err(mlua::Error::runtime("posthog.capture is not available here"));
            };
            c.budget.take().map_err(mlua::Error::runtime)?;
            let mut props = match props? {
                Some(serde_json::Value::Object(m)) => m,
                None | Some(serde_json::Value::Null) => serde_json::Map::new(),
                Some(_) => return Err(mlua::Error::runtime("posthog.capture: properties must be a table")),
            };
            let distinct_id = match props.remove("distinct_id") {
                Some(serde_json::Value::String(s)) if !s.is_empty() => s,
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => c.plugin_name.clone(),
            };
            props.insert("$lib".into(), "posthog-plugin-server".into());
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let data =
                serde_json::json!({"event": event, "distinct_id": distinct_id, "properties": props, "timestamp": now});
            let message = crate::wire::CapturedEvent {
                uuid: uuid::Uuid::now_v7().to_string(),
                distinct_id: distinct_id.clone(),
                ip: None,
                site_url: String::new(),
                data: data.to_string(),
                token: c.token.clone(),
                now: now.clone(),
                sent_at: Some(now),
            };
            let payload = serde_json::to_vec(&message).map_err(mlua::Error::external)?;
            c.producer.append(&[(format!("{}:{distinct_id}", c.token), payload)]).await.map_err(host_error)
        }
    })
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
        let code = files.get(&path).ok_or_else(|| {
            mlua::Error::runtime(format!(
                "module '{name}' not found: plugins can only require their own files ({path})"
            ))
        })?;
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
    meta.raw_set("config", to_lua(lua, &serde_json::Value::Object(ctx.config.clone()))?)?;
    meta.raw_set("global", lua.create_table()?)?;
    meta.raw_set("attachments", attachments_table(lua, ctx)?)?;
    meta.raw_set("geoip", super::geoip::table(lua, ctx.geoip.clone())?)?;
    meta.raw_set("cache", cache::table(lua, ctx, &deadline)?)?;
    meta.raw_set("storage", storage_table(lua, ctx, &deadline)?)?;
    meta.raw_set("utils", utils_table(lua, ctx, &deadline)?)?;
    Ok(meta)
}

/// `meta.attachments`: `{content_type, file_name, contents}` per attachment
/// field that has a file; `contents` is the file's bytes as a Lua string.
fn attachments_table(lua: &Lua, ctx: &Context) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for a in &ctx.attachments {
        let entry = lua.create_table()?;
        entry.raw_set("content_type", a.content_type.as_str())?;
        entry.raw_set("file_name", a.file_name.as_str())?;
        entry.raw_set("contents", lua.create_string(&a.contents)?)?;
        t.raw_set(a.key.as_str(), entry)?;
    }
    Ok(t)
}

/// `meta.storage`: persistent JSON values per plugin config; setting nil deletes.
fn storage_table(lua: &Lua, ctx: &Context, deadline: &Arc<Deadline>) -> mlua::Result<Table> {
    let id = ctx.plugin_config_id;
    let t = lua.create_table()?;
    let s = ctx.storage.clone();
    t.raw_set(
        "get",
        method(lua, deadline, Some("the database"), move |lua, (key, default): (String, Value)| {
            let s = s.clone();
            async move {
                match s.storage_get(id, &key).await.map_err(dependency_error)? {
                    Some(raw) => decode(&lua, &raw),
                    None => Ok(default),
                }
            }
        })?,
    )?;
    let s = ctx.storage.clone();
    t.raw_set(
        "set",
        method(lua, deadline, Some("the database"), move |lua, (key, value): (String, Value)| {
            let s = s.clone();
            let text = if value.is_nil() { None } else { Some(encode(&lua, value)) };
            async move {
                match text {
                    None => s.storage_del(id, &key).await.map(|_| ()).map_err(dependency_error),
                    Some(text) => s.storage_set(id, &key, &text?).await.map_err(dependency_error),
                }
            }
        })?,
    )?;
    let s = ctx.storage.clone();
    t.raw_set(
        "del",
        method(lua, deadline, Some("the database"), move |_lua, key: String| {
            let s = s.clone();
            async move { s.storage_del(id, &key).await.map_err(dependency_error) }
        })?,
    )?;
    Ok(t)
}

/// `meta.utils.cursor`: `init(key, start)` sets once, `increment(key, by)` is atomic.
fn utils_table(lua: &Lua, ctx: &Context, deadline: &Arc<Deadline>) -> mlua::Result<Table> {
    let id = ctx.plugin_config_id;
    let cursor = lua.create_table()?;
    let s = ctx.storage.clone();
    cursor.raw_set(
        "init",
        method(lua, deadline, Some("the database"), move |_lua, (key, start): (String, Option<i64>)| {
            let s = s.clone();
            async move { s.storage_set_if_absent(id, &key, &start.unwrap_or(0).to_string()).await.map_err(dependency_error) }
        })?,
    )?;
    let s = ctx.storage.clone();
    cursor.raw_set(
        "increment",
        method(lua, deadline, Some("the database"), move |_lua, (key, by): (String, Option<i64>)| {
            let s = s.clone();
            async move { s.storage_incr(id, &key, by.unwrap_or(1)).await.map_err(dependency_error) }
        })?,
    )?;
    let utils = lua.create_table()?;
    utils.raw_set("cursor", cursor)?;
    Ok(utils)
}

/// An async host function callable as `t.f(...)` or `t:f(...)` (a leading
/// table argument is dropped), whose waiting does not count against the
/// plugin's CPU deadline. `store` names the service a `meta.cache` or
/// `meta.storage` call waits on (None for the rest): that wait is on a
/// service of the server's, not of the plugin's choosing, so a call that
/// runs out of wall time while one waits is an outage ([`Unavailable`]).
pub(super) fn method<A, F, Fut, R>(
    lua: &Lua,
    deadline: &Arc<Deadline>,
    store: Option<&'static str>,
    f: F,
) -> mlua::Result<mlua::Function>
where
    A: mlua::FromLuaMulti + 'static,
    F: Fn(Lua, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = mlua::Result<R>> + Send + 'static,
    R: mlua::IntoLuaMulti + Send + 'static,
{
    let deadline = deadline.clone();
    lua.create_async_function(move |lua, mut args: mlua::MultiValue| {
        if matches!(args.front(), Some(Value::Table(_))) {
            args.pop_front();
        }
        let fut = A::from_lua_multi(args, &lua).map(|a| f(lua, a));
        let deadline = deadline.clone();
        async move {
            let start = Instant::now();
            deadline.pause_cpu();
            let waiting = store.map(|service| deadline.waiting_on_store(service));
            let r = fut?.await;
            drop(waiting);
            deadline.extend(start.elapsed());
            if store.is_some()
                && let Err(e) = &r
                && let Some(outage) = unavailable(e)
            {
                deadline.store_failed(outage);
            }
            r
        }
    })
}

fn host_error(e: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::runtime(e.to_string())
}

/// A host call (`meta.cache`, `meta.storage`) that failed because the service behind it is
/// unreachable. It travels through the plugin's error like any other, and the runner hands the
/// event back to be retried with its batch: the outage is not the plugin's failure, so it must
/// neither pass the event on unprocessed nor count towards disabling the plugin.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// Like [`host_error`], keeping a transient failure recognisable as [`Unavailable`].
fn dependency_error<E: std::fmt::Display + crate::error::Kinded>(e: E) -> mlua::Error {
    if e.kind() == crate::error::ErrorKind::Transient {
        mlua::Error::external(Unavailable(e.to_string()))
    } else {
        host_error(e)
    }
}

/// The unreachable dependency a failed call met, if that is why it failed.
pub fn unavailable(err: &mlua::Error) -> Option<String> {
    super::sandbox::chain(err).find_map(|e| match e {
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<Unavailable>().map(|u| u.0.clone()),
        _ => None,
    })
}

/// Values are stored as JSON text, as the original did.
fn encode(lua: &Lua, v: Value) -> mlua::Result<String> {
    Ok(from_lua(lua, v)?.to_string())
}

fn decode(lua: &Lua, raw: &str) -> mlua::Result<Value> {
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(j) => to_lua(lua, &j),
        Err(_) => Ok(Value::String(lua.create_string(raw)?)),
    }
}

/// console.* arguments joined by spaces; tables as JSON, like the original.
fn format_args(lua: &Lua, args: &[Value]) -> String {
    args.iter()
        .map(|v| match v {
            // Only what a log entry keeps is copied: a 30 MB string logged
            // 100 times a second would otherwise be copied whole each time.
            Value::String(s) => {
                let bytes = s.as_bytes();
                let cut = bytes.len().min(super::logs::MAX_MESSAGE_CHARS + 4);
                String::from_utf8_lossy(&bytes[..cut]).into_owned()
            }
            // Converted up to a few times what the entry keeps: a table shared at every level
            // is refused in a few thousand steps, not walked to the 8 MiB any value may take.
            Value::Table(_) => from_lua_within(lua, v.clone(), 4 * super::logs::MAX_MESSAGE_CHARS)
                .map(|j| j.to_string())
                .unwrap_or_else(|_| "[table]".into()),
            Value::Nil => "nil".into(),
            other => other.to_string().unwrap_or_else(|_| format!("[{}]", other.type_name())),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What becomes of one console entry.
enum Admission {
    /// Logged; `dropped` entries were dropped since the last one logged.
    Log {
        dropped: u32,
    },
    /// Dropped, the first of its window.
    FirstDropped,
    Dropped,
}

/// A one-second window counter of console entries.
#[derive(Default)]
struct RateLimit {
    window: Option<Instant>,
    count: u32,
    dropped: u32,
}

impl RateLimit {
    fn admit(&mut self) -> Admission {
        let now = Instant::now();
        if self.window.is_none_or(|w| now.duration_since(w) >= Duration::from_secs(1)) {
            self.window = Some(now);
            self.count = 0;
        }
        if self.count >= LOGS_PER_SECOND {
            self.count += 1;
            self.dropped += 1;
            return if self.count == LOGS_PER_SECOND + 1 { Admission::FirstDropped } else { Admission::Dropped };
        }
        self.count += 1;
        Admission::Log { dropped: std::mem::take(&mut self.dropped) }
    }
}
