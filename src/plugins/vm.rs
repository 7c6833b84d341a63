//! One plugin config's Lua state: loading the code, detecting its
//! capabilities, and calling its hooks within the limits.
//!
//! One state per plugin config (team x plugin), never shared: a plugin's
//! globals, `meta.global` and cache keys belong to that config alone. Calls
//! into a state are serialised by a mutex, because the deadline and the
//! meta table are per state.
//!
//! processEvent gets the event as a lazy proxy ([`super::proxy`]) and its
//! result comes back as an [`Edit`] of that event; the other hooks get
//! their events converted whole.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use mlua::{Function, Lua, MultiValue, Table, Value};
use serde::Serialize;
use serde_json::{Map, Value as Json};
use tokio::sync::Mutex;

use super::api::{self, Context};
use super::convert;
use super::proxy::{self, Edit, Proxies, Returned};
use super::sandbox::{self, Deadline, Limits};
use super::source::PluginSource;

/// What a plugin implements, stored on load like posthog_plugin.capabilities.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub methods: Vec<String>,
    pub scheduled_tasks: Vec<String>,
    pub jobs: Vec<String>,
}

/// The largest event processEvent may return (about its JSON size), as large
/// as a message capture accepts (`pipeline::normalize`). Every event of a
/// batch is held until the batch is written, and a plugin can return the
/// same 30 MB string in each one for nothing.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

const METHODS: &[&str] = &["setupPlugin", "teardownPlugin", "processEvent", "onEvent", "exportEvents"];
const TASKS: &[&str] = &["runEveryMinute", "runEveryHour", "runEveryDay"];

/// Why a call into a plugin failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The plugin raised an error; the message carries file, line and traceback.
    #[error("{message}")]
    Plugin { message: String },
    #[error("plugin exceeded its time limit of {} ms", .0.as_millis())]
    TimeLimit(Duration),
    #[error("plugin exceeded its memory limit of {} MiB", .0 / (1024 * 1024))]
    MemoryLimit(usize),
    #[error("{0}")]
    BadReturn(String),
    /// The plugin raised `RetryError(message)`: it asks for another try.
    #[error("RetryError: {0}")]
    Retry(String),
    /// A host call met an unreachable dependency (Redis, the database) that the plugin did not
    /// catch: the event waits for it, as the pipeline's own calls do.
    #[error("dependency unavailable: {0}")]
    Unavailable(String),
    /// A call given a [`Budget`] ran past it and was cut: not the plugin's failure, the event is
    /// to run again where it may take its full limits.
    #[error("the call ran past its budget of {} ms and was cut", .0.as_millis())]
    OverBudget(Duration),
}

/// How long a call may run in the main pipeline before it is cut
/// ([`CallError::OverBudget`]): `wall` in all, `cpu` of it computing. A call
/// that computes holds its thread, and with it the other events its shard
/// would run meanwhile; one that waits (a fetch) does not, so it may wait
/// longer than it may compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub wall: Duration,
    pub cpu: Duration,
}

impl Budget {
    /// What is left of the budget once `spent` of it is gone (at least a
    /// millisecond, so the call still starts and is cut at once).
    pub fn less(self, spent: Duration) -> Budget {
        let left = |d: Duration| d.saturating_sub(spent).max(Duration::from_millis(1));
        Budget { wall: left(self.wall), cpu: left(self.cpu) }
    }
}

