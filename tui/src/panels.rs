//! The four panels as tables: their columns and the rows a snapshot gives
//! them. Filtering, sorting and selection work on these rows the same way
//! for every panel (see [`crate::app`]).

use crate::theme::{Level, busy_level, lag_level};
use phs_report::{Instance, InstanceStatus, PluginError, Snapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Lag,
    Workers,
    Plugins,
    Errors,
}

impl Panel {
    pub const ALL: [Panel; 4] = [Panel::Lag, Panel::Workers, Panel::Plugins, Panel::Errors];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn title(self) -> &'static str {
        match self {
            Panel::Lag => "Consumer lag",
            Panel::Workers => "Workers",
            Panel::Plugins => "Plugins",
            Panel::Errors => "Plugin errors",
        }
    }

    /// Column headers and their widths (0: take the rest).
    pub fn columns(self) -> &'static [(&'static str, u16)] {
        match self {
            Panel::Lag => {
                &[("topic/partition", 0), ("committed", 9), ("end", 9), ("lag", 7), ("catch-up/s", 10), ("eta", 6)]
            }
            Panel::Workers => &[("worker", 0), ("busy", 15), ("stage", 12), ("held", 5)],
            Panel::Plugins => &[
                ("team", 6),
                ("plugin", 0),
                ("ev/s", 7),
                ("p50 µs", 7),
                ("p99 µs", 7),
                ("err/min", 7),
                ("memory", 7),
                ("state", 9),
            ],
            Panel::Errors => &[("time", 12), ("team", 6), ("plugin", 22), ("message", 0)],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    Num(f64),
    Text(String),
}

/// One table row: its cells, sort keys (one per column) and colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub cells: Vec<String>,
    pub keys: Vec<Key>,
    pub level: Level,
    /// Lag rows: the history for the sparkline.
    pub history: Vec<u64>,
    /// Error rows: the whole error, for Enter.
    pub error: Option<PluginError>,
}

impl Row {
    fn new(cells: Vec<String>, keys: Vec<Key>, level: Level) -> Self {
        Row { cells, keys, level, history: Vec::new(), error: None }
    }
}

/// The instance column: `:port` for a local instance, otherwise host:port.
fn name(i: &Instance) -> String {
    let addr = i.admin_addr.trim_start_matches("http://");
    ["127.0.0.1:", "localhost:"].iter().find_map(|l| addr.strip_prefix(l)).map_or(addr.to_string(), |p| format!(":{p}"))
}

/// Rows from an instance that is down keep their values but read as stale.
fn level_for(i: &Instance, level: Level) -> Level {
    if i.status == InstanceStatus::Down { Level::Stale } else { level }
}

pub fn num(v: f64) -> String {
    match v.abs() {
        a if a >= 1e9 => format!("{:.1}G", v / 1e9),
        a if a >= 1e6 => format!("{:.1}M", v / 1e6),
        a if a >= 1e4 => format!("{:.1}k", v / 1e3),
        a if a >= 100.0 || v.fract() == 0.0 => format!("{v:.0}"),
        _ => format!("{v:.1}"),
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), num)
}

pub fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

fn bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1}G", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1}M", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{}k", b >> 10),
        b => format!("{b}"),
    }
}

/// A text bar, e.g. `██████░░░░  62%`.
fn bar(ratio: f64, width: usize) -> String {
    let filled = ((ratio.clamp(0.0, 1.0) * width as f64).round()) as usize;
    format!("{}{} {:>3.0}%", "█".repeat(filled), "░".repeat(width - filled), ratio * 100.0)
}

/// The time of day of an RFC 3339 timestamp, with milliseconds.
fn clock(rfc3339: &str) -> String {
    rfc3339.split_once('T').map_or(rfc3339, |(_, t)| t).chars().take(12).collect()
}

pub fn rows(panel: Panel, snapshot: &Snapshot) -> Vec<Row> {
    let mut out = Vec::new();
    let several = snapshot.instances.len() > 1;
    for i in &snapshot.instances {
        let Some(r) = &i.report else { continue };
        // With several instances, partitions, workers and plugin configs say whose they are.
        let on = if several { format!("{} ", name(i)) } else { String::new() };
        match panel {
            Panel::Lag => out.extend(r.partitions.iter().map(|p| {
                let eta = p.eta_seconds.map_or("-".into(), duration);
                let mut row = Row::new(
                    vec![
                        format!("{on}{}/{}", p.topic, p.partition),
                        p.committed.to_string(),
                        p.end.to_string(),
                        p.lag.to_string(),
                        num(p.catch_up_per_sec),
                        eta,
                    ],
                    vec![
                        Key::Text(format!("{on}{}/{:05}", p.topic, p.partition)),
                        Key::Num(p.committed as f64),
                        Key::Num(p.end as f64),
                        Key::Num(p.lag as f64),
                        Key::Num(p.catch_up_per_sec),
                        Key::Num(p.eta_seconds.unwrap_or(0.0)),
                    ],
                    level_for(i, lag_level(p.lag, p.catch_up_per_sec)),
                );
                row.history = p.history.clone();
                row
            })),
            Panel::Workers => out.extend(r.workers.iter().map(|w| {
                Row::new(
                    vec![format!("{on}{}", w.id), bar(w.busy_ratio, 10), w.stage.clone(), w.in_hand.to_string()],
                    vec![
                        Key::Text(format!("{on}{:05}", w.id)),
                        Key::Num(w.busy_ratio),
                        Key::Text(w.stage.clone()),
                        Key::Num(w.in_hand as f64),
                    ],
                    level_for(i, busy_level(w.busy_ratio)),
                )
            })),
            Panel::Plugins => out.extend(r.plugins.iter().map(|p| {
                let level = match p.state {
                    crate::PluginState::Healthy => Level::Ok,
                    crate::PluginState::Degraded => Level::Warn,
                    crate::PluginState::Disabled => Level::Bad,
                };
                Row::new(
                    vec![
                        p.team_id.to_string(),
                        format!("{on}{} ({})", p.plugin, p.config_id),
                        num(p.events_per_sec),
                        opt(p.p50_us),
                        opt(p.p99_us),
                        num(p.errors_per_min),
                        bytes(p.memory_bytes),
                        p.state.as_str().into(),
                    ],
                    vec![
                        Key::Num(p.team_id as f64),
                        Key::Text(format!("{on}{}", p.plugin)),
                        Key::Num(p.events_per_sec),
                        Key::Num(p.p50_us.unwrap_or(0.0)),
                        Key::Num(p.p99_us.unwrap_or(0.0)),
                        Key::Num(p.errors_per_min),
                        Key::Num(p.memory_bytes as f64),
                        Key::Text(p.state.as_str().into()),
                    ],
                    level_for(i, level),
                )
            })),
            Panel::Errors => out.extend(r.errors.iter().map(|e| {
                let mut row = Row::new(
                    vec![
                        clock(&e.time),
                        e.team_id.to_string(),
                        format!("{} ({})", e.plugin, e.config_id),
                        e.message.clone(),
                    ],
                    vec![
                        Key::Text(e.time.clone()),
                        Key::Num(e.team_id as f64),
                        Key::Text(e.plugin.clone()),
                        Key::Text(e.message.clone()),
                    ],
                    level_for(i, Level::Bad),
                );
                row.error = Some(e.clone());
                row
            })),
        }
    }
    out
}
