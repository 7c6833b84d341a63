//! `phs plugins new`: a new plugin folder made from the bundled Hello World
//! plugin (lua-plugins/hello-world), so the scaffold is always a plugin
//! whose fixtures pass.

use std::path::Path;

const FILES: &[(&str, &str)] = &[
    ("plugin.json", include_str!("../../lua-plugins/hello-world/plugin.json")),
    ("index.lua", include_str!("../../lua-plugins/hello-world/index.lua")),
    ("README.md", include_str!("../../lua-plugins/hello-world/README.md")),
    ("tests/adds_greeting.json", include_str!("../../lua-plugins/hello-world/tests/adds_greeting.json")),
    ("tests/custom_greeting.json", include_str!("../../lua-plugins/hello-world/tests/custom_greeting.json")),
    (
        "tests/drops_configured_event.json",
        include_str!("../../lua-plugins/hello-world/tests/drops_configured_event.json"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("{0} already exists; choose another name or --dir")]
    Exists(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Writes the scaffold into `dir` (which must not exist) under plugin name `name`.
pub fn create(dir: &Path, name: &str) -> Result<(), ScaffoldError> {
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir.display().to_string()));
    }
    for (rel, content) in FILES {
        let path = dir.join(rel);
        let io = |source| ScaffoldError::Io { path: path.display().to_string(), source };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let content = match *rel {
            "plugin.json" => {
                let mut v: serde_json::Value = serde_json::from_str(content).expect("bundled plugin.json is JSON");
                v["name"] = name.into();
                v["description"] = "A new phs plugin.".into();
                v.as_object_mut().map(|o| o.remove("url"));
                serde_json::to_string_pretty(&v).expect("serializable") + "\n"
            }
            "README.md" => content.replacen("# Hello World", &format!("# {name}"), 1),
            _ => content.to_string(),
        };
        std::fs::write(&path, content).map_err(io)?;
    }
    Ok(())
}
