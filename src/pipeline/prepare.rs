//! Stage 4: the event after plugins becomes the row stored: its timestamp
//! resolved with clock-skew correction, `$ip` set unless the team
//! anonymises IPs.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use crate::wire::EventRow;

fn time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(Value::as_str).and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc))
}

/// The event's time, as the original computes it (timestamps.ts):
/// `timestamp` corrected by the client's clock skew (`now - sent_at`) when
/// both are given, else `now - offset`, else `timestamp`, else `now`; more
/// than 23 h in the future becomes `now`, and so does a time out of range
/// (an offset of 10^18 ms, say, or a year before 1970, which ClickHouse's
/// DateTime and Postgres's persons cannot both hold), as the original
/// ignores invalid timestamps.
pub fn resolve_timestamp(event: &Map<String, Value>, now: DateTime<Utc>) -> DateTime<Utc> {
    let props = event.get("properties").and_then(Value::as_object);
    let ignore_sent_at = props.and_then(|p| p.get("$ignore_sent_at")).and_then(Value::as_bool).unwrap_or(false);
    let timestamp = time(event.get("timestamp"));
    let sent_at = if ignore_sent_at { None } else { time(event.get("sent_at")) };
    let offset = event.get("offset").and_then(Value::as_i64);
    let t = match (timestamp, sent_at, offset) {
        (Some(ts), Some(sent), _) => now.checked_add_signed(ts - sent),
        (_, _, Some(ms)) => Duration::try_milliseconds(ms).and_then(|d| now.checked_sub_signed(d)),
        (Some(ts), None, None) => Some(ts),
        (None, _, None) => None,
    };
    match t {
        Some(t) if t >= DateTime::UNIX_EPOCH && t <= now + Duration::hours(23) => t,
        _ => now,
    }
}

pub fn prepare(
    mut event: Map<String, Value>,
    team_id: i64,
    anonymize_ips: bool,
    created_at: DateTime<Utc>,
) -> EventRow {
    // The message's `now` is capture's clock; one from the future (a forged
    // raw message) is not believed, nor one before the epoch.
    let now = time(event.get("now"))
        .filter(|n| *n >= DateTime::UNIX_EPOCH && *n <= created_at + Duration::hours(23))
        .unwrap_or(created_at);
    let timestamp = resolve_timestamp(&event, now);
    let mut properties = match event.remove("properties") {
        Some(Value::Object(p)) => p,
        _ => Map::new(),
    };
    if anonymize_ips {
        properties.remove("$ip");
    } else if !properties.contains_key("$ip")
        && let Some(ip @ Value::String(_)) = event.remove("ip")
    {
        properties.insert("$ip".into(), ip);
    }
    let elements_chain = properties.get("$elements_chain").and_then(Value::as_str).unwrap_or_default().to_string();
    // The event is consumed here: its strings move into the row rather than being copied.
    let mut text = |k: &str| match event.remove(k) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    EventRow {
        uuid: text("uuid"),
        team_id,
        event: text("event"),
        distinct_id: text("distinct_id"),
        properties,
        timestamp,
        created_at,
        elements_chain,
        person: None,
        groups: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn timestamps_follow_the_original() {
        let now = at("2024-01-01T12:00:00Z");
        // Client clock 1 h fast: the event happened 1 minute before it was sent.
        let skewed = obj(json!({"timestamp": "2024-01-01T12:59:00Z", "sent_at": "2024-01-01T13:00:00Z"}));
        assert_eq!(resolve_timestamp(&skewed, now), at("2024-01-01T11:59:00Z"));
        let mut ignored = skewed.clone();
        ignored.insert("properties".into(), json!({"$ignore_sent_at": true}));
        assert_eq!(resolve_timestamp(&ignored, now), at("2024-01-01T12:59:00Z"));
        assert_eq!(resolve_timestamp(&obj(json!({"offset": 1500})), now), at("2024-01-01T11:59:58.500Z"));
        assert_eq!(
            resolve_timestamp(&obj(json!({"timestamp": "2024-01-01T10:00:00.123456Z"})), now),
            at("2024-01-01T10:00:00.123456Z")
        );
        assert_eq!(resolve_timestamp(&obj(json!({})), now), now);
        assert_eq!(
            resolve_timestamp(&obj(json!({"timestamp": "2024-01-03T00:00:00Z"})), now),
            now,
            "far future clamps"
        );
        assert_eq!(resolve_timestamp(&obj(json!({"timestamp": "garbage"})), now), now);
        for offset in [i64::MAX, i64::MIN, 1_000_000_000_000_000_000, -1_000_000_000_000_000_000] {
            assert_eq!(resolve_timestamp(&obj(json!({"offset": offset})), now), now, "offset {offset}");
        }
        let far = obj(json!({"timestamp": "9999-12-31T23:59:59Z", "sent_at": "0001-01-01T00:00:00Z"}));
        assert_eq!(resolve_timestamp(&far, now), now, "a skew correction out of range");
        let year0 = obj(json!({"timestamp": "0000-01-01T00:00:00Z"}));
        assert_eq!(resolve_timestamp(&year0, now), now, "before the epoch");
    }

    #[test]
    fn ip_is_kept_or_dropped_per_team() {
        let e = obj(
            json!({"uuid": "u", "event": "e", "distinct_id": "d", "ip": "1.2.3.4", "properties": {"$ip": "5.6.7.8"}}),
        );
        let now = Utc::now();
        assert_eq!(prepare(e.clone(), 1, false, now).properties["$ip"], "5.6.7.8");
        let mut no_ip = e.clone();
        no_ip.insert("properties".into(), json!({}));
        assert_eq!(prepare(no_ip, 1, false, now).properties["$ip"], "1.2.3.4");
        assert!(prepare(e, 1, true, now).properties.get("$ip").is_none());
    }
}
