//! A locked-down Lua 5.4 state for untrusted plugin code, and the limits
//! that keep one plugin from hurting the server or other plugins.
//!
//! Loaded: base (without dofile/loadfile, and `load` forced to text chunks),
//! string (without string.dump), table, math, utf8, coroutine, and an `os`
//! holding only time/date/clock. Not loaded: io, package, debug, the rest of
//! os. CPU time is bounded by an instruction-count hook that checks a
//! deadline; it is a *global* hook so coroutines created by the plugin are
//! covered too. Memory is bounded by mlua's allocator limit, which also stops
//! string.rep/concat bombs; deep recursion ends in Lua's own stack overflow.
//!
//! Two things run Lua-visible work where the hook never fires, so they are
//! replaced: lstrlib's pattern matcher (C, see [`super::strings`]), and
//! `__gc` finalizers (Lua turns hooks off while one runs), which
//! `setmetatable` refuses to install.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mlua::{HookTriggers, Lua, LuaOptions, StdLib, Value, VmState};

use super::thread_cpu::CallCpu;

/// Per-state limits. The defaults are far below the original's 30 s: a
/// processEvent call that runs for 500 ms is already a broken plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes the state may allocate in all.
    pub memory: usize,
    /// CPU time of one processEvent call.
    pub process_event: Duration,
    /// Wall time of one processEvent call, waiting in `fetch`, `cache` and
    /// `storage` included. Far below `task`: every processEvent call holds up
    /// the batch it is in, every other team's events included, for as long
    /// as it waits.
    pub process_event_wall: Duration,
    /// CPU and wall time of one onEvent call (the original gave it the full 30 s).
    pub on_event: Duration,
    /// CPU time of setupPlugin, teardownPlugin, exportEvents, scheduled
    /// tasks and jobs. Far below `task`: their work is mostly awaiting fetch
    /// and the cache, which does not count, and a CPU-bound call stalls the
    /// calls queued behind it for as long as it runs.
    pub task_cpu: Duration,
    /// Wall time of any call, including time awaiting host calls (the
    /// original's 30 s task timeout).
    pub task: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 32 * 1024 * 1024,
            process_event: Duration::from_millis(500),
            process_event_wall: Duration::from_secs(2),
            on_event: Duration::from_secs(5),
            task_cpu: Duration::from_secs(2),
            task: Duration::from_secs(30),
        }
    }
}

/// Instructions between two deadline checks: cheap enough not to show in
/// benchmarks, frequent enough to stop a loop within microseconds.
const CHECK_EVERY: u32 = 1000;

/// The deadline of the call running in a state; 0 means none.
#[derive(Debug)]
pub struct Deadline {
    base: Instant,
    at_nanos: AtomicU64,
    limit_nanos: AtomicU64,
    /// Set once the running call has been told it is out of time; makes
    /// pcall and friends re-raise so a plugin cannot swallow the error.
    tripped: AtomicBool,
    /// When the `meta.cache`/`meta.storage` call waiting now began (nanos
    /// after `base`, 0: none waits). A call whose wall time runs out while
    /// one has waited long met an outage, not a slow plugin.
    store_wait_since: AtomicU64,
    /// The service that call waits on (`redis`, `the database`).
    store_service: std::sync::Mutex<&'static str>,
    /// When the latest store wait began: each begins strictly later.
    last_store_wait: AtomicU64,
    /// The outage a `meta.cache`/`meta.storage` call of the running call met, if one did.
    store_outage: std::sync::Mutex<Option<String>>,
    /// The CPU the running call used, which the deadline is confirmed against.
    cpu: std::sync::Mutex<CallCpu>,
}

impl Deadline {
    pub(super) fn new() -> Self {
        Deadline {
            base: Instant::now(),
            at_nanos: AtomicU64::new(0),
            limit_nanos: AtomicU64::new(0),
            tripped: AtomicBool::new(false),
            store_wait_since: AtomicU64::new(0),
            store_service: std::sync::Mutex::new(""),
            last_store_wait: AtomicU64::new(0),
            store_outage: std::sync::Mutex::new(None),
            cpu: std::sync::Mutex::new(CallCpu::default()),
        }
    }

