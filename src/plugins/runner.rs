//! The plugin runtime's service: a team's enabled plugin configs, loaded
//! and set up, and the processEvent chain the pipeline runs on each event
//! (its third stage). The async side (onEvent, exportEvents, jobs, tasks)
//! uses the same configs.
//!
//! As in the original: a plugin that throws leaves the last good event and
//! is listed in `$plugins_failed`; one that returns nil drops the event and
//! later plugins do not run; a changed `team_id` is reverted and counts as a
//! failure; plugins with onEvent or exportEvents are listed in
//! `$plugins_deferred`. Entries are "name (config id)".
//!
//! States are loaded lazily per plugin config, set up on first use, kept
//! while the config and plugin are unchanged, and rebuilt when either
//! changes. A config whose setup fails [`MAX_SETUP_FAILURES`] times, or
//! whose calls fail above the [`ErrorRatePolicy`], is disabled with the
//! reason stored.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::cache::Cache;
use crate::error::{ErrorKind, Kinded};
use crate::plugins::api::Capture;
use crate::plugins::error_rate::{self, ErrorRatePolicy, ErrorWindow, SHARE_EVERY};
use crate::plugins::fetch::FetchPolicy;
use crate::plugins::geoip::GeoIp;
use crate::plugins::log_writer::{ConfigLog, LogQueue, to_row};
use crate::plugins::logs::{LogEntry, LogLevel, LogSource};
use crate::plugins::{Budget, CallError, Context, Limits, PluginVm, Processed, registry};
use crate::store::{JobQueue, PluginConfig, PluginConfigUpdate, PluginStorage, PluginStore, Store, TeamStore};
use crate::wire::Producer;

/// Setup attempts before a config is disabled (the later original's 5).
pub const MAX_SETUP_FAILURES: u32 = 5;

/// Calls in a row that may hit a time or memory limit before the config is
/// disabled. A processEvent call that does holds up its whole batch, every
/// team's events in it included, for the full limit (a memory bomb costs
/// the allocations and a full collection), and an onEvent, job or task call
/// holds one of the job worker's slots for its 30 s: the error rate's 100
/// calls would be far too many.
pub const MAX_LIMITS_IN_A_ROW: u32 = 3;
const TIME_HIT: u8 = 1;
const MEMORY_HIT: u8 = 2;
/// How long a team's list of plugin configs is trusted before it is re-read.
const REFRESH: Duration = Duration::from_secs(2);

pub enum Outcome {
    Event(Map<String, Value>),
    Dropped {
        by: String,
    },
    /// A plugin's host call met an unreachable dependency: the event must be processed again later.
    Unavailable {
        by: String,
        error: String,
    },
    /// A plugin's processEvent or setupPlugin ran past the budget it was given
    /// and was cut: the event is to be processed again from the start, without a budget.
    Slow {
        by: String,
    },
}

/// A value and the `updated_at` of the row it was read from.
type Versioned<T> = (chrono::DateTime<chrono::Utc>, T);

/// Whether a state's setupPlugin has run.
enum SetUp {
    Ready,
    /// It failed (now, or too often before): the config's hooks are skipped.
    Failed,
    /// It waited on an unreachable cache or storage: try again later.
    Unavailable(String),
    /// It ran past its budget and was cut: it has not run, and runs again next time.
    Cut,
}

