//! The stored event in the two shapes that leave ingestion: the JSON row of
//! `clickhouse_events_json` (PostHog's RawClickHouseEvent, which PostHog's
//! ClickHouse and phs's async side both read), and the event as plugins'
//! async hooks (onEvent, exportEvents) see it. The async side on Kafka turns
//! the first into the second, so [`plugin_event_from_json`] undoes
//! [`event_json`] for every field a hook sees.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};

use super::row::{EventRow, json_text};

/// ClickHouse's JSON input format for times: `YYYY-MM-DD HH:MM:SS.ffffff`, UTC.
const CLICKHOUSE_TIME: &str = "%Y-%m-%d %H:%M:%S%.6f";

/// A time as ClickHouse's JSON input reads it.
pub fn clickhouse_time(t: &DateTime<Utc>) -> String {
    t.format(CLICKHOUSE_TIME).to_string()
}

/// An events row as `clickhouse_events_json` carries it: JSON columns are
/// JSON strings, times in ClickHouse's format.
pub fn event_json(r: &EventRow) -> Value {
    let mut m = Map::new();
    m.insert("uuid".into(), json!(r.uuid));
    m.insert("event".into(), json!(r.event));
    m.insert("properties".into(), json!(r.properties_json()));
    m.insert("timestamp".into(), json!(clickhouse_time(&r.timestamp)));
    m.insert("team_id".into(), json!(r.team_id));
    m.insert("distinct_id".into(), json!(r.distinct_id));
    m.insert("elements_chain".into(), json!(r.elements_chain));
    m.insert("created_at".into(), json!(clickhouse_time(&r.created_at)));
    if let Some(p) = &r.person {
        m.insert("person_id".into(), json!(p.uuid.to_string()));
        m.insert("person_created_at".into(), json!(clickhouse_time(&p.created_at)));
        m.insert("person_properties".into(), json!(p.properties.text()));
    }
    for (i, g) in r.groups.iter().enumerate() {
        if let Some(g) = g {
            m.insert(format!("group{i}_properties"), json!(json_text(g)));
        }
    }
    m.insert("person_mode".into(), json!(if r.person.is_some() { "full" } else { "propertyless" }));
    Value::Object(m)
}

/// The event as onEvent and exportEvents see it: the original's
/// ProcessedPluginEvent (uuid, team_id, distinct_id, event, properties,
/// timestamp, ip, $set, $set_once, elements_chain).
pub fn plugin_event(e: &EventRow) -> Value {
    let properties = e.properties.clone();
    plugin_event_of(&e.uuid, e.team_id, &e.distinct_id, &e.event, properties, &e.timestamp, &e.elements_chain)
}

fn plugin_event_of(
    uuid: &str,
    team_id: i64,
    distinct_id: &str,
    event: &str,
    properties: Map<String, Value>,
    timestamp: &DateTime<Utc>,
    elements_chain: &str,
) -> Value {
    let prop = |k: &str| properties.get(k).cloned().unwrap_or(Value::Null);
    let (ip, set, set_once) = (prop("$ip"), prop("$set"), prop("$set_once"));
    json!({
        "uuid": uuid,
        "team_id": team_id,
        "distinct_id": distinct_id,
        "event": event,
        "properties": properties,
        "timestamp": timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "ip": ip,
        "$set": set,
        "$set_once": set_once,
        "elements_chain": elements_chain,
    })
}

