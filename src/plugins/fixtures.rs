//! The fixture runner behind `phs plugins test`: runs events through a
//! plugin's setupPlugin and processEvent with no external service and
//! compares the results. The events go through the server's own plugin
//! runner, backed by in-memory stores ([`rig`]), so a fixture shows what
//! `phs serve` would do with them.
//!
//! A fixture is a JSON file in the plugin's `tests/` folder:
//! `{"description", "config": {KEY: "raw value"}, "event": {...},
//!   "expected": {...} | null}` where null means "dropped", or
//! `"expected_error": "text the error contains"` instead of `expected`.
//! A sequence fixture gives `"events": [...]` and `"expected": [...]`
//! instead: the events go through one state in order, so `meta.global`,
//! the cache and storage carry over from one to the next. Fixtures for the
//! async hooks (onEvent, exportEvents, tasks, jobs) are scenarios, run by
//! [`super::scenario`].
//!
//! Two optional keys stand in for outside services: `"geoip": {NETWORK:
//! City record}` gives the run a GeoIP database holding those records, and
//! `"fetch": {PATH: answer}` starts a local HTTP server answering them
//! (see [`http`]), whose base URL replaces `${FETCH}` in config values.

pub mod http;
pub mod rig;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fetch::FetchPolicy;
use super::geoip::GeoIp;
use super::logs::LogEntry;
use super::runner::RunnerOptions;
use super::{Limits, PluginSource};
use rig::Rig;

#[derive(Debug, Clone, Deserialize)]
pub struct Fixture {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub event: Option<Value>,
    /// A sequence run through one state, with `expected` an array.
    #[serde(default)]
    pub events: Option<Vec<Value>>,
    /// Missing (not null) when `expected_error` is given.
    #[serde(default, deserialize_with = "present")]
    pub expected: Option<Value>,
    #[serde(default)]
    pub expected_error: Option<String>,
    /// Scenario keys for the async hooks; see [`super::scenario`].
    #[serde(default)]
    pub http: Option<Vec<super::scenario::HttpReply>>,
    #[serde(default)]
    pub run: Option<Vec<String>>,
    #[serde(default)]
    pub expected_requests: Option<Vec<Value>>,
    #[serde(default)]
    pub expected_captures: Option<Vec<Value>>,
    /// GeoIP records by network (`1.2.3.4` or `1.2.3.0/24`).
    #[serde(default)]
    pub geoip: BTreeMap<String, Value>,
    /// Local HTTP answers by path (`/latest` or `/latest?base=USD`).
    #[serde(default)]
    pub fetch: BTreeMap<String, Value>,
    /// How many requests each `fetch` answer must have served by the end
    /// (e.g. 1 to show a plugin caches what it fetched).
    #[serde(default)]
    pub expected_fetches: Option<BTreeMap<String, u64>>,
}

/// What a run gets besides the plugin and its config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub limits: Limits,
    /// The database behind `meta.geoip` (`phs plugins test --geoip-db`).
    pub geoip: Option<Arc<GeoIp>>,
    /// What `fetch` may reach.
    pub fetch: FetchPolicy,
}

impl RunOptions {
    /// The runner's options: the server's, with this run's limits, GeoIP and fetch policy.
    pub fn runner(&self) -> RunnerOptions {
        RunnerOptions {
            limits: self.limits,
            fetch: self.fetch.clone(),
            geoip: self.geoip.clone(),
            ..Default::default()
        }
    }
}

/// Tells `"expected": null` (dropped) from a missing key.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// What one event did in the plugin.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Event {
        event: Value,
    },
    Dropped,
    Error {
        error: String,
        limit: bool,
    },
    /// The outcomes of a sequence fixture, in order.
    Sequence {
        results: Vec<Outcome>,
    },
    /// A scenario: processEvent outcomes, the requests its HTTP responder
    /// saw, and the events the plugin captured.
    Scenario {
        results: Vec<Outcome>,
        requests: Vec<Value>,
        captures: Vec<Value>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub name: String,
    pub passed: bool,
    pub outcome: Outcome,
    /// Why it failed, readable: one line per differing path.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// The runner could not load the plugin: its config or code is invalid.
    #[error("{0}")]
    NotLoaded(String),
    #[error("fixture `geoip`: {0}")]
    GeoIp(String),
    #[error("fixture `fetch`: cannot start the local HTTP server: {0}")]
    Fetch(std::io::Error),
}

