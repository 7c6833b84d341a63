//! The plugin registry as a dry run sees it: the installed plugins and
//! configs (only the chosen configs when `--plugin-config` is given), a
//! local folder's code in place of the installed plugin of the same name
//! (`--plugin-dir`), and the errors or disabling the server would store on
//! a config recorded instead of written. Installing and removing are refused.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Recorder, SideEffect};
use crate::plugins::PluginSource;
use crate::store::{
    NewPlugin, Plugin, PluginAttachment, PluginConfig, PluginConfigUpdate, PluginLog, PluginStore, Result, StoreError,
};

/// A plugin's code from a local folder, run instead of the installed one.
#[derive(Clone)]
pub struct Replacement {
    /// plugin.json's `name`: the installed plugin it stands in for.
    pub name: String,
    files: Vec<(String, String)>,
}

impl Replacement {
    /// Reads and checks the folder: its manifest and Lua files must load.
    pub fn from_dir(dir: &Path) -> std::result::Result<Replacement, String> {
        let source = PluginSource::from_dir(dir).map_err(|e| format!("{} does not load: {e}", dir.display()))?;
        let manifest = std::fs::read_to_string(dir.join("plugin.json"))
            .map_err(|e| format!("{}: cannot read plugin.json: {e}", dir.display()))?;
        let ctx = crate::plugins::Context::in_memory(Default::default());
        if let Err(e @ crate::plugins::vm::LoadError::Compile { .. }) =
            crate::plugins::PluginVm::load(&source, ctx, Default::default())
        {
            return Err(format!("{} does not load: {e}", dir.display()));
        }
        let mut files: Vec<(String, String)> = source.files.into_iter().collect();
        files.push(("plugin.json".into(), manifest));
        Ok(Replacement { name: source.manifest.name, files })
    }
}

/// What all shards of a run share.
pub struct Shared {
    only: Vec<i64>,
    replacement: Option<Replacement>,
    /// The configs as listed, so a recorded update can answer with one.
    configs: Mutex<HashMap<i64, PluginConfig>>,
    logs: AtomicU64,
}

impl Shared {
    pub fn new(only: Vec<i64>, replacement: Option<Replacement>) -> Shared {
        Shared { only, replacement, configs: Mutex::default(), logs: AtomicU64::new(0) }
    }

    pub fn logs(&self) -> u64 {
        self.logs.load(Ordering::Relaxed)
    }
}

pub struct OverlayPlugins {
    pub real: Arc<dyn PluginStore>,
    pub shared: Arc<Shared>,
    pub recorder: Arc<Recorder>,
}

fn refused<T>(what: &str) -> Result<T> {
    Err(StoreError::Invalid(format!("a dry run does not {what}")))
}

#[async_trait]
impl PluginStore for OverlayPlugins {
    async fn install_plugin(&self, _: &NewPlugin) -> Result<Plugin> {
        refused("install plugins")
    }

    async fn list_plugins(&self) -> Result<Vec<Plugin>> {
        self.real.list_plugins().await
    }

    async fn plugin_files(&self, plugin_id: i64) -> Result<Vec<(String, String)>> {
        if let Some(r) = &self.shared.replacement {
            let plugins = self.real.list_plugins().await?;
            if plugins.iter().any(|p| p.id == plugin_id && p.name == r.name) {
                return Ok(r.files.clone());
            }
        }
        self.real.plugin_files(plugin_id).await
    }

    async fn remove_plugin(&self, _: i64) -> Result<bool> {
        refused("remove plugins")
    }

    async fn plugin_config(&self, team_id: i64, plugin_id: i64) -> Result<PluginConfig> {
        let configs = self.list_plugin_configs(Some(team_id)).await?;
        match configs.into_iter().find(|c| c.plugin_id == plugin_id) {
            Some(c) => Ok(c),
            None => refused("create plugin configs"),
        }
    }

    async fn update_plugin_config(&self, id: i64, update: &PluginConfigUpdate) -> Result<PluginConfig> {
        let change = match (update.enabled, &update.error) {
            (Some(false), Some(Some(e))) => format!("disabled: {}", e["message"].as_str().unwrap_or_default()),
            (_, Some(Some(e))) => format!("error stored: {}", e["message"].as_str().unwrap_or_default()),
            _ => "updated".to_string(),
        };
        self.recorder.record(SideEffect::Config { config: id, change });
        let held = self.shared.configs.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned();
        held.ok_or_else(|| StoreError::Invalid(format!("plugin config {id} is not part of this run")))
    }

    async fn list_plugin_configs(&self, team_id: Option<i64>) -> Result<Vec<PluginConfig>> {
        let mut configs = self.real.list_plugin_configs(team_id).await?;
        if !self.shared.only.is_empty() {
            configs.retain(|c| self.shared.only.contains(&c.id));
        }
        let mut held = self.shared.configs.lock().unwrap_or_else(|p| p.into_inner());
        for c in &configs {
            held.insert(c.id, c.clone());
        }
        Ok(configs)
    }

    async fn set_plugin_attachment(&self, _: &PluginConfig, _: &PluginAttachment) -> Result<()> {
        refused("store attachments")
    }

    async fn plugin_attachments(&self, plugin_config_id: i64) -> Result<Vec<PluginAttachment>> {
        self.real.plugin_attachments(plugin_config_id).await
    }

    async fn append_plugin_logs(&self, entries: &[PluginLog]) -> Result<()> {
        self.shared.logs.fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    async fn plugin_logs(&self, id: i64, after: Option<DateTime<Utc>>, limit: i64) -> Result<Vec<PluginLog>> {
        self.real.plugin_logs(id, after, limit).await
    }
}
