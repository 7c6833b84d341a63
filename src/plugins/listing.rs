//! What `phs plugins list` and `phs plugins order` show, read from the
//! store: installed plugins with a summary of their hooks, and plugin
//! configs with their plugin's name and masked config. The command only
//! prints it.

use serde::Serialize;
use serde_json::Value;

use super::registry;
use crate::store::{Plugin, PluginConfig, Store, Team};

/// The installed plugins and the plugin configs (of one team, or of all).
#[derive(Debug, Serialize)]
pub struct Listing {
    pub plugins: Vec<Plugin>,
    pub configs: Vec<ListedConfig>,
}

/// A plugin config as listed: secrets masked, its plugin named.
#[derive(Debug, Serialize)]
pub struct ListedConfig {
    pub id: i64,
    pub team_id: i64,
    pub plugin_id: i64,
    /// None when the plugin row is gone (a config outliving its plugin).
    pub plugin: Option<String>,
    pub enabled: bool,
    pub order: i64,
    pub config: Option<Value>,
    pub error: Option<Value>,
}

impl ListedConfig {
    /// The last error's message, or "".
    pub fn error_message(&self) -> &str {
        self.error.as_ref().and_then(|e| e.get("message")).and_then(|m| m.as_str()).unwrap_or("")
    }
}

pub async fn list(store: &dyn Store, team: Option<&Team>) -> crate::store::Result<Listing> {
    let plugins = store.list_plugins().await?;
    let mut configs = Vec::new();
    for c in store.list_plugin_configs(team.map(|t| t.id)).await? {
        let p = plugins.iter().find(|p| p.id == c.plugin_id);
        let attachments = store.plugin_attachments(c.id).await?;
        configs.push(ListedConfig {
            id: c.id,
            team_id: c.team_id,
            plugin_id: c.plugin_id,
            plugin: p.map(|p| p.name.clone()),
            enabled: c.enabled,
            order: c.order,
            config: p.map(|p| registry::masked(p, &c, &attachments)),
            error: c.error,
        });
    }
    Ok(Listing { plugins, configs })
}

/// A team's configs in the order they run, each with its plugin's name ("?" when gone).
pub async fn named(store: &dyn Store, configs: Vec<PluginConfig>) -> crate::store::Result<Vec<(PluginConfig, String)>> {
    let plugins = store.list_plugins().await?;
    Ok(configs
        .into_iter()
        .map(|c| {
            let name = plugins.iter().find(|p| p.id == c.plugin_id).map_or("?", |p| p.name.as_str()).to_string();
            (c, name)
        })
        .collect())
}

/// The hooks, scheduled tasks and jobs a plugin has, in one line.
pub fn capabilities_summary(caps: &Value) -> String {
    let list = |k: &str| -> Vec<String> {
        caps.get(k)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let mut parts = list("methods");
    parts.extend(list("scheduled_tasks"));
    parts.extend(list("jobs").into_iter().map(|j| format!("job {j}")));
    if parts.is_empty() { "no hooks".into() } else { parts.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_read_as_one_line() {
        let caps =
            serde_json::json!({"methods": ["processEvent"], "scheduled_tasks": ["runEveryMinute"], "jobs": ["retry"]});
        assert_eq!(capabilities_summary(&caps), "processEvent, runEveryMinute, job retry");
        assert_eq!(capabilities_summary(&serde_json::json!({})), "no hooks");
    }
}