/// A `clickhouse_events_json` message read back as the event hooks see,
/// with its team; the reason when it is not such a message (another
/// producer wrote the topic, or the bytes were damaged).
pub fn plugin_event_from_json(payload: &[u8]) -> Result<(i64, Value), String> {
    let row: Map<String, Value> = serde_json::from_slice(payload).map_err(|e| format!("not a JSON object: {e}"))?;
    let text = |k: &str| row.get(k).and_then(Value::as_str).ok_or_else(|| format!("no string `{k}`"));
    let team_id = row.get("team_id").and_then(Value::as_i64).ok_or("no integer `team_id`")?;
    let properties: Map<String, Value> = match row.get("properties") {
        Some(Value::String(s)) => {
            serde_json::from_str(s).map_err(|e| format!("`properties` is not a JSON object: {e}"))?
        }
        Some(Value::Object(m)) => m.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err("`properties` is neither JSON text nor an object".into()),
    };
    let raw_time = text("timestamp")?;
    let timestamp = NaiveDateTime::parse_from_str(raw_time, "%Y-%m-%d %H:%M:%S%.f")
        .map(|t| t.and_utc())
        .or_else(|_| DateTime::parse_from_rfc3339(raw_time).map(|t| t.with_timezone(&Utc)))
        .map_err(|e| format!("`timestamp` {raw_time:?}: {e}"))?;
    let elements_chain = row.get("elements_chain").and_then(Value::as_str).unwrap_or_default();
    let event = plugin_event_of(
        text("uuid")?,
        team_id,
        text("distinct_id")?,
        text("event")?,
        properties,
        &timestamp,
        elements_chain,
    );
    Ok((team_id, event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{EventPerson, SharedJson};

    fn row() -> EventRow {
        let t = |s| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let properties = json!({"$ip": "1.2.3.4", "$set": {"a": 1}, "plan": "pro", "ü": "ß"});
        EventRow {
            uuid: "0190a4c2-0000-7000-8000-000000000001".into(),
            team_id: 7,
            event: "$pageview".into(),
            distinct_id: "user \"1\"".into(),
            properties: properties.as_object().unwrap().clone(),
            timestamp: t("2024-05-01T10:00:00.123Z"),
            created_at: t("2024-05-01T10:00:01Z"),
            elements_chain: "a:href=\"x\"".into(),
            person: Some(EventPerson {
                uuid: uuid::Uuid::nil(),
                properties: SharedJson::new(json!({"email": "x@y"})),
                created_at: t("2024-01-01T00:00:00Z"),
            }),
            groups: [Some(json!({"n": 1})), None, None, None, None],
        }
    }

    #[test]
    fn times_use_clickhouse_format_with_microseconds() {
        let t = DateTime::parse_from_rfc3339("2024-05-01T10:00:00.123456Z").unwrap().with_timezone(&Utc);
        assert_eq!(clickhouse_time(&t), "2024-05-01 10:00:00.123456");
        let whole = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(clickhouse_time(&whole), "2024-05-01 10:00:00.000000");
    }

    #[test]
    fn the_topic_row_reads_back_as_the_event_hooks_see() {
        let r = row();
        let payload = serde_json::to_vec(&event_json(&r)).unwrap();
        let (team, event) = plugin_event_from_json(&payload).unwrap();
        assert_eq!(team, 7);
        assert_eq!(event, plugin_event(&r));
        assert_eq!(event["ip"], "1.2.3.4");
        assert_eq!(event["timestamp"], "2024-05-01T10:00:00.123Z");
    }

    #[test]
    fn other_messages_say_what_is_wrong() {
        let bad: &[(&[u8], &str)] = &[
            (b"not json", "not a JSON object"),
            (br#"{"uuid":"u","event":"e","distinct_id":"d","timestamp":"2024-05-01 10:00:00.000000"}"#, "team_id"),
            (br#"{"team_id":1,"uuid":"u","event":"e","distinct_id":"d","timestamp":"yesterday"}"#, "timestamp"),
            (
                br#"{"team_id":1,"uuid":"u","event":"e","distinct_id":"d","properties":"[1]","timestamp":"x"}"#,
                "properties",
            ),
            (br#"{"team_id":1,"event":"e","distinct_id":"d","timestamp":"2024-05-01 10:00:00.000000"}"#, "uuid"),
        ];
        for (payload, says) in bad {
            let err = plugin_event_from_json(payload).unwrap_err();
            assert!(err.contains(says), "{err} should name {says}");
        }
    }
}