/// Runs one event through a fresh runner (setupPlugin, then processEvent).
pub async fn run_event(
    source: &PluginSource,
    config: &BTreeMap<String, String>,
    event: &Value,
    opts: &RunOptions,
) -> Result<(Outcome, Vec<LogEntry>), FixtureError> {
    let (mut outcomes, logs) = run_events(source, config, std::slice::from_ref(event), opts).await?;
    Ok((outcomes.remove(0), logs))
}

/// Runs events in order through one fresh runner holding just this plugin,
/// as the pipeline's plugins stage does: setupPlugin on first use (tried
/// again on the next event after a failure), then processEvent for each.
pub async fn run_events(
    source: &PluginSource,
    config: &BTreeMap<String, String>,
    events: &[Value],
    opts: &RunOptions,
) -> Result<(Vec<Outcome>, Vec<LogEntry>), FixtureError> {
    let rig = Rig::new(source, config, opts.runner(), None);
    let plugin = rig.plugin().await?;
    let mut outcomes = Vec::with_capacity(events.len());
    for event in events {
        outcomes.push(rig.process(&plugin, event).await);
    }
    Ok((outcomes, rig.finish(&plugin).await))
}

/// Reads every `*.json` fixture in `dir/tests`, sorted by name.
pub fn load_fixtures(dir: &Path) -> Result<Vec<(String, Fixture)>, FixtureError> {
    let tests = dir.join("tests");
    let invalid = |p: &Path, m: String| FixtureError::Invalid { path: p.display().to_string(), message: m };
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&tests) {
        Ok(rd) => {
            rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect()
        }
        Err(e) => return Err(invalid(&tests, format!("cannot read the fixtures folder: {e}"))),
    };
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|e| invalid(&p, e.to_string()))?;
        let f: Fixture = serde_json::from_str(&text).map_err(|e| invalid(&p, format!("not a fixture: {e}")))?;
        if super::scenario::is_scenario(&f) {
            super::scenario::validate(&f).map_err(|m| invalid(&p, m))?;
            let name = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            out.push((name, f));
            continue;
        }
        if f.expected.is_none() == f.expected_error.is_none() {
            return Err(invalid(&p, "give exactly one of `expected` (null for dropped) and `expected_error`".into()));
        }
        match (&f.event, &f.events) {
            (Some(_), None) => {}
            (None, Some(evs)) => {
                let n = f.expected.as_ref().and_then(|e| e.as_array()).map(Vec::len);
                if f.expected_error.is_none() && n != Some(evs.len()) {
                    return Err(invalid(
                        &p,
                        format!(
                            "`events` has {} events, so `expected` must be an array of {} results",
                            evs.len(),
                            evs.len()
                        ),
                    ));
                }
            }
            _ => return Err(invalid(&p, "give exactly one of `event` and `events`".into())),
        }
        if f.expected_fetches.is_some() && f.fetch.is_empty() {
            return Err(invalid(&p, "`expected_fetches` needs a `fetch` map to count".into()));
        }
        let name = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        out.push((name, f));
    }
    if out.is_empty() {
        return Err(invalid(&tests, "no *.json fixtures".into()));
    }
    Ok(out)
}

