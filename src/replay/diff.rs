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

/// Walks both objects' keys in order (a JSON object here is a BTreeMap, so
/// its keys come sorted) and builds a path only where something changed:
/// most keys of an event are unchanged, and formatting each one's path
/// cost more than the comparison.
fn objects(prefix: &str, before: &Map<String, Value>, after: &Map<String, Value>, out: &mut Vec<Change>) {
    let path = |key: &str| if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") };
    let (mut b, mut a) = (before.iter().peekable(), after.iter().peekable());
    loop {
        let order = match (b.peek(), a.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((kb, _)), Some((ka, _))) => kb.cmp(ka),
        };
        match order {
            std::cmp::Ordering::Less => {
                let Some((k, v)) = b.next() else { break };
                out.push(Change { path: path(k), before: Some(v.clone()), after: None });
            }
            std::cmp::Ordering::Greater => {
                let Some((k, v)) = a.next() else { break };
                out.push(Change { path: path(k), before: None, after: Some(v.clone()) });
            }
            std::cmp::Ordering::Equal => {
                let (Some((k, vb)), Some((_, va))) = (b.next(), a.next()) else { break };
                match (vb, va) {
                    (Value::Object(ob), Value::Object(oa)) => objects(&path(k), ob, oa, out),
                    _ if vb == va => {}
                    _ => out.push(Change { path: path(k), before: Some(vb.clone()), after: Some(va.clone()) }),
                }
            }
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
