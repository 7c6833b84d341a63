//! Plugin configs' secret values kept out of what people read: the plugin
//! log, the error stored on a config, the error stream of `/_snapshot` and
//! `phs top`, and `phs replay`'s output. A plugin may put a secret in an
//! error message, a log line or a request URL; each is shown as `********`.

use serde_json::Value;

use crate::store::{Plugin, PluginConfig};

#[derive(Debug, Default, Clone)]
pub struct Redactor(Vec<String>);

impl Redactor {
    /// Hides these values, and their JSON-escaped forms.
    pub fn new(values: impl IntoIterator<Item = String>) -> Redactor {
        let mut secrets = Vec::new();
        for value in values {
            let quoted = Value::String(value.clone()).to_string();
            // Only the enclosing quotes: an escaped quote at either end belongs to the value.
            let escaped = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')).unwrap_or(&quoted);
            secrets.push(escaped.to_string());
            secrets.push(value);
        }
        // Longest first, so a secret containing another is hidden whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor(secrets)
    }

    /// The secrets of one config.
    pub fn of(plugin: &Plugin, config: &PluginConfig) -> Redactor {
        Redactor::new(super::registry::secret_values(plugin, config))
    }

    /// A JSON value with the secrets in its strings (and keys) masked.
    pub fn redact_json(&self, v: &Value) -> Value {
        if self.0.is_empty() {
            return v.clone();
        }
        let text = v.to_string();
        match self.redact(&text) {
            // The mask has no character JSON escapes, so the text stays JSON.
            std::borrow::Cow::Owned(masked) => serde_json::from_str(&masked).unwrap_or(Value::Null),
            std::borrow::Cow::Borrowed(_) => v.clone(),
        }
    }

    pub fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        let mut out = std::borrow::Cow::Borrowed(text);
        for secret in &self.0 {
            if out.contains(secret.as_str()) {
                out = std::borrow::Cow::Owned(out.replace(secret.as_str(), "********"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Redactor;

    #[test]
    fn hides_each_secret_and_its_escaped_form() {
        let r = Redactor::new(["abcd".to_string(), "a\"quoted\"".to_string()]);
        assert_eq!(r.redact("x abcd y"), "x ******** y");
        assert_eq!(r.redact(r#"{"k":"a\"quoted\""}"#), r#"{"k":"********"}"#);
        assert_eq!(r.redact("nothing here"), "nothing here");
        let event = serde_json::json!({"properties": {"leak": "abcd", "n": 1}});
        assert_eq!(r.redact_json(&event), serde_json::json!({"properties": {"leak": "********", "n": 1}}));
    }
}
