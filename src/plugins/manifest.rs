//! plugin.json: a plugin's name, entry file and config schema, and the
//! validation of a team's config against that schema.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The parsed plugin.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    /// Entry file; `index.lua` by default.
    #[serde(default = "default_main")]
    pub main: String,
    #[serde(default)]
    pub config: Vec<ConfigField>,
}

fn default_main() -> String {
    "index.lua".into()
}

/// One entry of the config schema, as in PostHog's plugin.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigField {
    /// Empty only for `markdown` entries, which are text for the settings page.
    #[serde(default)]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: FieldKind,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub hint: Option<String>,
    #[serde(default)]
    pub order: Option<i64>,
    #[serde(default)]
    pub choices: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    #[default]
    String,
    Json,
    Choice,
    Attachment,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("plugin.json is not valid: {0}")]
    Parse(String),
    #[error("plugin.json: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config `{key}`: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let mut m: Manifest = serde_json::from_str(text).map_err(|e| ManifestError::Parse(e.to_string()))?;
        // PostHog's markdown entries carry no setting; they are kept out of the schema.
        m.config.retain(|f| !(f.key.is_empty() && f.markdown.is_some()));
        if m.name.trim().is_empty() {
            return Err(ManifestError::Invalid("`name` is empty".into()));
        }
        if m.main.contains("..") || m.main.starts_with('/') || !m.main.ends_with(".lua") {
            return Err(ManifestError::Invalid(format!(
                "`main` must be a .lua file inside the plugin, not `{}`",
                m.main
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for f in &m.config {
            if f.key.is_empty() {
                return Err(ManifestError::Invalid("a config entry has an empty `key`".into()));
            }
            if !seen.insert(&f.key) {
                return Err(ManifestError::Invalid(format!("config key `{}` appears twice", f.key)));
            }
            if f.kind == FieldKind::Choice && f.choices.is_empty() {
                return Err(ManifestError::Invalid(format!("config `{}` is a choice without `choices`", f.key)));
            }
        }
        Ok(m)
    }

    /// Checks a team's raw config (strings, as entered) against the schema and
    /// returns the config plugins see: defaults filled in, json fields parsed.
    pub fn validate_config(
        &self,
        raw: &BTreeMap<String, String>,
    ) -> Result<serde_json::Map<String, Value>, ConfigError> {
        let err = |key: &str, problem: String| ConfigError { key: key.to_string(), problem };
        for key in raw.keys() {
            if !self.config.iter().any(|f| &f.key == key) {
                return Err(err(key, "is not in the plugin's config schema".into()));
            }
        }
        let mut out = serde_json::Map::new();
        for f in &self.config {
            if f.kind == FieldKind::Attachment {
                continue;
            }
            let value = match raw.get(&f.key).filter(|v| !v.is_empty()) {
                Some(v) => match f.kind {
                    FieldKind::Json => {
                        serde_json::from_str(v).map_err(|e| err(&f.key, format!("is not valid JSON: {e}")))?
                    }
                    FieldKind::Choice if !f.choices.contains(v) => {
                        return Err(err(&f.key, format!("`{v}` is not one of {}", f.choices.join(", "))));
                    }
                    _ => Value::String(v.clone()),
                },
                None => match &f.default {
                    Some(d) => d.clone(),
                    None if f.required => return Err(err(&f.key, "is required".into())),
                    None => continue,
                },
            };
            out.insert(f.key.clone(), value);
        }
        Ok(out)
    }

    /// The config with secret values masked, for logs and `phs plugins config`.
    pub fn masked(&self, config: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
        config
            .iter()
            .map(|(k, v)| {
                let secret = self.config.iter().any(|f| &f.key == k && f.secret);
                (k.clone(), if secret { Value::String("********".into()) } else { v.clone() })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> Manifest {
        Manifest::parse(
            r#"{"name": "t", "config": [
                {"key": "api_key", "type": "string", "required": true, "secret": true},
                {"key": "mode", "type": "choice", "choices": ["a", "b"], "default": "a"},
                {"key": "rules", "type": "json"}
            ]}"#,
        )
        .unwrap()
    }

    fn raw(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn fills_defaults_and_parses_json() {
        let c = m().validate_config(&raw(&[("api_key", "k"), ("rules", r#"{"x": 1}"#)])).unwrap();
        assert_eq!(c["mode"], "a");
        assert_eq!(c["rules"]["x"], 1);
        assert_eq!(m().masked(&c)["api_key"], "********");
    }

    #[test]
    fn rejects_bad_configs_naming_the_key() {
        assert_eq!(m().validate_config(&raw(&[])).unwrap_err().key, "api_key");
        assert!(
            m().validate_config(&raw(&[("api_key", "k"), ("mode", "z")])).unwrap_err().problem.contains("not one of")
        );
        assert!(m().validate_config(&raw(&[("api_key", "k"), ("rules", "{")])).unwrap_err().problem.contains("JSON"));
        assert_eq!(m().validate_config(&raw(&[("api_key", "k"), ("nope", "1")])).unwrap_err().key, "nope");
    }

    #[test]
    fn rejects_bad_manifests() {
        assert!(Manifest::parse("{").is_err());
        assert!(Manifest::parse(r#"{"name": ""}"#).is_err());
        assert!(Manifest::parse(r#"{"name": "x", "main": "../evil.lua"}"#).is_err());
        assert!(Manifest::parse(r#"{"name": "x", "config": [{"key": "a"}, {"key": "a"}]}"#).is_err());
        assert_eq!(Manifest::parse(r#"{"name": "x"}"#).unwrap().main, "index.lua");
        let with_markdown =
            Manifest::parse(r#"{"name": "x", "config": [{"markdown": "Read me"}, {"key": "a"}]}"#).unwrap();
        assert_eq!(with_markdown.config.len(), 1);
    }
}