    /// Marks a store call as waiting until the guard drops (a state runs one
    /// host call at a time).
    pub(super) fn waiting_on_store(&self, service: &'static str) -> StoreWait<'_> {
        *self.store_service.lock().unwrap_or_else(|p| p.into_inner()) = service;
        // Strictly later than any wait before, so each guard knows its own.
        let now = (self.base.elapsed().as_nanos() as u64).max(1);
        let next = |before: u64| now.max(before.saturating_add(1));
        let before = self.last_store_wait.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(next(b)));
        let since = next(before.unwrap_or_else(|b| b));
        self.store_wait_since.store(since, Ordering::Relaxed);
        StoreWait(self, since)
    }

    /// Notes that a store call of the running call failed because its service is out.
    pub(super) fn store_failed(&self, outage: String) {
        self.store_outage.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(outage);
    }

    /// The outage a store call of the running (or last) call met, if one did.
    pub(super) fn store_outage(&self) -> Option<String> {
        self.store_outage.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How long the store call waiting now has waited, and on which service.
    pub(super) fn store_waited(&self) -> Option<(Duration, &'static str)> {
        let since = self.store_wait_since.load(Ordering::Relaxed);
        let service = *self.store_service.lock().unwrap_or_else(|p| p.into_inner());
        (since != 0).then(|| (self.base.elapsed().saturating_sub(Duration::from_nanos(since)), service))
    }

    /// Arms the deadline `limit` from now.
    pub fn arm(&self, limit: Duration) {
        let at = self.base.elapsed() + limit;
        self.limit_nanos.store(limit.as_nanos() as u64, Ordering::Relaxed);
        self.tripped.store(false, Ordering::Relaxed);
        // A wait of an abandoned call (its guard not yet collected) is not this call's.
        self.store_wait_since.store(0, Ordering::Relaxed);
        *self.store_outage.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.cpu() = CallCpu::default();
        self.at_nanos.store(at.as_nanos().max(1) as u64, Ordering::Relaxed);
    }

    /// Pushes an armed deadline back by `waited`: time spent awaiting a host
    /// call (cache, fetch) is not the plugin's CPU time.
    pub fn extend(&self, waited: Duration) {
        let _ = self.at_nanos.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |at| {
            (at != 0).then(|| at.saturating_add(waited.as_nanos() as u64))
        });
    }

    pub fn disarm(&self) {
        self.at_nanos.store(0, Ordering::Relaxed);
    }

    /// The limit when the armed deadline has passed; trips it then. Past
    /// the deadline (wall time less waits, cheap to read) the call has used
    /// its limit only if its threads' CPU clock says so too: on a busy machine
    /// a thread may wait for a core in the middle of a call, which is not the
    /// plugin's time ([`CallCpu`]).
    pub(super) fn exceeded(&self) -> Option<Duration> {
        let at = self.at_nanos.load(Ordering::Relaxed);
        if at == 0 {
            return None;
        }
        let mut cpu = self.cpu();
        if self.base.elapsed().as_nanos() as u64 <= at {
            cpu.begin();
            return None;
        }
        match cpu.used() {
            Some(used) if used < self.limit() => return None,
            // The stretch began on another thread: measured from here on.
            None if cpu.has_clock() => return None,
            _ => {}
        }
        self.tripped.store(true, Ordering::Relaxed);
        Some(self.limit())
    }

    /// Ends the call's CPU stretch before it waits in a host call.
    pub(super) fn pause_cpu(&self) {
        self.cpu().pause();
    }

    fn cpu(&self) -> std::sync::MutexGuard<'_, CallCpu> {
        self.cpu.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn limit(&self) -> Duration {
        Duration::from_nanos(self.limit_nanos.load(Ordering::Relaxed))
    }

    /// Whether the running (or last) call was told it is out of time.
    pub(super) fn tripped(&self) -> bool {
        self.tripped.load(Ordering::Relaxed)
    }

    /// The time-limit error once the armed deadline has passed (tripping
    /// it): what the hook raises, and what a host function that does long
    /// work in one C call checks first.
    pub(super) fn check(&self) -> mlua::Result<()> {
        match self.exceeded() {
            Some(limit) => Err(mlua::Error::external(TimeLimitExceeded(limit))),
            None => Ok(()),
        }
    }

