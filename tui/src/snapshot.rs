//! The view model `phs top` renders: what one poll of every instance returned.

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
    /// Why the instance is not healthy or ready, when it says so.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    Healthy,
    Unhealthy,
    /// Nothing answered at the admin address: stopped, restarting or unreachable.
    Down,
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
        };
        let json = serde_json::to_string(&i).unwrap();
        assert!(json.contains(r#""status":"down""#), "{json}");
        let back: Instance = serde_json::from_str(&json).unwrap();
        assert_eq!(back, i);
    }
}
