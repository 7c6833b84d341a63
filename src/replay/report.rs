//! What a replay found: one [`EventReport`] per selected event, with what
//! each plugin did to it, and the [`Summary`] over the run. Both serialize
//! as the `--json` output.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::diff::{Change, diff};
use super::overlay::SideEffect;
use super::select::Selected;
use crate::plugins::runner::{Loaded, Step, Trace};

/// What one plugin did to the event.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// "name (config id)".
    pub plugin: String,
    pub config_id: i64,
    /// changed, unchanged, dropped, failed or skipped.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// The failure (with the Lua traceback), or why the plugin was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub micros: u64,
}

/// The processEvent chain's steps, as the runner shows them.
#[derive(Default)]
pub struct Steps(pub Vec<StepReport>);

impl Trace for Steps {
    fn step(&mut self, plugin: &Loaded, input: &Map<String, Value>, step: Step<'_>, took: Duration) {
        let (outcome, changes, error) = match step {
            Step::Returned(out) => {
                let changes = diff(input, out);
                (if changes.is_empty() { "unchanged" } else { "changed" }, changes, None)
            }
            Step::Dropped => ("dropped", Vec::new(), None),
            Step::Failed { message, .. } => ("failed", Vec::new(), Some(message)),
            Step::Skipped(why) => ("skipped", Vec::new(), Some(why.to_string())),
        };
        self.0.push(StepReport {
            plugin: plugin.label().to_string(),
            config_id: plugin.config().id,
            outcome,
            changes,
            error,
            micros: took.as_micros() as u64,
        });
    }
}

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Went through the plugins and would be ingested.
    Ingested,
    /// A plugin returned nil.
    Dropped,
    /// Not a valid event (it would be dead-lettered at normalize).
    Invalid,
    /// No team has its token.
    UnknownTeam,
}

/// The installed and the local plugin's results side by side (`--compare`).
#[derive(Debug, Clone, Serialize)]
pub struct Compared {
    pub local_steps: Vec<StepReport>,
    pub local_output: Option<Map<String, Value>>,
    /// From the installed output to the local one.
    pub differences: Vec<Change>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventReport {
    pub partition: i32,
    pub offset: i64,
    pub fate: Fate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_id: Option<String>,
    /// Why a dead letter was refused, when replaying dead letters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<Value>,
    /// Why the event is invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub steps: Vec<StepReport>,
    /// The event after the plugins, when it was not dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub side_effects: Vec<SideEffect>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare: Option<Compared>,
    /// The person changes the persons stage would make (`--persons`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub persons: Vec<Value>,
}

impl EventReport {
    /// A report on `message` with nothing found yet.
    pub fn of(message: &Selected, fate: Fate) -> EventReport {
        EventReport {
            partition: message.partition,
            offset: message.offset,
            fate,
            uuid: None,
            team_id: None,
            event: None,
            distinct_id: None,
            dead_letter: message.letter.as_ref().map(|(reason, detail)| json!({"reason": reason, "detail": detail})),
            error: None,
            steps: Vec::new(),
            output: None,
            side_effects: Vec::new(),
            compare: None,
            persons: Vec::new(),
        }
    }

    /// With the decoded event's uuid, name and distinct id.
    pub fn naming(mut self, event: &Map<String, Value>) -> EventReport {
        let field = |k: &str| event.get(k).and_then(Value::as_str).map(String::from);
        (self.uuid, self.event, self.distinct_id) = (field("uuid"), field("event"), field("distinct_id"));
        self
    }

    /// Whether a plugin did anything to it worth showing without `--all`.
    pub fn notable(&self) -> bool {
        self.fate != Fate::Ingested
            || self.steps.iter().any(|s| s.outcome != "unchanged")
            || self.compare.as_ref().is_some_and(|c| !c.differences.is_empty())
            || !self.persons.is_empty()
    }
}

/// One plugin's counts over the run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PluginTally {
    pub changed: u64,
    pub unchanged: u64,
    pub dropped: u64,
    pub failed: u64,
    pub skipped: u64,
    pub p50_micros: u64,
    pub p99_micros: u64,
    #[serde(skip)]
    micros: Vec<u32>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    /// Messages read from the origin.
    pub read: u64,
    /// Of those, the ones the filters selected.
    pub matched: u64,
    pub ingested: u64,
    pub dropped: u64,
    pub invalid: u64,
    pub unknown_team: u64,
    /// With `--compare`: events whose outputs differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differing: Option<u64>,
    pub plugins: BTreeMap<String, PluginTally>,
    pub side_effects: BTreeMap<&'static str, u64>,
    /// Plugin log lines written (kept, not stored).
    pub logs: u64,
    pub seconds: f64,
    pub events_per_second: f64,
    /// Stopped by Ctrl-C before the end of the selection.
    pub interrupted: bool,
}

impl Summary {
    pub fn add(&mut self, r: &EventReport) {
        self.matched += 1;
        *match r.fate {
            Fate::Ingested => &mut self.ingested,
            Fate::Dropped => &mut self.dropped,
            Fate::Invalid => &mut self.invalid,
            Fate::UnknownTeam => &mut self.unknown_team,
        } += 1;
        for s in &r.steps {
            // Looked up by reference first: the label is cloned once per plugin, not per event.
            if !self.plugins.contains_key(&s.plugin) {
                self.plugins.insert(s.plugin.clone(), PluginTally::default());
            }
            let Some(t) = self.plugins.get_mut(&s.plugin) else { continue };
            *match s.outcome {
                "changed" => &mut t.changed,
                "unchanged" => &mut t.unchanged,
                "dropped" => &mut t.dropped,
                "failed" => &mut t.failed,
                _ => &mut t.skipped,
            } += 1;
            if s.outcome != "skipped" {
                t.micros.push(s.micros.min(u32::MAX as u64) as u32);
            }
        }
        for e in &r.side_effects {
            *self.side_effects.entry(e.kind()).or_default() += 1;
        }
        if let Some(c) = &r.compare {
            *self.differing.get_or_insert(0) += u64::from(!c.differences.is_empty());
        }
    }

    /// Fills in the timings once the run is over.
    pub fn finish(&mut self, elapsed: Duration, logs: u64) {
        self.logs = logs;
        self.seconds = elapsed.as_secs_f64();
        self.events_per_second = if self.seconds > 0.0 { self.read as f64 / self.seconds } else { 0.0 };
        for t in self.plugins.values_mut() {
            t.micros.sort_unstable();
            let at = |q: f64| t.micros.get(((t.micros.len() as f64 - 1.0) * q).round() as usize).copied();
            t.p50_micros = at(0.5).unwrap_or(0) as u64;
            t.p99_micros = at(0.99).unwrap_or(0) as u64;
        }
    }
}
