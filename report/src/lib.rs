//! phs-report: the view model `phs top` renders, and the wire shape of an instance's
//! `/_snapshot` endpoint: the server fills a [`Report`], `phs top` polls
//! every instance into a [`Snapshot`]. One definition serves both ends and
//! `phs top --once --json`.

use serde::{Deserialize, Serialize};

/// One poll of every instance `phs top` watches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub instances: Vec<Instance>,
}

/// An instance as seen through its admin listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// The admin address it was polled at, e.g. `127.0.0.1:6738`.
    pub admin_addr: String,
    pub status: InstanceStatus,
    /// Why the instance is not healthy, or why it could not be read.
    pub reason: Option<String>,
    /// The last report read; kept while the instance is down so the view does not go blank.
    #[serde(default)]
    pub report: Option<Report>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    Healthy,
    Unhealthy,
    /// Nothing answered at the admin address: stopped, restarting or unreachable.
    Down,
}

/// What one instance says about itself at `/_snapshot`. Rates are computed
/// by the instance over its last few seconds, so one read is meaningful.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub id: String,
    pub version: String,
    pub mode: String,
    pub admin_addr: String,
    /// RFC 3339.
    pub started_at: String,
    pub healthy: bool,
    pub reason: Option<String>,
    pub events_in_total: u64,
    pub events_out_total: u64,
    pub events_in_per_sec: f64,
    pub events_out_per_sec: f64,
    /// Events that did not reach the sink, by reason (plugin drops, dead letters).
    pub dropped: Vec<Count>,
    pub dead_letters: Vec<Count>,
    /// Whole-batch latency (read to commit) over the last minute, in milliseconds.
    pub batch_ms: Quantiles,
    pub partitions: Vec<PartitionLag>,
    pub workers: Vec<Worker>,
    pub queues: Vec<Count>,
    pub plugins: Vec<PluginRow>,
    /// Newest first.
    pub errors: Vec<PluginError>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Count {
    pub name: String,
    pub value: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    pub end: i64,
    pub lag: i64,
    /// Lag once a second, oldest first (the sparkline).
    pub history: Vec<u64>,
    /// How fast the lag shrinks, in messages per second (negative: it grows).
    pub catch_up_per_sec: f64,
    /// Seconds until the lag is gone at the current catch-up rate.
    pub eta_seconds: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Worker {
    pub id: u32,
    /// Share of the last second spent on batches, 0..=1.
    pub busy_ratio: f64,
    /// The stage it is in, or `idle`.
    pub stage: String,
    /// Messages in the batch in hand.
    pub in_hand: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginState {
    #[default]
    Healthy,
    /// Errors in the last minute.
    Degraded,
    /// Switched off after repeated setup failures.
    Disabled,
}

impl PluginState {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginState::Healthy => "healthy",
            PluginState::Degraded => "degraded",
            PluginState::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginRow {
    pub config_id: i64,
    pub team_id: i64,
    pub plugin: String,
    pub events_per_sec: f64,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub errors_per_min: f64,
    pub calls_total: u64,
    pub errors_total: u64,
    pub memory_bytes: u64,
    pub state: PluginState,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginError {
    /// RFC 3339.
    pub time: String,
    pub team_id: i64,
    pub config_id: i64,
    pub plugin: String,
    /// The first line of the error.
    pub message: String,
    /// The rest: Lua's stack traceback.
    pub traceback: String,
    /// The event the plugin was given, when there was one.
    pub event: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_serializes_in_snake_case_for_scripts() {
        let i = Instance {
            admin_addr: "127.0.0.1:6738".into(),
            status: InstanceStatus::Down,
            reason: Some("connection refused".into()),
            report: None,
        };
        let json = serde_json::to_string(&i).unwrap();
        assert!(json.contains(r#""status":"down""#), "{json}");
        let back: Instance = serde_json::from_str(&json).unwrap();
        assert_eq!(back, i);
    }
}
