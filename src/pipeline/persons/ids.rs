//! Which events ask to join two distinct ids, and which ids may never be
//! joined: values SDKs send by mistake ("anonymous", "null", "[object
//! Object]", ...) would otherwise merge unrelated people into one.

use serde_json::{Map, Value};

/// Refused whatever their case.
const ILLEGAL_ANY_CASE: &[&str] = &[
    "anonymous",
    "guest",
    "distinctid",
    "distinct_id",
    "id",
    "not_authenticated",
    "email",
    "undefined",
    "true",
    "false",
];

/// Refused exactly as written.
const ILLEGAL_EXACT: &[&str] = &["[object Object]", "NaN", "None", "none", "null", "0", "undefined"];

/// Whether a distinct id may not join a merge: the original's placeholder
/// values, and ids longer than any distinct id can be. An event's own id is
/// cut to that length at capture, but the id it names to merge with
/// (`$anon_distinct_id`, `alias`) is not; stored, it would fail the whole
/// batch's person write (Postgres holds 400 characters) and be dead-lettered,
/// where refusing the merge keeps the event.
pub fn is_illegal(id: &str) -> bool {
    if id.chars().nth(crate::pipeline::capture::parse::MAX_DISTINCT_ID_CHARS).is_some() {
        return true;
    }
    let id = id.trim();
    if id.is_empty() {
        return true;
    }
    let unquoted = ['"', '\''].iter().find_map(|q| id.strip_prefix(*q).and_then(|s| s.strip_suffix(*q))).unwrap_or(id);
    ILLEGAL_ANY_CASE.iter().any(|bad| unquoted.eq_ignore_ascii_case(bad)) || ILLEGAL_EXACT.contains(&unquoted)
}

/// An event's request to join another distinct id into its own person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeRequest {
    /// The id whose person is merged into the event's person.
    pub other: String,
    /// `$merge_dangerously`: merge even an already identified person.
    pub dangerous: bool,
}

/// `$identify` with `$anon_distinct_id`, `$create_alias` or
/// `$merge_dangerously` with `alias`; None for every other event.
pub fn merge_request(event: &str, properties: &Map<String, Value>) -> Option<MergeRequest> {
    let (key, dangerous) = match event {
        "$identify" => ("$anon_distinct_id", false),
        "$create_alias" => ("alias", false),
        "$merge_dangerously" => ("alias", true),
        _ => return None,
    };
    let other = match properties.get(key)? {
        Value::String(s) => s.clone(),
        Value::Null => return None,
        v => v.to_string(),
    };
    Some(MergeRequest { other, dangerous })
}

/// The string id a raw event (before plugins) would join, if any: read
/// ahead with the batch's persons, so the join seldom waits on a read.
pub fn other_distinct_id(event: &Map<String, Value>) -> Option<&str> {
    let key = match event.get("event")?.as_str()? {
        "$identify" => "$anon_distinct_id",
        "$create_alias" | "$merge_dangerously" => "alias",
        _ => return None,
    };
    event.get("properties")?.get(key)?.as_str()
}

/// Event properties marked `$process_person_profile: false`: the event reads and writes no person.
pub fn is_personless(properties: &Map<String, Value>) -> bool {
    properties.get("$process_person_profile") == Some(&Value::Bool(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn illegal_ids_follow_the_original() {
        for bad in [
            "",
            "  ",
            "anonymous",
            "AnOnYmOuS",
            "guest",
            "distinct_id",
            "ID",
            "email",
            "undefined",
            "TRUE",
            "false",
            "[object Object]",
            "NaN",
            "None",
            "none",
            "null",
            "0",
            "\"null\"",
            "'guest'",
            "\"[object Object]\"",
        ] {
            assert!(is_illegal(bad), "{bad:?} should be illegal");
        }
        for ok in ["user@example.com", "NULL2", "Null", "00", "1", "nan", "anonymous-42", "\"alice\""] {
            assert!(!is_illegal(ok), "{ok:?} should be allowed");
        }
        // Longer than a distinct id may be: no merge, whatever the characters.
        assert!(is_illegal(&"é".repeat(201)));
        assert!(!is_illegal(&"é".repeat(200)));
    }

    #[test]
    fn merge_requests() {
        let props = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            merge_request("$identify", &props(json!({"$anon_distinct_id": "anon"}))),
            Some(MergeRequest { other: "anon".into(), dangerous: false })
        );
        assert_eq!(merge_request("$identify", &props(json!({}))), None);
        assert_eq!(merge_request("$create_alias", &props(json!({"alias": 42}))).unwrap().other, "42");
        assert!(merge_request("$merge_dangerously", &props(json!({"alias": "x"}))).unwrap().dangerous);
        assert_eq!(merge_request("$pageview", &props(json!({"alias": "x"}))), None);
    }
}
