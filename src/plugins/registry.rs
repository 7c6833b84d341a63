//! Installing plugins and managing their per-team configs: what
//! `phs plugins install/list/enable/disable/config/order/remove` do, above
//! the store traits so both backends share it.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::manifest::{ConfigError, FieldKind, Manifest};
use super::{Context, Limits, PluginSource, PluginVm};
use crate::store::{NewPlugin, Plugin, PluginAttachment, PluginConfig, PluginConfigUpdate, Store, StoreError, Team};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Source(#[from] super::source::SourceError),
    #[error("{0}")]
    Load(#[from] super::vm::LoadError),
    #[error("{0}")]
    Archive(#[from] super::archive::ArchiveError),
    #[error("{0}")]
    Config(#[from] super::manifest::ConfigError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

type Result<T> = std::result::Result<T, RegistryError>;

impl crate::error::Kinded for RegistryError {
    /// Only the store can fail for a while and then answer; the plugin's own
    /// code, archive and config fail the same way every time.
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            RegistryError::Store(e) => e.kind(),
            _ => crate::error::ErrorKind::Data,
        }
    }
}

/// Reads a plugin folder or archive (.zip, .tar.gz), checks that it loads,
/// detects its capabilities and stores its code. Installing a plugin of the
/// same name again updates it.
pub async fn install(store: &dyn Store, path: &Path) -> Result<Plugin> {
    let source = if path.is_file() { super::archive::read(path)? } else { PluginSource::from_dir(path)? };
    let vm = load_for_inspection(&source)?;
    let mut files: Vec<(String, String)> = source.files.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    files.push(("plugin.json".into(), serde_json::to_string_pretty(&source.manifest).expect("manifest serializes")));
    let new = NewPlugin {
        name: source.manifest.name.clone(),
        description: source.manifest.description.clone(),
        url: source.manifest.url.clone(),
        config_schema: serde_json::to_value(&source.manifest.config).expect("schema serializes"),
        capabilities: serde_json::to_value(vm.capabilities()).expect("capabilities serialize"),
        files,
    };
    Ok(store.install_plugin(&new).await?)
}

/// Loads a plugin in a throwaway state to check it compiles and runs its main
/// file, and to detect capabilities. Its config is not known yet, so
/// required fields are filled with empty strings.
fn load_for_inspection(source: &PluginSource) -> Result<PluginVm> {
    let config = source.manifest.config.iter().filter_map(|f| f.default.clone().map(|d| (f.key.clone(), d))).collect();
    let ctx = Context::in_memory(config);
    Ok(PluginVm::load(source, ctx, Limits::default())?)
}

/// The stored code of a plugin, as a source to build VMs from.
pub async fn source(store: &dyn crate::store::PluginStore, plugin: &Plugin) -> Result<PluginSource> {
    let files: BTreeMap<String, String> = store.plugin_files(plugin.id).await?.into_iter().collect();
    let manifest_text = files
        .get("plugin.json")
        .ok_or_else(|| RegistryError::Invalid(format!("plugin {} has no plugin.json stored", plugin.id)))?;
    let manifest = Manifest::parse(manifest_text).map_err(|e| RegistryError::Invalid(e.to_string()))?;
    let lua = files.into_iter().filter(|(k, _)| k.ends_with(".lua")).collect();
    Ok(PluginSource::new(manifest, lua)?)
}

/// A plugin by id or by name.
pub async fn find_plugin(store: &dyn Store, key: &str) -> Result<Plugin> {
    let plugins = store.list_plugins().await?;
    let id: Option<i64> = key.parse().ok();
    plugins
        .into_iter()
        .find(|p| Some(p.id) == id || p.name == key)
        .ok_or_else(|| RegistryError::NotFound(format!("no installed plugin `{key}`; see `phs plugins list`")))
}

/// A team by id, API token or name.
pub async fn find_team(store: &dyn Store, key: &str) -> Result<Team> {
    if let Ok(id) = key.parse::<i64>() {
        if let Some(t) = store.team_by_id(id).await? {
            return Ok(t);
        }
    }
    if let Some(t) = store.team_by_token(key).await? {
        return Ok(t);
    }
    let mut named: Vec<Team> = store.list_teams().await?.into_iter().filter(|t| t.name == key).collect();
    match named.len() {
        1 => Ok(named.remove(0)),
        0 => Err(RegistryError::NotFound(format!("no team `{key}`; see `phs teams list`"))),
        n => Err(RegistryError::Invalid(format!("{n} teams are named `{key}`; use the id or the API token"))),
    }
}

fn manifest_of(plugin: &Plugin) -> Result<Manifest> {
    let config = serde_json::from_value(plugin.config_schema.clone())
        .map_err(|e| RegistryError::Invalid(format!("plugin {} has an invalid stored schema: {e}", plugin.id)))?;
    Ok(Manifest { name: plugin.name.clone(), description: None, url: None, main: "index.lua".into(), config })
}

/// A config's values as entered (strings), the input of `Manifest::validate_config`.
pub fn raw_config(c: &PluginConfig) -> BTreeMap<String, String> {
    c.config
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Largest file accepted for an attachment field: it lives in every state of the config.
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

/// Sets config values (validated against the schema), keeping the others.
/// An attachment field takes `@PATH`: the file is stored in
/// posthog_pluginattachment, its content type guessed from the extension.
pub async fn configure(
    store: &dyn Store,
    team: &Team,
    plugin: &Plugin,
    set: &[(String, String)],
) -> Result<PluginConfig> {
    let config = store.plugin_config(team.id, plugin.id).await?;
    let manifest = manifest_of(plugin)?;
    let mut raw = raw_config(&config);
    let mut files = Vec::new();
    for (k, v) in set {
        if manifest.config.iter().any(|f| &f.key == k && f.kind == FieldKind::Attachment) {
            files.push(read_attachment(k, v)?);
        } else {
            raw.insert(k.clone(), v.clone());
        }
    }
    // Unknown keys and malformed values are refused now; missing required
    // ones only when enabling, so they can be set one at a time.
    let mut lenient = manifest_of(plugin)?;
    lenient.config.iter_mut().for_each(|f| f.required = false);
    lenient.validate_config(&raw)?;
    for a in &files {
        store.set_plugin_attachment(&config, a).await?;
    }
    // Written even when only attachments changed: the new updated_at makes running states reload.
    let value = Value::Object(raw.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
    Ok(store.update_plugin_config(config.id, &PluginConfigUpdate { config: Some(value), ..Default::default() }).await?)
}

fn read_attachment(key: &str, value: &str) -> Result<PluginAttachment> {
    let invalid = |problem: String| RegistryError::Config(ConfigError { key: key.to_string(), problem });
    let Some(path) = value.strip_prefix('@') else {
        return Err(invalid("is an attachment: give a file as @PATH".into()));
    };
    let path = Path::new(path);
    let size = std::fs::metadata(path).map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?.len();
    if size > MAX_ATTACHMENT_BYTES as u64 {
        return Err(invalid(format!(
            "{} is {size} bytes; attachments are at most {MAX_ATTACHMENT_BYTES} bytes",
            path.display()
        )));
    }
    let contents = std::fs::read(path).map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(PluginAttachment { key: key.to_string(), content_type: content_type(&file_name).into(), file_name, contents })
}

/// The MIME type of a file name, from its extension.
pub fn content_type(file_name: &str) -> &'static str {
    let ext = file_name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "json" => "application/json",
        "csv" => "text/csv",
        "txt" | "md" => "text/plain",
        "html" | "htm" => "text/html",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "pem" | "crt" => "application/x-pem-file",
        "mmdb" => "application/octet-stream",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// Enables a plugin for a team once its config is complete; clears any
/// error or automatic disable.
pub async fn enable(store: &dyn Store, team: &Team, plugin: &Plugin) -> Result<PluginConfig> {
    let config = store.plugin_config(team.id, plugin.id).await?;
    let manifest = manifest_of(plugin)?;
    manifest.validate_config(&raw_config(&config))?;
    let attached = store.plugin_attachments(config.id).await?;
    if let Some(f) = manifest
        .config
        .iter()
        .find(|f| f.kind == FieldKind::Attachment && f.required && !attached.iter().any(|a| a.key == f.key))
    {
        return Err(RegistryError::Config(ConfigError {
            key: f.key.clone(),
            problem: "is a required attachment: set it with --set KEY=@PATH".into(),
        }));
    }
    Ok(store
        .update_plugin_config(
            config.id,
            &PluginConfigUpdate { enabled: Some(true), error: Some(None), ..Default::default() },
        )
        .await?)
}

pub async fn disable(store: &dyn Store, team: &Team, plugin: &Plugin) -> Result<PluginConfig> {
    let config = store.plugin_config(team.id, plugin.id).await?;
    Ok(store
        .update_plugin_config(config.id, &PluginConfigUpdate { enabled: Some(false), ..Default::default() })
        .await?)
}

/// Puts the named plugins first, in this order, keeping the rest after them.
pub async fn reorder(store: &dyn Store, team: &Team, plugins: &[Plugin]) -> Result<Vec<PluginConfig>> {
    let mut configs = store.list_plugin_configs(Some(team.id)).await?;
    for p in plugins {
        if !configs.iter().any(|c| c.plugin_id == p.id) {
            configs.push(store.plugin_config(team.id, p.id).await?);
        }
    }
    configs.sort_by_key(|c| (plugins.iter().position(|p| p.id == c.plugin_id).unwrap_or(usize::MAX), c.order, c.id));
    let mut out = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let update = PluginConfigUpdate { order: Some(i as i64 + 1), ..Default::default() };
        out.push(store.update_plugin_config(c.id, &update).await?);
    }
    Ok(out)
}

/// The values of a config's secret fields (strings of 4 or more characters:
/// shorter ones would mask ordinary text), for output made for people to hide.
pub fn secret_values(plugin: &Plugin, config: &PluginConfig) -> Vec<String> {
    let Ok(manifest) = manifest_of(plugin) else { return Vec::new() };
    manifest
        .config
        .iter()
        .filter(|f| f.secret)
        .filter_map(|f| config.config.get(&f.key).and_then(Value::as_str))
        .filter(|v| v.chars().count() >= 4)
        .map(String::from)
        .collect()
}

/// A config as shown to people: secret values masked, and each attachment
/// summarised as `{file_name, content_type, size}` (secret ones masked too).
pub fn masked(plugin: &Plugin, config: &PluginConfig, attachments: &[PluginAttachment]) -> Value {
    let Ok(manifest) = manifest_of(plugin) else { return Value::Null };
    let mut map = config.config.as_object().cloned().unwrap_or_default();
    for a in attachments {
        let summary = serde_json::json!({
            "file_name": a.file_name, "content_type": a.content_type, "size": a.contents.len()
        });
        map.insert(a.key.clone(), summary);
    }
    Value::Object(manifest.masked(&map))
}