/// Runs one fixture and compares the outcomes with what it expects.
pub async fn check(source: &PluginSource, name: &str, f: &Fixture, opts: &RunOptions) -> Result<Report, FixtureError> {
    if super::scenario::is_scenario(f) {
        return super::scenario::check(source, name, f, opts).await;
    }
    let (events, expected): (Vec<Value>, Vec<Option<&Value>>) = match (&f.event, &f.events) {
        (Some(e), _) => (vec![e.clone()], vec![f.expected.as_ref()]),
        (None, Some(evs)) => {
            let exp = f.expected.as_ref().and_then(|e| e.as_array());
            (evs.clone(), (0..evs.len()).map(|i| exp.map(|a| &a[i])).collect())
        }
        (None, None) => unreachable!("load_fixtures requires event or events"),
    };
    let mut opts = opts.clone();
    let mut config = f.config.clone();
    if !f.geoip.is_empty() {
        let entries: Vec<_> = f.geoip.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let bytes = super::geoip::writer::write(&entries).map_err(FixtureError::GeoIp)?;
        let db = GeoIp::from_bytes(bytes, "the fixture's geoip map").map_err(|e| FixtureError::GeoIp(e.to_string()))?;
        opts.geoip = Some(Arc::new(db));
    }
    // Kept alive until the run ends.
    let server = if f.fetch.is_empty() {
        None
    } else {
        let server = http::serve(&f.fetch).await.map_err(FixtureError::Fetch)?;
        config.values_mut().for_each(|v| *v = v.replace("${FETCH}", &server.base_url));
        opts.fetch.allow_private = true;
        Some(server)
    };
    let (outcomes, logs) = run_events(source, &config, &events, &opts).await?;
    let sequence = events.len() > 1 || f.events.is_some();
    let mut differences = Vec::new();
    for (i, (outcome, want)) in outcomes.iter().zip(expected).enumerate() {
        let prefix = if sequence { format!("event {}: ", i + 1) } else { String::new() };
        differences
            .extend(compare(f.expected_error.as_deref(), want, outcome).into_iter().map(|d| format!("{prefix}{d}")));
    }
    if let (Some(want), Some(server)) = (&f.expected_fetches, &server) {
        let hits = server.hits.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (path, n) in want {
            let got = hits.get(path).copied().unwrap_or(0);
            if got != *n {
                differences.push(format!("~ fetches of {path}: expected {n}, got {got}"));
            }
        }
    }
    let outcome = if sequence {
        Outcome::Sequence { results: outcomes }
    } else {
        outcomes.into_iter().next().expect("one event, one outcome")
    };
    Ok(Report { name: name.to_string(), passed: differences.is_empty(), outcome, differences, logs })
}

fn compare(expected_error: Option<&str>, expected: Option<&Value>, outcome: &Outcome) -> Vec<String> {
    match (expected_error, expected, outcome) {
        (Some(want), _, Outcome::Error { error, .. }) if error.contains(want) => Vec::new(),
        (Some(want), _, got) => vec![format!("expected an error containing {want:?}, got {}", describe(got))],
        (None, Some(Value::Null), Outcome::Dropped) => Vec::new(),
        (None, Some(Value::Null), got) => vec![format!("expected the event to be dropped, got {}", describe(got))],
        (None, Some(want), Outcome::Event { event }) => diff("", want, event),
        (None, _, got) => vec![format!("expected an event, got {}", describe(got))],
    }
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Event { .. } => "an event".into(),
        Outcome::Dropped => "a drop".into(),
        Outcome::Error { error, .. } => format!("an error: {error}"),
        Outcome::Sequence { .. } => "a sequence".into(),
        Outcome::Scenario { .. } => "a scenario".into(),
    }
}

/// Differences between two JSON values, one line per path.
pub fn diff(path: &str, want: &Value, got: &Value) -> Vec<String> {
    let at = |p: &str| if p.is_empty() { "(the event)".to_string() } else { p.to_string() };
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            let mut out = Vec::new();
            for (k, wv) in w {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match g.get(k) {
                    Some(gv) => out.extend(diff(&p, wv, gv)),
                    None => out.push(format!("- {p}: expected {wv}, missing")),
                }
            }
            for (k, gv) in g {
                if !w.contains_key(k) {
                    let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    out.push(format!("+ {p}: unexpected {gv}"));
                }
            }
            out
        }
        (w, g) if w == g => Vec::new(),
        // Lua has one number type: 1 and 1.0 are the same value.
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => Vec::new(),
        (w, g) => vec![format!("~ {}: expected {w}, got {g}", at(path))],
    }
}