impl CallError {
    /// A limit was hit, as opposed to the plugin's own error.
    pub fn is_limit(&self) -> bool {
        matches!(self, CallError::TimeLimit(_) | CallError::MemoryLimit(_))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: {message}")]
    Compile { file: String, message: String },
    #[error("loading the plugin failed: {0}")]
    Run(CallError),
    #[error("cannot create the Lua state: {0}")]
    State(String),
}

pub struct PluginVm {
    inner: Mutex<Inner>,
    capabilities: Capabilities,
    name: String,
    /// Set while the config's last call hit a limit: its calls then get a
    /// tenth of the time limits ([`PROBATION_SHARE`]), so a plugin that
    /// keeps hitting them costs the whole limit once, not at every call
    /// until it is disabled. The runner sets and clears it.
    probation: AtomicBool,
}

/// The share of the time limits a state on probation gets (1 / this).
pub const PROBATION_SHARE: u32 = 10;

struct Inner {
    lua: Lua,
    deadline: Arc<Deadline>,
    limits: Limits,
    /// The plugin's hooks table (globals, or the table its main file returned).
    hooks: Table,
    meta: Table,
    /// Runs a function under xpcall with a traceback-adding handler, so plugin
    /// errors keep their file:line and stack. Kept from load time: a plugin
    /// replacing the global xpcall cannot disable it.
    protected_call: Function,
    /// The event proxies of processEvent calls.
    proxies: Proxies,
}

/// Where a hook lives: a top-level function, or one of `jobs`.
#[derive(Clone, Copy)]
enum Hook<'a> {
    Top(&'a str),
    Job(&'a str),
}

#[derive(Debug)]
pub enum ProcessOutcome {
    Event(serde_json::Value),
    Dropped,
}

/// What processEvent did with the event it was lent.
#[derive(Debug)]
pub enum Processed {
    /// Kept it, with these changes (none when the plugin has no processEvent).
    Kept(Edit),
    Dropped,
}

impl PluginVm {
    /// Builds the state, runs the main file under the task limit, and
    /// detects capabilities. setupPlugin is not run here (setup is lazy).
    pub fn load(source: &PluginSource, ctx: Context, limits: Limits) -> Result<PluginVm, LoadError> {
        let (lua, deadline) = sandbox::new_state(&limits).map_err(|e| LoadError::State(e.to_string()))?;
        let state_err = |e: mlua::Error| LoadError::State(e.to_string());
        api::install_globals(&lua, &ctx, source, deadline.clone()).map_err(state_err)?;
        let mut proxies = proxy::install(&lua).map_err(state_err)?;
        let meta = api::meta_table(&lua, &ctx, deadline.clone()).map_err(state_err)?;
        let (protected_call, handler) = make_protected_call(&lua).map_err(state_err)?;

        let main = &source.manifest.main;
        let chunk = lua
            .load(source.files[main].as_str())
            .set_name(format!("@{main}"))
            .set_mode(mlua::ChunkMode::Text)
            .into_function()
            .map_err(|e| LoadError::Compile { file: main.clone(), message: clean(&e.to_string()) })?;
        deadline.arm(limits.task_cpu);
        let returned = std::panic::catch_unwind(AssertUnwindSafe(|| chunk.call::<Value>(())));
        deadline.disarm();
        let returned = returned
            .map_err(|panic| LoadError::Run(host_panic(&*panic)))?
            .map_err(|e| LoadError::Run(classify(&e, &limits)))?;
        // A main file may `return { processEvent = ... }` or define globals.
        let hooks = match returned {
            Value::Table(t) => t,
            _ => lua.globals(),
        };
        let capabilities = detect(&hooks).map_err(state_err)?;
        proxies.bind(&hooks, &meta, &handler).map_err(state_err)?;
        let jobs = super::jobs::table(&lua, &ctx, &deadline, &capabilities.jobs).map_err(state_err)?;
        meta.raw_set("jobs", jobs).map_err(state_err)?;
        Ok(PluginVm {
            inner: Mutex::new(Inner { lua, deadline, limits, hooks, meta, protected_call, proxies }),
            capabilities,
            name: source.manifest.name.clone(),
            probation: AtomicBool::new(false),
        })
    }

    /// Puts the state on probation (see [`PluginVm`]) or takes it off.
    pub fn set_probation(&self, on: bool) {
        self.probation.store(on, Ordering::Relaxed);
    }

    /// What the time limits are divided by now.
    fn share(&self) -> u32 {
        if self.probation.load(Ordering::Relaxed) { PROBATION_SHARE } else { 1 }
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn has(&self, method: &str) -> bool {
        self.capabilities.methods.iter().any(|m| m == method)
    }

    /// Runs setupPlugin(meta), if the plugin has one.
    pub async fn setup(&self) -> Result<(), CallError> {
        self.setup_within(None).await
    }

    /// [`PluginVm::setup`], cut once it has run past `budget`. A cut
    /// setupPlugin has not run for the state: the next setup runs it again
    /// from the start.
    pub async fn setup_within(&self, budget: Option<Budget>) -> Result<(), CallError> {
        self.call(Hook::Top("setupPlugin"), None, budget).await.map(|_| ())
    }

    /// Runs teardownPlugin(meta), if the plugin has one.
    pub async fn teardown(&self) -> Result<(), CallError> {
        self.call_hook("teardownPlugin", None).await.map(|_| ())
    }

    /// Runs processEvent(event, meta) on a lent event; a missing hook keeps
    /// it unchanged. The plugin sees the event through a proxy, so the cost
    /// is that of what it reads and writes, not of the whole event.
    pub async fn process(&self, event: &Map<String, Json>) -> Result<Processed, CallError> {
        self.process_within(event, None).await
    }

    /// [`PluginVm::process`], cut once it has run past `budget` (where that
    /// is shorter than its limits): Err([`CallError::OverBudget`]).
    pub async fn process_within(
        &self,
        event: &Map<String, Json>,
        budget: Option<Budget>,
    ) -> Result<Processed, CallError> {
        if !self.has("processEvent") {
            return Ok(Processed::Kept(Edit::none()));
        }
        let inner = self.inner.lock().await;
        let Some(process) = inner.proxies.process() else { return Ok(Processed::Kept(Edit::none())) };
        proxy::lend(&inner.proxies, event, MAX_EVENT_BYTES);
        // Declared after `inner`, so it runs while the lock is held, on
        // every way out, including the call future being dropped.
        let _end = EndOfCall(&inner.proxies);
        inner.run(process, Hook::Top("processEvent"), self.share(), budget, MultiValue::new()).await?;
        match inner.proxies.returned() {
            None => Ok(Processed::Kept(Edit::none())),
            Some(Ok(Returned::Event(edit))) => Ok(Processed::Kept(edit)),
            Some(Ok(Returned::Nil)) => Ok(Processed::Dropped),
            Some(Ok(Returned::Other(other))) => Err(CallError::BadReturn(format!(
                "processEvent must return the event (a table) or nil to drop it, not {}",
                json_kind(&other)
            ))),
            Some(Err(e)) => {
                Err(CallError::BadReturn(format!("processEvent returned a value that is not JSON-like: {}", clean(&e))))
            }
        }
    }

    /// [`PluginVm::process`] on an event of its own: the event it returns.
    pub async fn process_event(&self, event: &Json) -> Result<ProcessOutcome, CallError> {
        let Json::Object(map) = event else {
            return Err(CallError::BadReturn(format!(
                "processEvent takes an event (an object), not {}",
                json_kind(event)
            )));
        };
        match self.process(map).await? {
            Processed::Dropped => Ok(ProcessOutcome::Dropped),
            Processed::Kept(edit) => {
                let mut out = map.clone();
                edit.apply(&mut out);
                Ok(ProcessOutcome::Event(Json::Object(out)))
            }
        }
    }

    /// processEvent with the event converted whole, as before the proxy:
    /// the oracle the proxy's tests compare against.
    #[cfg(test)]
    pub(crate) async fn process_event_eager(&self, event: &Json) -> Result<ProcessOutcome, CallError> {
        match self.call_hook("processEvent", Some(event)).await? {
            None => Ok(ProcessOutcome::Dropped),
            Some(Json::Object(o)) => Ok(ProcessOutcome::Event(Json::Object(o))),
            Some(other) => Err(CallError::BadReturn(format!(
                "processEvent must return the event (a table) or nil to drop it, not {}",
                json_kind(&other)
            ))),
        }
    }

    /// Runs onEvent(event, meta), if the plugin has one.
    pub async fn on_event(&self, event: &serde_json::Value) -> Result<(), CallError> {
        self.call_hook("onEvent", Some(event)).await.map(|_| ())
    }

    /// Runs exportEvents(events, meta), if the plugin has one.
    pub async fn export_events(&self, events: &[serde_json::Value]) -> Result<(), CallError> {
        let events = serde_json::Value::Array(events.to_vec());
        self.call_hook("exportEvents", Some(&events)).await.map(|_| ())
    }

    /// Runs a scheduled task (`runEveryMinute`, `runEveryHour`, `runEveryDay`).
    pub async fn run_task(&self, task: &str) -> Result<(), CallError> {
        self.call_hook(task, None).await.map(|_| ())
    }

    /// Runs `jobs.<name>(payload, meta)`; a job the plugin does not have is an error.
    pub async fn run_job(&self, name: &str, payload: &serde_json::Value) -> Result<(), CallError> {
        if !self.capabilities.jobs.iter().any(|j| j == name) {
            return Err(CallError::BadReturn(format!("the plugin has no job named `{name}`")));
        }
        self.call(Hook::Job(name), Some(payload), None).await.map(|_| ())
    }

    /// Calls a hook by name with an optional event; returns what it returned.
    async fn call_hook(
        &self,
        name: &str,
        event: Option<&serde_json::Value>,
    ) -> Result<Option<serde_json::Value>, CallError> {
        self.call(Hook::Top(name), event, None).await
    }

    async fn call(
        &self,
        hook: Hook<'_>,
        event: Option<&serde_json::Value>,
        budget: Option<Budget>,
    ) -> Result<Option<serde_json::Value>, CallError> {
        let inner = self.inner.lock().await;
        let share = self.share();
        let lua = &inner.lua;
        let found = match hook {
            Hook::Top(name) => inner.hooks.raw_get::<Option<Function>>(name),
            Hook::Job(name) => match inner.hooks.get::<Value>("jobs").map_err(internal)? {
                Value::Table(jobs) => jobs.get::<Option<Function>>(name),
                _ => Ok(None),
            },
        };
        let Some(func) = found.map_err(internal)? else { return Ok(None) };
        let name = match hook {
            Hook::Top(n) | Hook::Job(n) => n,
        };
        let meta = inner.meta.clone();
        let args = match event {
            Some(e) => {
                let v = unlimited(lua, inner.limits.memory, || convert::to_lua(lua, e))
                    .map_err(|e| classify(&e, &inner.limits))?;
                MultiValue::from_iter([Value::Function(func), v, Value::Table(meta)])
            }
            None => MultiValue::from_iter([Value::Function(func), Value::Table(meta)]),
        };
        let value = inner.run(&inner.protected_call, hook, share, budget, args).await?;
        let max_bytes = match hook {
            Hook::Top("processEvent") => MAX_EVENT_BYTES,
            _ => convert::MAX_VALUE_BYTES,
        };
        match value {
            Value::Nil => Ok(None),
            v => unlimited(lua, inner.limits.memory, || convert::from_lua_within(lua, v, max_bytes)).map(Some).map_err(
                |e| {
                    CallError::BadReturn(format!(
                        "{name} returned a value that is not JSON-like: {}",
                        clean(&e.to_string())
                    ))
                },
            ),
        }
    }

    /// Bytes the state uses now.
    pub async fn memory_used(&self) -> usize {
        self.inner.lock().await.lua.used_memory()
    }
}

impl Inner {
    /// Calls `func` with `args` within `hook`'s CPU and wall-time limits,
    /// divided by `share` (see [`PROBATION_SHARE`]), and cut sooner at
    /// `budget` if one is given; returns what it returned.
    async fn run(
        &self,
        func: &Function,
        hook: Hook<'_>,
        share: u32,
        budget: Option<Budget>,
        args: MultiValue,
    ) -> Result<Value, CallError> {
        let limit = match hook {
            Hook::Top("processEvent") => self.limits.process_event,
            Hook::Top("onEvent") => self.limits.on_event,
            _ => self.limits.task_cpu,
        } / share;
        // Wall time also bounds waiting in async host calls (cache, fetch),
        // which the CPU deadline pauses for.
        let wall = match hook {
            Hook::Top("processEvent") => self.limits.process_event_wall.max(limit),
            _ => limit.max(self.limits.task),
        } / share;
        // A budget only matters where it cuts before a limit would.
        let cpu_cut = budget.map(|b| b.cpu).filter(|b| *b < limit);
        let wall_cut = budget.map(|b| b.wall).filter(|b| *b < wall);
        self.deadline.arm(cpu_cut.unwrap_or(limit));
        // Most calls never wait: the first poll runs them to the end, and the
        // wall-clock timer is only set up for those that do (the CPU deadline
        // covers the first poll).
        // mlua catches a panic in a host function and resumes it once the
        // error reaches Rust, here: it becomes this call's error, not the server's.
        let mut call = std::pin::pin!(AssertUnwindSafe(func.call_async::<Value>(args)).catch_unwind());
        let first = call.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        let result = match first {
            std::task::Poll::Ready(r) => Ok(r),
            std::task::Poll::Pending => tokio::time::timeout(wall_cut.unwrap_or(wall), call).await,
        };
        // One meta.cache/storage call waiting for half the wall time: its service is out, not the
        // plugin slow (a loop of quick calls that runs out of time stays the plugin's time limit).
        let stuck_on = self.deadline.store_waited().filter(|(w, _)| *w >= wall / 2).map(|(_, service)| service);
        self.deadline.disarm();
        match result {
            // Cut at the budget, before any limit or outage could be told apart from slowness.
            Err(_) if let Some(budget) = wall_cut => Err(CallError::OverBudget(budget)),
            Err(_) if let Some(service) = stuck_on => Err(CallError::Unavailable(format!(
                "{service} gave meta.cache or meta.storage no answer within {wall:?}"
            ))),
            Err(_) => Err(CallError::TimeLimit(wall)),
            Ok(Err(panic)) => Err(host_panic(&*panic)),
            // A call that failed after one of its meta.cache/storage calls met an outage is
            // retried, however it failed: the limit may strike while that error unwinds, and a
            // plugin may catch the error and fail in its own words. An outage is never a reason
            // to let an event past its plugin.
            Ok(Ok(Err(_))) if let Some(outage) = self.deadline.store_outage() => Err(CallError::Unavailable(outage)),
            // Once the deadline was hit the call cannot succeed, whatever error
            // it ends with (the limit may strike inside an error handler), or
            // if it ends without one (processEvent's read-back of the event it
            // returned, cut by the time, raises none).
            Ok(Ok(_)) if self.deadline.tripped() => Err(match cpu_cut {
                Some(budget) => CallError::OverBudget(budget),
                None => CallError::TimeLimit(self.deadline.limit()),
            }),
            Ok(Ok(r)) => r.map_err(|e| classify(&e, &self.limits)),
        }
    }
}

/// Ends a processEvent call's proxies when dropped.
struct EndOfCall<'a>(&'a Proxies);

impl Drop for EndOfCall<'_> {
    fn drop(&mut self) {
        proxy::end(self.0);
    }
}

fn internal(e: mlua::Error) -> CallError {
    CallError::Plugin { message: format!("phs internal error: {e}") }
}

/// Runs a conversion with the state's memory limit lifted. With a limit set,
/// mlua makes every table operation a protected call (allocations may fail);
/// without one it takes a fast path, about 3x faster. Conversions are
/// phs's own code on events whose size capture already bounds, so the
/// plugin's budget is only needed while the plugin runs.
fn unlimited<T>(lua: &Lua, limit: usize, f: impl FnOnce() -> mlua::Result<T>) -> mlua::Result<T> {
    lua.set_memory_limit(0)?;
    let r = f();
    lua.set_memory_limit(limit)?;
    r
}

fn detect(hooks: &Table) -> mlua::Result<Capabilities> {
    let mut caps = Capabilities::default();
    for m in METHODS {
        if matches!(hooks.get::<Value>(*m)?, Value::Function(_)) {
            caps.methods.push((*m).to_string());
        }
    }
    for t in TASKS {
        if matches!(hooks.get::<Value>(*t)?, Value::Function(_)) {
            caps.scheduled_tasks.push((*t).to_string());
        }
    }
    if let Value::Table(jobs) = hooks.get::<Value>("jobs")? {
        for pair in jobs.pairs::<String, Value>() {
            let (name, v) = pair?;
            // Names starting with `$` are phs's own jobs (`$events`, `$exportEventsWithRetry`):
            // offering one in `meta.jobs` would let a plugin feed its onEvent or exportEvents
            // events that were never ingested.
            if matches!(v, Value::Function(_)) && !name.starts_with('$') {
                caps.jobs.push(name);
            }
        }
        caps.jobs.sort();
    }
    Ok(caps)
}

/// The protected call, and the error handler it uses (which processEvent's
/// own call uses too).
fn make_protected_call(lua: &Lua) -> mlua::Result<(Function, Function)> {
    let handler = lua.create_function(|lua, err: Value| {
        Ok(match err {
            // Errors raised by Rust (limits, host functions) keep their type.
            Value::Error(_) | Value::UserData(_) => err,
            other => {
                let msg = match &other {
                    Value::String(s) => s.to_string_lossy(),
                    v => v.to_string().unwrap_or_else(|_| "error object".into()),
                };
                Value::String(lua.traceback(Some(&msg), 3)?)
            }
        })
    })?;
    // Host errors (userdata) skip the Rust handler: converting one that
    // carries a panic into a Value would resume the panic inside the handler.
    lua.load(
        r#"local xpcall, error, add_traceback, type = ...
           local function handler(e)
             if type(e) == "userdata" then return e end
             return add_traceback(e)
           end
           return function(f, ...)
             local ok, result = xpcall(f, handler, ...)
             if ok then return result end
             error(result, 0)
           end, handler"#,
    )
    .set_name("=phs:call")
    .call::<(Function, Function)>((
        lua.globals().get::<Function>("xpcall")?,
        lua.globals().get::<Function>("error")?,
        handler,
        lua.globals().get::<Function>("type")?,
    ))
}

/// Sorts an mlua error into a limit or the plugin's own error.
pub(super) fn classify(err: &mlua::Error, limits: &Limits) -> CallError {
    if let Some(message) = super::retry::requested(err) {
        return CallError::Retry(super::logs::truncated(message));
    }
    if let Some(message) = super::api::unavailable(err) {
        return CallError::Unavailable(message);
    }
    if let Some(t) = sandbox::time_limit(err) {
        return CallError::TimeLimit(t);
    }
    if sandbox::is_memory_error(err) {
        return CallError::MemoryLimit(limits.memory);
    }
    let text = clean(&err.to_string());
    if text.contains("not enough memory") {
        return CallError::MemoryLimit(limits.memory);
    }
    CallError::Plugin { message: super::logs::truncated(text) }
}

/// A panic inside a host function, as the error of the call that made it.
fn host_panic(panic: &(dyn std::any::Any + Send)) -> CallError {
    let what = crate::error::panic_message(panic);
    CallError::Plugin { message: format!("phs internal error: a host function panicked ({what})") }
}

/// Drops mlua's Rust-side decoration, keeping the Lua message and traceback.
fn clean(s: &str) -> String {
    let s = s.strip_prefix("runtime error: ").unwrap_or(s);
    s.replace("\n\t[C]: in ?", "").replace("\t[C]: in function 'xpcall'\n", "").trim().to_string()
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plugins::Manifest;

    fn vm(code: &str) -> PluginVm {
        let manifest = Manifest::parse(r#"{"name": "panicky"}"#).unwrap();
        let source =
            PluginSource::new(manifest, BTreeMap::from([("index.lua".to_string(), code.to_string())])).unwrap();
        let ctx = Context::in_memory(Default::default());
        PluginVm::load(&source, ctx, Limits::default()).unwrap()
    }

    /// Any host function that panics (a bug not found yet) fails only its call.
    #[tokio::test]
    async fn a_panicking_host_function_fails_the_call_not_the_server() {
        let vm = vm("function processEvent(e) if e.event == 'boom' then boom() end return e end");
        {
            let inner = vm.inner.lock().await;
            let boom = inner.lua.create_function(|_, ()| -> mlua::Result<()> { panic!("a host bug") }).unwrap();
            inner.lua.globals().set("boom", boom).unwrap();
        }
        let err = vm.process_event(&serde_json::json!({"event": "boom"})).await.unwrap_err();
        assert!(
            matches!(&err, CallError::Plugin { message } if message.contains("panicked") && message.contains("a host bug")),
            "{err:?}"
        );
        // The state still serves the next call.
        let ok = vm.process_event(&serde_json::json!({"event": "fine"})).await.unwrap();
        assert!(matches!(ok, ProcessOutcome::Event(e) if e["event"] == "fine"));
    }

    fn event(name: &str) -> Map<String, Json> {
        serde_json::json!({"event": name}).as_object().cloned().unwrap_or_default()
    }

    /// A budget cuts a call that spins, even one that catches errors, or that
    /// waits in a host call, as its own kind of error: not a limit, so
    /// nothing counts it against the plugin; the state serves the next call.
    #[tokio::test]
    async fn a_call_past_its_budget_is_cut_as_over_budget() {
        let vm = vm("function processEvent(e)
                       if e.event == 'spin' then while true do end end
                       if e.event == 'caught' then pcall(function() while true do end end) end
                       if e.event == 'wait' then wait() end
                       return e
                     end");
        {
            let inner = vm.inner.lock().await;
            let wait = inner
                .lua
                .create_async_function(|_, ()| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok(())
                })
                .unwrap();
            inner.lua.globals().set("wait", wait).unwrap();
        }
        let (wall, cpu) = (Duration::from_millis(60), Duration::from_millis(20));
        let budget = Some(Budget { wall, cpu });
        // Computing is cut at the CPU budget, waiting at the wall one.
        for (name, cut) in [("spin", cpu), ("caught", cpu), ("wait", wall)] {
            let err = vm.process_within(&event(name), budget).await.err();
            assert!(matches!(err, Some(CallError::OverBudget(b)) if b == cut), "{name}: {err:?}");
            assert!(!err.is_some_and(|e| e.is_limit()));
        }
        assert!(matches!(vm.process_within(&event("fine"), budget).await, Ok(Processed::Kept(_))));
        // Without a budget the limit stops the spin, as a limit.
        let err = vm.process(&event("spin")).await.err();
        assert!(matches!(err, Some(CallError::TimeLimit(_))), "{err:?}");
    }

    /// A setupPlugin cut at its budget has not run: the next setup runs it
    /// again from the start, and the state then serves calls.
    #[tokio::test]
    async fn a_setup_past_its_budget_is_cut_and_runs_again_next_time() {
        let vm = vm("function setupPlugin(meta)
                       setups = (setups or 0) + 1
                       if setups == 1 then while true do end end
                     end
                     function processEvent(e) e.setups = setups return e end");
        let budget = Some(Budget { wall: Duration::from_millis(60), cpu: Duration::from_millis(20) });
        let err = vm.setup_within(budget).await.err();
        assert!(matches!(err, Some(CallError::OverBudget(_))), "{err:?}");
        vm.setup_within(budget).await.unwrap();
        let out = vm.process_event(&serde_json::json!({"event": "e"})).await.unwrap();
        assert!(matches!(out, ProcessOutcome::Event(e) if e["setups"] == 2));
    }

    /// A loop of a few long string.rep calls runs fewer instructions than
    /// the hook counts between its checks (150 here, under 1000); each call
    /// checks the deadline itself, so the loop is cut all the same.
    #[tokio::test]
    async fn a_loop_of_long_string_reps_is_cut_at_the_budget() {
        let vm = vm("function processEvent(e)
                       for i = 1, 150 do local s = string.rep('x', 1024 * 1024) end
                       return e
                     end");
        let budget = Some(Budget { wall: Duration::from_millis(60), cpu: Duration::from_millis(5) });
        let err = vm.process_within(&event("rep"), budget).await.err();
        assert!(matches!(err, Some(CallError::OverBudget(_))), "{err:?}");
        // Its arguments are checked as before.
        let vm = vm_with_rep_error();
        let err = vm.process_event(&serde_json::json!({"event": "e"})).await.unwrap_err();
        assert!(err.to_string().contains("bad argument #2 to 'rep'"), "{err}");
    }

    /// Converting a value runs in Rust, where the hook never counts: a
    /// table shared at every level is a million values within the bytes
    /// json.encode may take, and the event processEvent returns is read
    /// back the same way. Each conversion checks the deadline itself, so
    /// the call is cut at its budget.
    #[tokio::test]
    async fn conversions_are_cut_at_the_budget() {
        let vm = vm("local function dag() local t = {'x'} for i = 1, 60 do t = {t, t} end return t end
                     function processEvent(e)
                       if e.event == 'encode' then pcall(json.encode, dag()) end
                       if e.event == 'return' then e.properties = {dag = dag()} end
                       return e
                     end");
        let budget = Some(Budget { wall: Duration::from_millis(60), cpu: Duration::from_millis(2) });
        for name in ["encode", "return"] {
            let err = vm.process_within(&event(name), budget).await.err();
            assert!(matches!(err, Some(CallError::OverBudget(_))), "{name}: {err:?}");
        }
        assert!(matches!(vm.process_within(&event("fine"), budget).await, Ok(Processed::Kept(_))));
    }

    fn vm_with_rep_error() -> PluginVm {
        vm("function processEvent(e) return string.rep('x', {}) end")
    }
}
