//! Person property updates carried by an event: `$set` overwrites,
//! `$set_once` fills what is missing, `$unset` removes; plus the properties
//! PostHog derives from the event itself (browser, OS, URLs, campaign
//! parameters) into `$set` and `$initial_*` into `$set_once`.

use serde_json::{Map, Value};

/// Event properties copied to the person (`$set`) and, as `$initial_<name>`,
/// set once: the later original's list (person initial and UTM properties).
const DERIVED: &[&str] = &[
    "$browser",
    "$browser_version",
    "$device_type",
    "$current_url",
    "$pathname",
    "$os",
    "$os_name",
    "$os_version",
    "$referring_domain",
    "$referrer",
    "$screen_height",
    "$screen_width",
    "$viewport_height",
    "$viewport_width",
    "$raw_user_agent",
    "$app_build",
    "$app_name",
    "$app_namespace",
    "$app_version",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "gclid",
    "gad_source",
    "gclsrc",
    "dclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "msclkid",
    "twclid",
    "li_fat_id",
    "mc_cid",
    "igshid",
    "ttclid",
    "rdt_cid",
];

/// Events whose properties describe no page or device of the person.
const NOT_DERIVED_FOR: &[&str] = &["$snapshot", "$performance_event"];

/// Adds the derived `$set` and `$set_once` entries to an event's properties.
/// An explicit `$set` of the same key wins (the newest original's rule).
pub fn add_derived(event: &str, properties: &mut Map<String, Value>) {
    if NOT_DERIVED_FOR.contains(&event) {
        return;
    }
    let mut set = Map::new();
    let mut set_once = Map::new();
    for key in DERIVED {
        if let Some(v) = properties.get(*key) {
            set.insert((*key).to_string(), v.clone());
            set_once.insert(format!("$initial_{}", key.trim_start_matches('$')), v.clone());
        }
    }
    if set.is_empty() {
        return;
    }
    for (field, derived) in [("$set", set), ("$set_once", set_once)] {
        let target = properties.entry(field).or_insert_with(|| Value::Object(Map::new()));
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        let target = target.as_object_mut().expect("made an object above");
        for (k, v) in derived {
            target.entry(k).or_insert(v);
        }
    }
}

/// What an event asks to change on its person.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    pub set: Map<String, Value>,
    pub set_once: Map<String, Value>,
    pub unset: Vec<String>,
}

impl Update {
    pub fn from_properties(properties: &Map<String, Value>) -> Update {
        let object = |k: &str| properties.get(k).and_then(Value::as_object).cloned().unwrap_or_default();
        let unset = match properties.get("$unset") {
            Some(Value::Array(keys)) => keys.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            Some(Value::Object(keys)) => keys.keys().cloned().collect(),
            _ => Vec::new(),
        };
        Update { set: object("$set"), set_once: object("$set_once"), unset }
    }

    /// Applies the update; true when anything changed.
    pub fn apply(&self, properties: &mut Map<String, Value>) -> bool {
        let mut changed = false;
        for (k, v) in &self.set_once {
            if !properties.contains_key(k) {
                properties.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        for (k, v) in &self.set {
            if properties.get(k) != Some(v) {
                properties.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        for k in &self.unset {
            changed |= properties.remove(k).is_some();
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn set_once_fills_set_overwrites_unset_removes() {
        let u = Update::from_properties(&map(json!({
            "$set": {"plan": "pro", "same": 1},
            "$set_once": {"first": "a", "plan": "free"},
            "$unset": ["gone"]
        })));
        let mut p = map(json!({"first": "kept", "same": 1, "gone": true}));
        assert!(u.apply(&mut p));
        assert_eq!(Value::Object(p.clone()), json!({"first": "kept", "same": 1, "plan": "pro"}));
        assert!(!u.apply(&mut p), "a second application changes nothing");
        let by_object = Update::from_properties(&map(json!({"$unset": {"first": null}})));
        assert_eq!(by_object.unset, vec!["first".to_string()]);
    }

    #[test]
    fn derived_properties_do_not_override_explicit_set() {
        let mut p = map(json!({"$browser": "Firefox", "utm_source": "news", "$set": {"$browser": "Mine"}}));
        add_derived("$pageview", &mut p);
        assert_eq!(p["$set"], json!({"$browser": "Mine", "utm_source": "news"}));
        assert_eq!(p["$set_once"], json!({"$initial_browser": "Firefox", "$initial_utm_source": "news"}));
        let mut snap = map(json!({"$browser": "Firefox"}));
        add_derived("$snapshot", &mut snap);
        assert!(snap.get("$set").is_none());
    }
}
