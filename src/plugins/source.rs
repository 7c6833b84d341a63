//! A plugin's code: its manifest and Lua files, read from a folder (and,
//! with the plugin store, from the database like posthog_pluginsourcefile).

use std::collections::BTreeMap;
use std::path::Path;

use super::manifest::{Manifest, ManifestError};

/// Everything needed to build a VM: the manifest and every .lua file by
/// its path inside the plugin (`index.lua`, `lib/util.lua`).
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSource {
    pub manifest: Manifest,
    pub files: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error("plugin.json names `{0}` as main, but there is no such file")]
    MissingMain(String),
    #[error("{0}: not UTF-8 text")]
    NotText(String),
}

/// Plugin files larger than this are refused: plugin code, not data.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

impl PluginSource {
    pub fn new(manifest: Manifest, files: BTreeMap<String, String>) -> Result<Self, SourceError> {
        if !files.contains_key(&manifest.main) {
            return Err(SourceError::MissingMain(manifest.main.clone()));
        }
        Ok(PluginSource { manifest, files })
    }

    /// Reads plugin.json and every .lua file under `dir` (tests/ excluded).
    pub fn from_dir(dir: &Path) -> Result<Self, SourceError> {
        let io = |path: &Path, source| SourceError::Io { path: path.display().to_string(), source };
        let manifest_path = dir.join("plugin.json");
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| io(&manifest_path, e))?;
        let manifest = Manifest::parse(&text)?;
        let mut files = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).map_err(|e| io(&d, e))? {
                let entry = entry.map_err(|e| io(&d, e))?;
                let path = entry.path();
                let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                let meta = entry.metadata().map_err(|e| io(&path, e))?;
                if meta.is_dir() {
                    if rel != "tests" && !rel.starts_with('.') {
                        stack.push(path);
                    }
                } else if rel.ends_with(".lua") && meta.len() <= MAX_FILE_BYTES {
                    let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
                    let text = String::from_utf8(bytes).map_err(|_| SourceError::NotText(rel.clone()))?;
                    files.insert(rel, text);
                }
            }
        }
        PluginSource::new(manifest, files)
    }
}
