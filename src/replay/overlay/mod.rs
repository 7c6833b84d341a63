//! The dry run's overlay: the stores a plugin writes to, wrapped so reads
//! see the real data (a plugin finds the storage and cache values it would
//! find in production) and every write stays in memory, recorded as a
//! [`SideEffect`] of the event that made it. Nothing here writes to a real
//! store, cache or remote.
//!
//! What is shared by all shards of a run (the in-memory values) lives in
//! [`Overlay`]; each shard gets its own [`Recorder`], so the side effects of
//! the event a shard is processing are its own.

mod cache;
mod outbound;
mod persons;
mod plugins;
mod storage;

use std::sync::{Arc, Mutex};

use serde::Serialize;

pub use self::outbound::Network;
pub use self::plugins::Replacement;
use crate::plugins::runner::Backends;

/// A write that a dry run kept instead of making.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SideEffect {
    /// `meta.storage` (posthog_pluginstorage).
    Storage { config: i64, op: &'static str, key: String, value: Option<serde_json::Value> },
    /// `meta.cache` (Redis).
    Cache { op: &'static str, key: String, value: Option<serde_json::Value> },
    /// `meta.jobs` or a retry, queued.
    Job { config: i64, name: String },
    /// `posthog.capture`.
    Capture { event: String, distinct_id: String },
    /// `fetch`: sent (GET and HEAD, unless offline) or answered without sending.
    Fetch { method: String, url: String, sent: bool },
    /// The error or disabling the server would store on the plugin config.
    Config { config: i64, change: String },
    /// A person write of the persons stage (`--persons`): created, updated,
    /// distinct_id_added or merged, with what changed.
    Person { change: &'static str, detail: serde_json::Value },
}

/// A stored value as the plugin wrote it: storage and cache keep JSON text.
fn written(text: Option<String>) -> Option<serde_json::Value> {
    text.map(|t| serde_json::from_str(&t).unwrap_or(serde_json::Value::String(t)))
}

impl SideEffect {
    /// The summary's name for this kind.
    pub fn kind(&self) -> &'static str {
        match self {
            SideEffect::Storage { .. } => "storage",
            SideEffect::Cache { .. } => "cache",
            SideEffect::Job { .. } => "jobs",
            SideEffect::Capture { .. } => "captures",
            SideEffect::Fetch { sent: true, .. } => "fetches sent",
            SideEffect::Fetch { sent: false, .. } => "fetches held",
            SideEffect::Config { .. } => "config updates",
            SideEffect::Person { .. } => "person writes",
        }
    }
}

/// The side effects of the event a shard is processing.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<SideEffect>>);

impl Recorder {
    pub fn record(&self, effect: SideEffect) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(effect);
    }

    /// What was recorded since the last take.
    pub fn take(&self) -> Vec<SideEffect> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// One run's overlay over the real stores.
pub struct Overlay {
    real: Backends,
    storage: Arc<storage::Shadow>,
    cache: Arc<cache::Shadow>,
    plugins: Arc<plugins::Shared>,
    network: Network,
    /// The real person store and the run's copy, with `--persons`.
    persons: Option<(Arc<dyn crate::store::PersonStore>, Arc<persons::Shadow>)>,
}

impl Overlay {
    /// `only`: run just these plugin configs (empty: all); `replacement`: a
    /// local plugin folder run instead of the installed plugin of its name.
    pub fn new(real: Backends, only: Vec<i64>, replacement: Option<Replacement>, network: Network) -> Overlay {
        Overlay {
            real,
            storage: Arc::default(),
            cache: Arc::default(),
            plugins: Arc::new(plugins::Shared::new(only, replacement)),
            network,
            persons: None,
        }
    }

    /// Also runs the persons stage against `real`, writing to the overlay.
    pub fn with_persons(mut self, real: Arc<dyn crate::store::PersonStore>) -> Overlay {
        self.persons = Some((real, Arc::default()));
        self
    }

    /// The person store a shard's persons stage uses, with `--persons`.
    pub fn person_store(&self, recorder: &Arc<Recorder>) -> Option<Arc<dyn crate::store::PersonStore>> {
        let (real, shadow) = self.persons.as_ref()?;
        Some(Arc::new(persons::OverlayPersons {
            real: real.clone(),
            shadow: shadow.clone(),
            recorder: recorder.clone(),
        }))
    }

    /// The stores a shard's plugin runner uses, recording into `recorder`.
    pub fn backends(&self, recorder: &Arc<Recorder>) -> Backends {
        Backends {
            teams: self.real.teams.clone(),
            plugins: Arc::new(plugins::OverlayPlugins {
                real: self.real.plugins.clone(),
                shared: self.plugins.clone(),
                recorder: recorder.clone(),
            }),
            storage: Arc::new(storage::OverlayStorage {
                real: self.real.storage.clone(),
                shadow: self.storage.clone(),
                recorder: recorder.clone(),
            }),
            jobs: Arc::new(storage::OverlayJobs { real: self.real.jobs.clone(), recorder: recorder.clone() }),
            cache: Arc::new(cache::OverlayCache {
                real: self.real.cache.clone(),
                shadow: self.cache.clone(),
                recorder: recorder.clone(),
            }),
        }
    }

    /// Where `posthog.capture` goes in a dry run: recorded, never sent.
    pub fn producer(&self, recorder: &Arc<Recorder>) -> Arc<dyn crate::wire::Producer> {
        Arc::new(outbound::Captures(recorder.clone()))
    }

    /// What `fetch` may do in a dry run.
    pub fn outbound(&self, recorder: &Arc<Recorder>) -> Arc<dyn crate::plugins::fetch::Outbound> {
        Arc::new(outbound::Guard { network: self.network, recorder: recorder.clone() })
    }

    /// The real plugin registry under the overlay.
    pub fn real_plugins(&self) -> &Arc<dyn crate::store::PluginStore> {
        &self.real.plugins
    }

    /// Log entries the plugins wrote (kept, not stored).
    pub fn logs(&self) -> u64 {
        self.plugins.logs()
    }
}