/// What one plugin of the chain made of the event it was given.
pub enum Step<'a> {
    /// processEvent returned this event (changed or not).
    Returned(&'a Map<String, Value>),
    /// processEvent returned nil: the event is dropped, later plugins do not run.
    Dropped,
    /// The call failed (the message carries the Lua traceback), or its result
    /// was refused; the event goes on as it was before this plugin. `limit`:
    /// a time or memory limit was hit, rather than the plugin's own error.
    Failed { message: String, limit: bool },
    /// The plugin did not run on this event, and why.
    Skipped(&'static str),
}

/// Sees each step of the processEvent chain: how `phs replay` shows what
/// every plugin did. The pipeline passes `()`, which sees nothing.
pub trait Trace: Send {
    fn step(&mut self, plugin: &Loaded, input: &Map<String, Value>, step: Step<'_>, took: Duration);

    /// False for a trace that ignores every step, which spares the runner
    /// the copy of the event that showing a step's input and output takes.
    fn enabled(&self) -> bool {
        true
    }
}

impl Trace for () {
    fn step(&mut self, _: &Loaded, _: &Map<String, Value>, _: Step<'_>, _: Duration) {}

    fn enabled(&self) -> bool {
        false
    }
}

/// The stores a runner uses, each by the narrow trait it needs, so a
/// wrapper (`phs replay`'s overlay) implements only what it wraps.
#[derive(Clone)]
pub struct Backends {
    pub teams: Arc<dyn TeamStore>,
    /// Plugins, configs, attachments, and where errors and logs are written.
    pub plugins: Arc<dyn PluginStore>,
    pub storage: Arc<dyn PluginStorage>,
    pub jobs: Arc<dyn JobQueue>,
    pub cache: Arc<dyn Cache>,
}

impl Backends {
    /// Every part from one store and cache: what the server runs on.
    pub fn of(store: Arc<dyn Store>, cache: Arc<dyn Cache>) -> Backends {
        Backends { teams: store.clone(), plugins: store.clone(), storage: store.clone(), jobs: store, cache }
    }
}

/// One Lua state of a config, and whether its setupPlugin ran.
struct State {
    vm: PluginVm,
    setup: Mutex<SetupState>,
}

impl State {
    fn new(vm: PluginVm) -> State {
        State { vm, setup: Mutex::new(SetupState::default()) }
    }
}

/// How a config's further states are built, on first use by their shard.
struct Recipe {
    source: Arc<super::PluginSource>,
    ctx: Context,
    limits: Limits,
}

/// One loaded plugin config: its Lua states, and how its calls went.
///
/// A config has one state per pipeline shard ([`RunnerOptions::states`]),
/// as the original had one per worker thread: shards call processEvent at
/// the same time without waiting for each other's state. The first state
/// is built with the config and also serves the async side (exportEvents,
/// jobs, tasks); onEvent runs on as many lanes as there are states. The
/// others are built when their shard or lane first needs them, so a config
/// that sees few events costs one state. Each state runs its own setupPlugin, and
/// `meta.global` is per state, as it was per worker thread. The error rate,
/// time-limit count and disabling are the config's, across its states.
pub struct Loaded {
    config: PluginConfig,
    plugin_updated: chrono::DateTime<chrono::Utc>,
    label: String,
    first: State,
    /// States 1.. (None: building it failed, and its shard uses the first).
    others: Box<[std::sync::OnceLock<Option<State>>]>,
    recipe: Option<Recipe>,
    stats: Arc<crate::metrics::PluginStats>,
    errors: std::sync::Mutex<ErrorWindow>,
    /// Set when this instance disabled the config, so it stops at once
    /// rather than at the next re-read of the team's configs.
    disabled: AtomicBool,
    /// Calls in a row (any hook) that hit a time or memory limit.
    limits_in_a_row: AtomicU32,
    /// Which limits those calls hit: [`TIME_HIT`] and/or [`MEMORY_HIT`].
    limits_hit: AtomicU8,
    /// The config's secret values, masked in what this runner logs and stores.
    secrets: Arc<super::secrets::Redactor>,
    /// Held while the config's error is written: a call failing on another
    /// shard's state as the config is disabled either writes its error
    /// before the disable's reason or sees the config disabled and does not.
    error_writes: Mutex<()>,
}

impl Loaded {
    /// The first state: the one the async side (onEvent, exportEvents, jobs, tasks) uses.
    pub fn vm(&self) -> &PluginVm {
        &self.first.vm
    }

    /// The state of shard `slot` (any number: slots wrap around the states).
    fn state(&self, slot: usize) -> &State {
        let n = self.others.len() + 1;
        let (Some(recipe), i @ 1..) = (&self.recipe, slot % n) else { return &self.first };
        let built = self.others[i - 1].get_or_init(|| {
            match PluginVm::load(&recipe.source, recipe.ctx.clone(), recipe.limits) {
                Ok(vm) => Some(State::new(vm)),
                Err(e) => {
                    tracing::warn!(config = self.config.id, state = i, %e,
                        "a further plugin state could not be built; its shard shares the first");
                    None
                }
            }
        });
        built.as_ref().unwrap_or(&self.first)
    }

    fn built_states(&self) -> impl Iterator<Item = &State> {
        std::iter::once(&self.first).chain(self.others.iter().filter_map(|o| o.get().and_then(Option::as_ref)))
    }
    pub fn config(&self) -> &PluginConfig {
        &self.config
    }
    /// Counts one call of the config on `vm` in its stats (`phs top`'s
    /// plugins panel), refreshing its memory figure now and then.
    pub async fn record_call(&self, vm: &PluginVm, took: std::time::Duration) {
        if self.stats.call(took) {
            self.stats.set_memory(vm.memory_used().await);
        }
    }
    /// "name (config id)", as in `$plugins_succeeded`.
    pub fn label(&self) -> &str {
        &self.label
    }
    /// This instance disabled the config (its calls stop at once).
    pub fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }
    /// Runs teardownPlugin if setupPlugin ran; its error is of no use to anyone.
    pub async fn teardown(&self) {
        for state in self.built_states() {
            if state.setup.lock().await.done {
                let _ = state.vm.teardown().await;
            }
        }
    }
    /// Why the last setupPlugin failed, while setup has not succeeded.
    pub async fn setup_error(&self) -> Option<CallError> {
        let state = self.first.setup.lock().await;
        if state.done { None } else { state.last_error.clone() }
    }
}

#[derive(Default)]
struct SetupState {
    done: bool,
    failures: u32,
    last_error: Option<CallError>,
}

/// A team's loaded configs, as of `read_at`.
struct TeamPlugins {
    read_at: Instant,
    loaded: Arc<Vec<Arc<Loaded>>>,
    /// A background refresh is under way; readers keep using `loaded`.
    refreshing: bool,
}

/// How plugin states are built and policed.
#[derive(Clone, Default)]
pub struct RunnerOptions {
    pub limits: Limits,
    pub fetch: FetchPolicy,
    pub geoip: Option<Arc<GeoIp>>,
    pub auto_disable: ErrorRatePolicy,
    /// Lua states per config: one per pipeline shard (0 counts as 1).
    pub states: usize,
    /// Where the cluster's error counts live in the cache (None:
    /// [`error_rate::CLUSTER_KEY`]); tests sharing a Redis use their own.
    pub error_rate_key: Option<String>,
}

pub struct PluginRunner {
    stores: Backends,
    producer: Option<Arc<dyn Producer>>,
    options: RunnerOptions,
    instance_id: Uuid,
    logs: LogQueue,
    /// Held only to read or replace an entry, never across an await: the
    /// per-event path takes it for a lookup and never waits on a reload.
    teams: std::sync::Mutex<HashMap<i64, TeamPlugins>>,
    /// One loader per team at a time (the first load, or a refresh).
    loading: std::sync::Mutex<HashMap<i64, Arc<Mutex<()>>>>,
    /// Each plugin's code as last read, by plugin id with its `updated_at`:
    /// every team's config of one plugin loads the same files, and at
    /// thousands of teams reading them once per config was a query per team.
    sources: std::sync::Mutex<HashMap<i64, Versioned<Arc<super::PluginSource>>>>,
    /// This runner, for the refreshes it spawns.
    me: std::sync::Weak<PluginRunner>,
}

impl PluginRunner {
    /// Also starts the task that writes plugin log entries in batches.
    /// `producer` is where `posthog.capture` sends events (None: not available).
    pub fn new(
        stores: Backends,
        producer: Option<Arc<dyn Producer>>,
        options: RunnerOptions,
        instance_id: Uuid,
    ) -> Arc<Self> {
        let logs = LogQueue::start(stores.plugins.clone());
        Arc::new_cyclic(|me| PluginRunner {
            stores,
            producer,
            options,
            instance_id,
            logs,
            teams: Default::default(),
            loading: Default::default(),
            sources: Default::default(),
            me: me.clone(),
        })
    }

    /// Lua states per config: how many shards can run processEvent at once.
    pub fn states(&self) -> usize {
        self.options.states.max(1)
    }

    /// Returns once every log entry written so far is in the plugin store.
    pub async fn flush_logs(&self) {
        self.logs.flush().await;
    }

    /// Runs the team's plugins on one event.
    pub async fn process(&self, team_id: i64, event: Map<String, Value>) -> Outcome {
        self.process_on(0, team_id, event, None, &mut ()).await.0
    }

    /// [`PluginRunner::process`], showing each plugin's step to `trace`.
    pub async fn process_traced(&self, team_id: i64, event: Map<String, Value>, trace: &mut impl Trace) -> Outcome {
        self.process_on(0, team_id, event, None, trace).await.0
    }

    /// [`PluginRunner::process_traced`] on the states of shard `slot`: each
    /// pipeline shard passes its own, so shards never wait for each other.
    /// With a `budget`, a chain of processEvent calls that runs longer is cut
    /// and the event comes back [`Outcome::Slow`], with nothing counted
    /// against the plugin whose call was cut. Also returns how long the
    /// team's plugins took (their setupPlugin and calls, not phs's own
    /// bookkeeping such as recording their errors).
    pub async fn process_on(
        &self,
        slot: usize,
        team_id: i64,
        mut event: Map<String, Value>,
        budget: Option<Budget>,
        trace: &mut impl Trace,
    ) -> (Outcome, Duration) {
        let plugins = match self.team_plugins(team_id).await {
            Ok(plugins) => plugins,
            // Passing the event on without its team's plugins would be for good: it waits instead.
            Err(err) => {
                let by = "the team's plugin list".into();
                return (Outcome::Unavailable { by, error: err.to_string() }, Duration::ZERO);
            }
        };
        if plugins.is_empty() || event.get("event").and_then(Value::as_str) == Some("$snapshot") {
            return (Outcome::Event(event), Duration::ZERO);
        }
        let (mut succeeded, mut failed, mut deferred) = (Vec::new(), Vec::new(), Vec::new());
        let mut spent = Duration::ZERO;
        for p in plugins.iter() {
            if p.vm().has("onEvent") || p.vm().has("exportEvents") {
                deferred.push(p.label.clone());
            }
            if !p.vm().has("processEvent") {
                continue;
            }
            if p.disabled.load(Ordering::Relaxed) {
                trace.step(p, &event, Step::Skipped("disabled"), Duration::ZERO);
                continue;
            }
            let state = p.state(slot);
            let setting_up = Instant::now();
            // The budget is the whole chain's: what the plugins before this one left of it.
            let set_up = self.set_up(p, state, budget.map(|b| b.less(spent))).await;
            spent += setting_up.elapsed();
            match set_up {
                SetUp::Ready => {}
                SetUp::Cut => {
                    trace.step(p, &event, Step::Skipped("setupPlugin was cut"), Duration::ZERO);
                    self.log_cut(p, "setupPlugin", budget);
                    return (Outcome::Slow { by: p.label.clone() }, spent);
                }
                SetUp::Failed => {
                    trace.step(p, &event, Step::Skipped("setupPlugin failed"), Duration::ZERO);
                    failed.push(p.label.clone());
                    continue;
                }
                SetUp::Unavailable(error) => return (Outcome::Unavailable { by: p.label.clone(), error }, spent),
            }
            event.insert("team_id".into(), json!(team_id));
            // Lent to the call: the plugin reads it through a proxy, and its
            // changes are applied here only once the call has succeeded.
            let started = Instant::now();
            let result = state.vm.process_within(&event, budget.map(|b| b.less(spent))).await;
            let took = started.elapsed();
            spent += took;
            if let Err(e @ CallError::OverBudget(_)) = &result {
                trace.step(p, &event, Step::Failed { message: e.to_string(), limit: false }, took);
                self.log_cut(p, "processEvent", budget);
                return (Outcome::Slow { by: p.label.clone() }, spent);
            }
            if let Err(e @ CallError::Unavailable(error)) = &result {
                // Not the plugin's failure: nothing recorded against it, nothing counted towards
                // disabling it; the pipeline retries the batch once the dependency answers.
                trace.step(p, &event, Step::Failed { message: e.to_string(), limit: false }, took);
                return (Outcome::Unavailable { by: p.label.clone(), error: error.clone() }, spent);
            }
            p.record_call(&state.vm, took).await;
            if let Err(e) = &result {
                trace.step(p, &event, Step::Failed { message: e.to_string(), limit: e.is_limit() }, took);
                let source = if e.is_limit() { LogSource::System } else { LogSource::Plugin };
                self.log(p, source, LogLevel::Error, format!("processEvent failed: {e}"));
                self.record_error(p, &e.to_string(), Some(&Value::Object(event.clone()))).await;
            }
            // After the error is recorded: a disable's reason replaces it on the config.
            self.count_limits(p, "processEvent", result.as_ref().err()).await;
            let failed_call = match result {
                Ok(Processed::Dropped) => {
                    trace.step(p, &event, Step::Dropped, took);
                    self.count_call(p, false).await;
                    return (Outcome::Dropped { by: p.label.clone() }, spent);
                }
                Ok(Processed::Kept(edit)) => {
                    // The uuid is the event's key in the embedded events store: one set to
                    // another team's event's would replace that event there.
                    let moved = if edit.get(&event, "team_id") != Some(&json!(team_id)) {
                        Some("team_id")
                    } else if edit.get(&event, "uuid") != event.get("uuid") {
                        Some("uuid")
                    } else {
                        None
                    };
                    if let Some(field) = moved {
                        let why = format!("processEvent changed {field}; the change was reverted");
                        trace.step(p, &event, Step::Failed { message: why.clone(), limit: false }, took);
                        self.log(p, LogSource::System, LogLevel::Error, why);
                        true
                    } else {
                        let input = trace.enabled().then(|| event.clone());
                        edit.apply(&mut event);
                        if let Some(input) = input {
                            trace.step(p, &input, Step::Returned(&event), took);
                        }
                        succeeded.push(p.label.clone());
                        false
                    }
                }
                Err(_) => true,
            };
            if failed_call {
                failed.push(p.label.clone());
            }
            self.count_call(p, failed_call).await;
        }
        event.remove("team_id");
        let props = event.entry("properties").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(props) = props {
            for (key, list) in
                [("$plugins_succeeded", succeeded), ("$plugins_failed", failed), ("$plugins_deferred", deferred)]
            {
                props.insert(key.into(), json!(list));
            }
        }
        (Outcome::Event(event), spent)
    }

    /// The operator's one sign of a cut in `phs plugins logs`: the main
    /// pipeline calls a slow team's plugins again only once its slow-lane time is over.
    fn log_cut(&self, p: &Loaded, hook: &str, budget: Option<Budget>) {
        let Budget { wall, cpu } = budget.unwrap_or(Budget { wall: Duration::ZERO, cpu: Duration::ZERO });
        let why = format!(
            "{hook} was cut: the event's plugins ran past the main pipeline's budget of {} ms ({} ms of CPU; \
             PHS_SLOW_LANE_MS); this event and the team's next ones run in the overflow lane, with the full \
             limits, until its calls are fast again",
            wall.as_millis(),
            cpu.as_millis()
        );
        self.log(p, LogSource::System, LogLevel::Warn, why);
    }

    /// Runs setupPlugin once on the first state (the async side's); after
    /// repeated failures the config is disabled.
    pub async fn ensure_setup(&self, p: &Loaded) -> bool {
        matches!(self.set_up(p, &p.first, None).await, SetUp::Ready)
    }

    /// The config's state for async lane `lane` (lanes wrap around its
    /// states), once that state's setupPlugin ran: Err with the reason when
    /// setup met an outage (try again later), Ok(None) when it failed.
    pub async fn lane<'a>(&self, p: &'a Loaded, lane: usize) -> Result<Option<&'a PluginVm>, String> {
        let state = p.state(lane);
        match self.set_up(p, state, None).await {
            SetUp::Ready => Ok(Some(&state.vm)),
            SetUp::Failed => Ok(None),
            SetUp::Unavailable(reason) => Err(reason),
            SetUp::Cut => unreachable!("a setup without a budget is never cut"),
        }
    }

    /// Runs setupPlugin once on one of the config's states, cut at `budget` if one is given.
    async fn set_up(&self, p: &Loaded, on: &State, budget: Option<Budget>) -> SetUp {
        let mut state = on.setup.lock().await;
        if state.done {
            return SetUp::Ready;
        }
        if state.failures >= MAX_SETUP_FAILURES {
            return SetUp::Failed;
        }
        match on.vm.setup_within(budget).await {
            Ok(()) => {
                state.done = true;
                SetUp::Ready
            }
            // Not the plugin's failure: it runs again, with the full limits, in the overflow lane.
            Err(CallError::OverBudget(_)) => SetUp::Cut,
            // An outage of the cache or storage is not the plugin's failure: tried again later, not counted.
            Err(CallError::Unavailable(error)) => SetUp::Unavailable(error),
            Err(e) => {
                state.failures += 1;
                state.last_error = Some(e.clone());
                let message = format!("setupPlugin failed (attempt {} of {MAX_SETUP_FAILURES}): {e}", state.failures);
                self.log(p, LogSource::System, LogLevel::Error, message.clone());
                self.record_error(p, &message, None).await;
                if state.failures >= MAX_SETUP_FAILURES {
                    let reason = format!(
                        "disabled automatically: setupPlugin failed {MAX_SETUP_FAILURES} times; last error: {e}"
                    );
                    self.disable(p, reason).await;
                }
                SetUp::Failed
            }
        }
    }

    /// Counts calls in a row that hit a time or memory limit (`error` is the
    /// call's, None when it succeeded), disabling the config at
    /// [`MAX_LIMITS_IN_A_ROW`]; any other outcome starts over. Every hook
    /// counts: the async side calls this too.
    pub async fn count_limits(&self, p: &Loaded, hook: &str, error: Option<&CallError>) {
        let Some(e) = error.filter(|e| e.is_limit()) else {
            if p.limits_in_a_row.swap(0, Ordering::Relaxed) > 0 {
                p.limits_hit.store(0, Ordering::Relaxed);
                p.built_states().for_each(|s| s.vm.set_probation(false));
            }
            return;
        };
        let n = p.limits_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        let kind = if matches!(e, CallError::TimeLimit(_)) { TIME_HIT } else { MEMORY_HIT };
        let hit = p.limits_hit.fetch_or(kind, Ordering::Relaxed) | kind;
        p.built_states().for_each(|s| s.vm.set_probation(true));
        if n >= MAX_LIMITS_IN_A_ROW {
            // A memory bomb on probation may run out of its shorter time first.
            let what = match hit {
                TIME_HIT => "ran out of time",
                MEMORY_HIT => "ran out of memory",
                _ => "ran out of memory and time",
            };
            let reason = format!(
                "disabled automatically: {hook} {what} {n} times in a row (the last: {e}; after the first, \
                 calls get a tenth of the time limits); each such call holds up every event of its batch \
                 or a job worker slot"
            );
            self.disable(p, reason).await;
        }
    }

    /// Counts a call towards the config's error rate, disabling it past the policy.
    async fn count_call(&self, p: &Loaded, failed: bool) {
        let policy = &self.options.auto_disable;
        let tripped = p.errors.lock().unwrap_or_else(|e| e.into_inner()).record(policy, failed);
        if let Some(reason) = tripped {
            self.disable(p, reason).await;
        }
    }

    /// Adds every loaded config's call and failure counts to the cluster's
    /// every [`SHARE_EVERY`] until `stop`, disabling a config whose sums pass
    /// the policy (see [`crate::plugins::error_rate`]).
    pub async fn share_error_rates(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(SHARE_EVERY) => {}
                _ = stop.cancelled() => return,
            }
            self.share_error_rates_once().await;
        }
    }

    /// One round of [`PluginRunner::share_error_rates`].
    pub async fn share_error_rates_once(&self) {
        let loaded: Vec<Arc<Loaded>> = {
            let teams = self.teams.lock().unwrap_or_else(|p| p.into_inner());
            teams.values().flat_map(|t| t.loaded.iter().cloned()).collect()
        };
        let policy = &self.options.auto_disable;
        let sharing: Vec<(Arc<Loaded>, (u32, u32))> = loaded
            .into_iter()
            .filter(|p| !p.disabled.load(Ordering::Relaxed))
            .map(|p| {
                let counts = p.errors.lock().unwrap_or_else(|e| e.into_inner()).take_unshared();
                (p, counts)
            })
            .filter(|(_, (calls, _))| *calls > 0)
            .collect();
        if sharing.is_empty() {
            return;
        }
        let counts: Vec<(i64, (u32, u32))> = sharing.iter().map(|(p, c)| (p.config.id, *c)).collect();
        let key = self.options.error_rate_key.as_deref().unwrap_or(error_rate::CLUSTER_KEY);
        match error_rate::share(self.stores.cache.as_ref(), key, policy, &counts).await {
            Ok(verdicts) => {
                for (config, reason) in verdicts {
                    if let Some((p, _)) = sharing.iter().find(|(p, _)| p.config.id == config) {
                        self.disable(p, reason).await;
                    }
                }
            }
            // This instance's own window still judges its calls meanwhile, and the counts wait for the next round.
            Err(err) => {
                tracing::warn!(configs = sharing.len(), %err, "could not share plugins' error counts");
                for (p, counts) in &sharing {
                    p.errors.lock().unwrap_or_else(|e| e.into_inner()).give_back(*counts);
                }
            }
        }
    }

    /// Disables the config with the reason stored, once; `phs plugins enable` clears it.
    async fn disable(&self, p: &Loaded, reason: String) {
        if p.disabled.swap(true, Ordering::Relaxed) {
            return;
        }
        // Shown as disabled in /_snapshot and `phs top` whatever the cause.
        p.stats.disable();
        // The reason may quote the plugin's last error, which may hold a secret.
        let reason = p.secrets.redact(&reason).into_owned();
        self.log(p, LogSource::System, LogLevel::Error, reason.clone());
        let _writing = p.error_writes.lock().await;
        let update = PluginConfigUpdate {
            enabled: Some(false),
            error: Some(Some(error_json(&reason, None))),
            ..Default::default()
        };
        if let Err(err) = self.stores.plugins.update_plugin_config(p.config.id, &update).await {
            tracing::warn!(config = p.config.id, %err, "could not disable a failing plugin config");
        }
    }

    pub async fn record_error(&self, p: &Loaded, message: &str, event: Option<&Value>) {
        let message = p.secrets.redact(message);
        let message = message.as_ref();
        // The event is shown with the error (the config's stored error, /_snapshot, `phs top`):
        // the plugin may have put its secret in it.
        let event = event.map(|e| p.secrets.redact_json(e));
        let event = event.as_ref();
        crate::metrics::global().plugin_error(&p.stats, message, event);
        // Once disabled, the reason stays on the config: a call still running on another
        // shard's state when it was disabled must not replace it with its own error.
        let _writing = p.error_writes.lock().await;
        if p.is_disabled() {
            return;
        }
        let update = PluginConfigUpdate { error: Some(Some(error_json(message, event))), ..Default::default() };
        if let Err(err) = self.stores.plugins.update_plugin_config(p.config.id, &update).await {
            tracing::warn!(config = p.config.id, %err, "could not record a plugin error");
        }
    }

    pub fn log(&self, p: &Loaded, source: LogSource, level: LogLevel, message: String) {
        let entry = LogEntry::new(source, level, p.secrets.redact(&message).into_owned());
        self.logs.send(to_row(&p.config, self.instance_id, entry));
    }

    /// Every enabled config of every team, loaded (the async side sets up
    /// plugins with tasks or jobs eagerly, and schedules their tasks).
    pub async fn all_plugins(&self) -> Vec<Arc<Loaded>> {
        let configs = match self.stores.plugins.list_plugin_configs(None).await {
            Ok(c) => c,
            Err(err) => {
                tracing::warn!(%err, "could not list plugin configs");
                return Vec::new();
            }
        };
        let mut teams: Vec<i64> = configs.iter().filter(|c| c.enabled).map(|c| c.team_id).collect();
        teams.dedup();
        let mut out = Vec::new();
        for team in teams {
            match self.team_plugins(team).await {
                Ok(plugins) => out.extend(plugins.iter().cloned()),
                Err(err) => {
                    tracing::warn!(team_id = team, %err, "could not load the team's plugins; tried again later")
                }
            }
        }
        out
    }

    /// The loaded state of one enabled config of a team, if it is enabled.
    pub async fn plugin(&self, team_id: i64, config_id: i64) -> Result<Option<Arc<Loaded>>, registry::RegistryError> {
        Ok(self.team_plugins(team_id).await?.iter().find(|l| l.config.id == config_id).cloned())
    }

    /// The team's configs with a hook that runs after events are stored
    /// (onEvent, exportEvents): the ones the async side hands events to.
    pub async fn async_plugins(&self, team_id: i64) -> Result<Vec<Arc<Loaded>>, registry::RegistryError> {
        let all = self.team_plugins(team_id).await?;
        Ok(all.iter().filter(|p| p.vm().has("onEvent") || p.vm().has("exportEvents")).cloned().collect())
    }

    /// The team's enabled configs in order. The first call for a team loads
    /// them; after that a list older than [`REFRESH`] is still returned at
    /// once while one background task re-reads it (rebuilding states whose
    /// config or plugin changed), so no event waits on another team's reload.
    /// An error is the store failing for a while (transient) on a first load:
    /// the caller must wait, not go on as if the team had no plugins.
    pub async fn team_plugins(&self, team_id: i64) -> Result<Arc<Vec<Arc<Loaded>>>, registry::RegistryError> {
        if let Some(loaded) = self.cached(team_id) {
            return Ok(loaded);
        }
        let gate = self.gate(team_id);
        let _loading = gate.lock().await;
        // Another caller may have loaded it while this one waited.
        if let Some(loaded) = self.cached(team_id) {
            return Ok(loaded);
        }
        self.reload(team_id).await
    }

    /// The team's list if it was loaded, starting a refresh when it is stale.
    fn cached(&self, team_id: i64) -> Option<Arc<Vec<Arc<Loaded>>>> {
        let mut teams = self.teams.lock().unwrap_or_else(|p| p.into_inner());
        let t = teams.get_mut(&team_id)?;
        if t.read_at.elapsed() >= REFRESH && !t.refreshing {
            if let Some(me) = self.me.upgrade() {
                t.refreshing = true;
                tokio::spawn(async move {
                    let gate = me.gate(team_id);
                    let _loading = gate.lock().await;
                    let _ = me.reload(team_id).await;
                });
            }
        }
        Some(t.loaded.clone())
    }

    fn gate(&self, team_id: i64) -> Arc<Mutex<()>> {
        self.loading.lock().unwrap_or_else(|p| p.into_inner()).entry(team_id).or_default().clone()
    }

    /// Re-reads the team's configs and stores the list; the caller holds the team's gate.
    /// When the store fails for a while, a list read before stays in use (it
    /// is read again after [`REFRESH`]); without one the error is returned.
    async fn reload(&self, team_id: i64) -> Result<Arc<Vec<Arc<Loaded>>>, registry::RegistryError> {
        let previous = {
            let teams = self.teams.lock().unwrap_or_else(|p| p.into_inner());
            teams.get(&team_id).map(|t| t.loaded.clone())
        };
        let loaded = match self.load_team(team_id, previous.as_deref().cloned().unwrap_or_default()).await {
            Ok(l) => Arc::new(l),
            Err(err) if err.kind() == ErrorKind::Transient => {
                tracing::warn!(team_id, %err, "could not load the team's plugins; tried again later");
                let mut teams = self.teams.lock().unwrap_or_else(|p| p.into_inner());
                match (previous, teams.get_mut(&team_id)) {
                    (Some(previous), Some(t)) => {
                        t.read_at = Instant::now();
                        t.refreshing = false;
                        return Ok(previous);
                    }
                    _ => return Err(err),
                }
            }
            Err(err) => {
                tracing::warn!(team_id, %err, "could not load the team's plugins; events pass unchanged");
                Arc::new(Vec::new())
            }
        };
        let entry = TeamPlugins { read_at: Instant::now(), loaded: loaded.clone(), refreshing: false };
        self.teams.lock().unwrap_or_else(|p| p.into_inner()).insert(team_id, entry);
        Ok(loaded)
    }

    async fn load_team(
        &self,
        team_id: i64,
        previous: Vec<Arc<Loaded>>,
    ) -> Result<Vec<Arc<Loaded>>, registry::RegistryError> {
        let plugins = self.stores.plugins.list_plugins().await?;
        let configs = self.stores.plugins.list_plugin_configs(Some(team_id)).await?;
        let mut out = Vec::new();
        for config in configs.into_iter().filter(|c| c.enabled) {
            let Some(plugin) = plugins.iter().find(|p| p.id == config.plugin_id) else { continue };
            let unchanged = previous.iter().find(|l| {
                l.config.id == config.id
                    && l.config.updated_at == config.updated_at
                    && l.plugin_updated == plugin.updated_at
            });
            if let Some(l) = unchanged {
                out.push(l.clone());
                continue;
            }
            match self.build(&config, plugin).await {
                Ok(l) => out.push(Arc::new(l)),
                // Not the config's fault: the whole list is read again later.
                Err(e) if e.kind() == ErrorKind::Transient => return Err(e),
                Err(e) => {
                    tracing::warn!(config = config.id, plugin = %plugin.name, %e, "plugin could not be loaded");
                    let update = PluginConfigUpdate {
                        error: Some(Some(error_json(&e.to_string(), None))),
                        ..Default::default()
                    };
                    let _ = self.stores.plugins.update_plugin_config(config.id, &update).await;
                }
            }
        }
        // States no longer used are torn down off the event path.
        for old in previous {
            if !out.iter().any(|l| Arc::ptr_eq(l, &old)) {
                tokio::spawn(async move { old.teardown().await });
            }
        }
        Ok(out)
    }

    /// The plugin's code, read from the store once per version of the plugin.
    async fn source(&self, plugin: &crate::store::Plugin) -> Result<Arc<super::PluginSource>, registry::RegistryError> {
        let cached = self.sources.lock().unwrap_or_else(|p| p.into_inner()).get(&plugin.id).cloned();
        if let Some((updated_at, source)) = cached
            && updated_at == plugin.updated_at
        {
            return Ok(source);
        }
        let source = Arc::new(registry::source(self.stores.plugins.as_ref(), plugin).await?);
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        sources.insert(plugin.id, (plugin.updated_at, source.clone()));
        Ok(source)
    }

    async fn build(
        &self,
        config: &PluginConfig,
        plugin: &crate::store::Plugin,
    ) -> Result<Loaded, registry::RegistryError> {
        let source = self.source(plugin).await?;
        let raw = registry::raw_config(config);
        let secrets = Arc::new(super::secrets::Redactor::of(plugin, config));
        let ctx = Context {
            team_id: config.team_id,
            plugin_id: plugin.id,
            plugin_config_id: config.id,
            config: source.manifest.validate_config(&raw)?,
            cache: self.stores.cache.clone(),
            storage: self.stores.storage.clone(),
            jobs: self.stores.jobs.clone(),
            logs: Arc::new(ConfigLog {
                config: config.clone(),
                instance_id: self.instance_id,
                queue: self.logs.clone(),
                secrets: secrets.clone(),
            }),
            capture: match (&self.producer, self.stores.teams.team_by_id(config.team_id).await?) {
                (Some(producer), Some(team)) => Some(Capture {
                    producer: producer.clone(),
                    token: team.api_token,
                    plugin_name: plugin.name.clone(),
                    budget: Default::default(),
                }),
                _ => None,
            },
            fetch: self.options.fetch.clone(),
            attachments: self.stores.plugins.plugin_attachments(config.id).await?,
            geoip: self.options.geoip.clone(),
        };
        let vm = PluginVm::load(&source, ctx.clone(), self.options.limits)?;
        let further = self.options.states.saturating_sub(1);
        let recipe = (further > 0 && (vm.has("processEvent") || vm.has("onEvent"))).then(|| Recipe {
            source,
            ctx,
            limits: self.options.limits,
        });
        Ok(Loaded {
            label: format!("{} ({})", plugin.name, config.id),
            config: config.clone(),
            plugin_updated: plugin.updated_at,
            first: State::new(vm),
            others: (0..further).map(|_| std::sync::OnceLock::new()).collect(),
            recipe,
            stats: crate::metrics::global().plugin(config.id, config.team_id, &plugin.name),
            errors: Default::default(),
            disabled: AtomicBool::new(false),
            limits_in_a_row: AtomicU32::new(0),
            limits_hit: AtomicU8::new(0),
            error_writes: Mutex::new(()),
            secrets,
        })
    }
}

/// The error stored on a plugin config, shaped like the original's.
fn error_json(message: &str, event: Option<&Value>) -> Value {
    json!({"message": message, "time": chrono::Utc::now().to_rfc3339(), "name": "Error", "event": event})
}
