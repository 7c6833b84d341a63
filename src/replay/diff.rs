//! What a plugin changed in an event, as a list of changes by path
//! (`event`, `properties.$browser`, `$set.plan`): objects are compared key
//! by key, anything else (arrays included) as a whole value.

use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub path: String,
    /// None: the field was added.
    pub before: Option<Value>,
    /// None: the field was removed.
    pub after: Option<Value>,
}

/// Fields the runner sets around each call, not the plugin's doing.
const IGNORED: &[&str] = &["team_id"];

/// The changes from `before` to `after`, in path order.
pub fn diff(before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<Change> {
    let mut out = Vec::new();
    objects("", before, after, &mut out);
    out.retain(|c| !IGNORED.contains(&c.path.as_str()));
    out
}

fn objects(prefix: &str, before: &Map<String, Value>, after: &Map<String, Value>, out: &mut Vec<Change>) {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match (before.get(key), after.get(key)) {
            (Some(Value::Object(b)), Some(Value::Object(a))) => objects(&path, b, a, out),
            (Some(b), Some(a)) if b == a => {}
            (b, a) => out.push(Change { path, before: b.cloned(), after: a.cloned() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_by_path() {
        let before =
            json!({"event": "pv", "team_id": 1, "properties": {"a": 1, "b": [1], "gone": true, "n": {"x": 1}}});
        let after =
            json!({"event": "pageview", "team_id": 2, "properties": {"a": 1, "b": [1, 2], "new": "v", "n": {"x": 2}}});
        let changes = diff(before.as_object().unwrap(), after.as_object().unwrap());
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["event", "properties.b", "properties.gone", "properties.n.x", "properties.new"]);
        assert_eq!(changes[2].after, None);
        assert_eq!(changes[4].before, None);
        assert_eq!(changes[0].after, Some(json!("pageview")));
        assert!(diff(before.as_object().unwrap(), before.as_object().unwrap()).is_empty());
    }
}