    /// The deadline of the state `lua`, for what runs in Rust on its behalf
    /// and checks the time itself (conversions); None for a state that
    /// [`new_state`] did not make.
    pub(super) fn of(lua: &Lua) -> Option<Arc<Deadline>> {
        lua.app_data_ref::<Arc<Deadline>>().map(|d| Arc::clone(&d))
    }

    /// The error to raise again when a plugin caught the time-limit error.
    fn recheck(&self) -> mlua::Result<()> {
        if self.tripped.load(Ordering::Relaxed) {
            return Err(mlua::Error::external(TimeLimitExceeded(self.limit())));
        }
        Ok(())
    }
}

/// A store call in flight ([`Deadline::waiting_on_store`]), and when it began.
pub(super) struct StoreWait<'a>(&'a Deadline, u64);

impl Drop for StoreWait<'_> {
    /// Ends this wait only: a call abandoned mid-wait (its batch given up) is
    /// dropped whenever Lua collects its thread, maybe while a later call
    /// waits, and must not make that call's outage look like a slow plugin.
    fn drop(&mut self) {
        let _ = self.0.store_wait_since.compare_exchange(self.1, 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// Raised inside Lua when a call runs past its deadline; found again in the
/// error chain to tell a limit from a plugin's own error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin exceeded its time limit of {} ms", .0.as_millis())]
pub struct TimeLimitExceeded(pub Duration);

/// Creates a sandboxed state with the limits applied.
pub fn new_state(limits: &Limits) -> mlua::Result<(Lua, Arc<Deadline>)> {
    let libs = StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::UTF8 | StdLib::COROUTINE | StdLib::OS;
    // Every hook call runs in a coroutine of its own (mlua's call_async); a
    // pool lets a finished one serve the next call instead of a new thread,
    // with its stack, being made and collected each time. Calls into a
    // state are serialized, so one is enough; a spare covers nesting.
    let lua = Lua::new_with(libs, LuaOptions::new().thread_pool_size(2))?;
    restrict_globals(&lua)?;

    let deadline = Arc::new(Deadline::new());
    // Found by [`Deadline::of`].
    lua.set_app_data(deadline.clone());
    let hook_deadline = deadline.clone();
    lua.set_global_hook(HookTriggers::new().every_nth_instruction(CHECK_EVERY), move |_lua, _debug| {
        hook_deadline.check().map(|()| VmState::Continue)
    })?;
    let string: mlua::Table = lua.globals().get("string")?;
    super::strings::install(&lua, &string, deadline.clone(), limits.memory)?;
    no_finalizers(&lua)?;
    uncatchable_limits(&lua, deadline.clone())?;
    // Set last: the setup above allocates, and the limit is the plugin's budget.
    lua.set_memory_limit(limits.memory)?;
    Ok((lua, deadline))
}

fn restrict_globals(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    for name in ["dofile", "loadfile", "collectgarbage"] {
        g.raw_set(name, Value::Nil)?;
    }
    let string: mlua::Table = g.get("string")?;
    string.raw_set("dump", Value::Nil)?;

    // Only os.time, os.date and os.clock: no files, processes, env or exit.
    let os: mlua::Table = g.get("os")?;
    let safe_os = lua.create_table()?;
    for name in ["time", "date", "clock", "difftime"] {
        safe_os.raw_set(name, os.get::<Value>(name)?)?;
    }
    g.raw_set("os", safe_os)?;

    // `load` accepts text chunks only: binary chunks can crash the VM.
    let raw_load: mlua::Function = g.get("load")?;
    let safe_load = lua
        .load(
            r#"local raw_load = ...
               return function(chunk, name, _mode, env)
                 if env == nil then return raw_load(chunk, name, "t") end
                 return raw_load(chunk, name, "t", env)
               end"#,
        )
        .set_name("=phs:load")
        .call::<mlua::Function>(raw_load)?;
    g.raw_set("load", safe_load)?;

    // collectgarbage("count") is handy for plugins and harmless; the rest is not offered.
    let count = lua.create_function(|lua, opt: Option<String>| match opt.as_deref() {
        None | Some("count") => Ok(lua.used_memory() as f64 / 1024.0),
        Some(other) => Err(mlua::Error::runtime(format!("collectgarbage(\"{other}\") is not available to plugins"))),
    })?;
    g.raw_set("collectgarbage", count)?;
    Ok(())
}

/// Lua runs `__gc` finalizers with hooks off, so a looping finalizer would
/// hang the state at the next collection. An object is marked for
/// finalization only when `setmetatable` (`lua_setmetatable`) is given a
/// metatable whose raw `__gc` is not nil (lgc.c `luaC_checkfinalizer`; the
/// manual, 2.5.3: a `__gc` added later does not mark it), and with `debug`
/// not loaded that is the plugin's only way to set a table's metatable.
fn no_finalizers(lua: &Lua) -> mlua::Result<()> {
    lua.load(
        r#"local g = ...
           local raw_setmetatable, rawget, type, error = g.setmetatable, g.rawget, g.type, g.error
           g.setmetatable = function(t, mt)
             if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
               error("setmetatable: plugins cannot set __gc (finalizers run outside the time limit)", 2)
             end
             return raw_setmetatable(t, mt)
           end"#,
    )
    .set_name("=phs:finalizers")
    .call::<()>(lua.globals())
}

/// Lua's own xpcall, for phs's wrapper around a hook call: that wrapper
/// raises again every error that comes out of it, so it needs no recheck.
pub(super) const RAW_XPCALL: &str = "phs:raw_xpcall";

/// pcall, xpcall and coroutines catch errors, including the time-limit error
/// raised by the hook; `while true do pcall(spin) end` would then never end.
/// These wrappers raise it again as soon as the protected call returns.
fn uncatchable_limits(lua: &Lua, deadline: Arc<Deadline>) -> mlua::Result<()> {
    let recheck = lua.create_function(move |_, ()| deadline.recheck())?;
    let g = lua.globals();
    lua.set_named_registry_value(RAW_XPCALL, g.get::<mlua::Function>("xpcall")?)?;
    let coroutine: mlua::Table = g.get("coroutine")?;
    lua.load(
        r#"local g, co, recheck = ...
           local raw_pcall, raw_xpcall, resume, create = g.pcall, g.xpcall, co.resume, co.create
           local function pass(...) recheck() return ... end
           g.pcall = function(...) return pass(raw_pcall(...)) end
           g.xpcall = function(...) return pass(raw_xpcall(...)) end
           co.resume = function(...) return pass(resume(...)) end
           local function unwrap(ok, ...)
             recheck()
             if not ok then error((...), 0) end
             return ...
           end
           co.wrap = function(f)
             local c = create(f)
             return function(...) return unwrap(resume(c, ...)) end
           end"#,
    )
    .set_name("=phs:limits")
    .call::<()>((g, coroutine, recheck))
}

/// The error and the errors it wraps, outermost first.
pub(super) fn chain(err: &mlua::Error) -> impl Iterator<Item = &mlua::Error> {
    std::iter::successors(Some(err), |e| match e {
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => Some(cause.as_ref()),
        _ => None,
    })
}

/// The time limit hit inside this error, if any.
pub fn time_limit(err: &mlua::Error) -> Option<Duration> {
    chain(err).find_map(|e| match e {
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<TimeLimitExceeded>().map(|t| t.0),
        _ => None,
    })
}

pub fn is_memory_error(err: &mlua::Error) -> bool {
    chain(err).any(|e| matches!(e, mlua::Error::MemoryError(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abandoned_store_wait_ending_late_leaves_the_current_one() {
        let deadline = Deadline::new();
        deadline.arm(Duration::from_secs(1));
        let abandoned = deadline.waiting_on_store("redis");
        deadline.arm(Duration::from_secs(1));
        assert!(deadline.store_waited().is_none(), "a new call has not waited yet");
        let current = deadline.waiting_on_store("redis");
        drop(abandoned);
        assert!(deadline.store_waited().is_some(), "the current call still waits on redis");
        drop(current);
        assert!(deadline.store_waited().is_none());
    }
}
