//! The hostile-input corpus: malformed and adversarial requests to the
//! capture endpoint, and raw messages put straight into the consumption
//! topic (bypassing capture's checks), on both deployments.
//!
//! The contract, per case: capture answers a clear 4xx, or 200 and then the
//! event is stored "made safe" or dead-lettered with a reason. Nothing
//! crashes or stalls: a valid event sent right after each case is stored,
//! and `/_health` stays 200 throughout. Each case carries a marker
//! (`hx:NAME:`) somewhere in its payload, so its rows and dead letters can
//! be told apart; its follow-up carries `ok:NAME:`.
//!
//! One server per deployment gets every case, then the test waits once and
//! reports every case that did not get its expected outcome, not just the first.

use std::io::Write;
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Utc};
use phs::wire::Producer;
use serde_json::{Map, Value, json};

use crate::util::eventually::settle;
use crate::util::production::Deployment;
use crate::util::server::{Server, start_logged, wait_healthy};

/// A row check: Err says what is wrong with the stored event.
type Check = fn(&Value) -> Result<(), String>;

/// What must happen to a case.
enum Expect {
    /// Capture answers this status; nothing is stored or dead-lettered.
    Refused(u16),
    /// Accepted (200), stored this many times, each row passing the check.
    Stored(usize, Check),
    /// Accepted (200), dead-lettered once with this reason, and not stored.
    Dead(&'static str),
    /// The message cannot even be put into the topic (the broker's own size limit).
    Undeliverable,
    /// The deployments differ, by a store's own limits: embedded, production.
    Per(Box<Expect>, Box<Expect>),
}
use Expect::{Dead, Refused, Stored};

fn per(embedded: Expect, production: Expect) -> Expect {
    Expect::Per(Box::new(embedded), Box::new(production))
}

/// Stored once, with no check beyond being there.
const STORED: Expect = Stored(1, |_| Ok(()));

struct Http {
    name: &'static str,
    method: &'static str,
    /// Path and query.
    path: &'static str,
    content_type: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    expect: Expect,
}

impl Http {
    fn at(mut self, path: &'static str) -> Self {
        self.path = path;
        self
    }
    fn typed(mut self, content_type: Option<&'static str>) -> Self {
        self.content_type = content_type;
        self
    }
    fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }
    fn method(mut self, m: &'static str) -> Self {
        self.method = m;
        self
    }
}

fn mark(name: &str) -> String {
    format!("hx:{name}:")
}

fn follow_up_mark(name: &str) -> String {
    format!("ok:{name}:")
}

/// A JSON request to `/e` built from the case's marker.
fn case(name: &'static str, expect: Expect, body: impl FnOnce(&str) -> Vec<u8>) -> Http {
    Http {
        name,
        method: "POST",
        path: "/e",
        content_type: Some("application/json"),
        headers: vec![],
        body: body(&mark(name)),
        expect,
    }
}

/// A well-formed event carrying the marker as distinct_id and `properties.case`.
fn base(token: &str, m: &str) -> Value {
    json!({"token": token, "event": "hostile", "distinct_id": m, "properties": {"case": m}})
}

/// `base` with `extra`'s top-level keys replacing its own.
fn with(token: &str, m: &str, extra: Value) -> Vec<u8> {
    let mut e = base(token, m);
    e.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    e.to_string().into_bytes()
}

/// `base` with `extra` merged into its properties.
fn props(token: &str, m: &str, extra: Value) -> Vec<u8> {
    let mut e = base(token, m);
    e["properties"].as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    e.to_string().into_bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn form(data: &str) -> String {
    form_urlencoded::Serializer::new(String::new()).append_pair("data", data).finish()
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

// Row checks.

fn want(row: &Value, pointer: &str, value: Value) -> Result<(), String> {
    match row.pointer(pointer) {
        Some(v) if *v == value => Ok(()),
        other => Err(format!("{pointer} is {}, want {value}", other.map_or("absent".into(), short))),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 { format!("{}… ({} bytes)", s.chars().take(300).collect::<String>(), s.len()) } else { s }
}

/// The nesting is kept as sent: `[[…[1]…]]` `n` arrays deep.
fn depth_is(v: &Value, n: usize) -> Result<(), String> {
    let mut d = 0;
    let mut at = v;
    while let Some([inner]) = at.as_array().map(Vec::as_slice) {
        d += 1;
        at = inner;
    }
    if d == n && *at == json!(1) { Ok(()) } else { Err(format!("nested {d} deep around {}, want {n}", short(at))) }
}

/// `{key: value}`, for keys built at run time.
fn obj(key: String, value: Value) -> Value {
    Value::Object(Map::from_iter([(key, value)]))
}

/// The stored timestamp is the current time (within the test's run), not the one sent.
fn near_now(row: &Value) -> Result<(), String> {
    let ts = row["timestamp"].as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok());
    match ts {
        Some(t) if (Utc::now() - t).num_minutes().abs() < 10 => Ok(()),
        _ => Err(format!("timestamp {}, want about now", row["timestamp"])),
    }
}

/// No NUL is left anywhere in the stored event.
fn no_nul(row: &Value) -> Result<(), String> {
    if row.to_string().contains("\\u0000") { Err(format!("a NUL is stored: {}", short(row))) } else { Ok(()) }
}

fn all(checks: &[Result<(), String>]) -> Result<(), String> {
    let errs: Vec<&String> = checks.iter().filter_map(|c| c.as_ref().err()).collect();
    if errs.is_empty() { Ok(()) } else { Err(errs.iter().map(|e| e.as_str()).collect::<Vec<_>>().join("; ")) }
}

/// The corpus sent to the capture endpoint.
fn http_cases(t: &str) -> Vec<Http> {
    let lorem = |n: usize| "x".repeat(n);
    let v = |e: Value| e.to_string().into_bytes();
    vec![
        // Bodies and encodings.
        case("empty_body", Refused(400), |_| vec![]),
        case("invalid_json", Refused(400), |m| format!(r#"{{"token": "{t}", "event": "{m}""#).into_bytes()),
        case("not_json_text", Refused(400), |m| format!("hello {m}").into_bytes()),
        case("json_null", Refused(400), |_| b"null".to_vec()),
        case("json_number", Refused(400), |_| b"42".to_vec()),
        case("json_string", Refused(400), |m| format!("\"{m}\"").into_bytes()),
        case("invalid_utf8", Refused(400), |m| {
            let mut b = format!(r#"{{"token": "{t}", "event": "a"#).into_bytes();
            b.extend([0xff, 0xfe, 0xc3]);
            b.extend(format!(r#"", "distinct_id": "{m}"}}"#).into_bytes());
            b
        }),
        case("lone_high_surrogate", Refused(400), |m| {
            format!(r#"{{"token": "{t}", "event": "a\ud800b", "distinct_id": "{m}"}}"#).into_bytes()
        }),
        case("lone_low_surrogate_key", Refused(400), |m| {
            format!(r#"{{"token": "{t}", "event": "e", "distinct_id": "{m}", "properties": {{"\udc00": 1}}}}"#)
                .into_bytes()
        }),
        case("nan_literal", Refused(400), |m| {
            format!(r#"{{"token": "{t}", "event": "e", "distinct_id": "{m}", "properties": {{"x": NaN}}}}"#)
                .into_bytes()
        }),
        case("infinity_literal", Refused(400), |m| {
            format!(r#"{{"token": "{t}", "event": "e", "distinct_id": "{m}", "offset": -Infinity}}"#).into_bytes()
        }),
        case("deep_nesting_100k", Refused(400), |_| "[".repeat(100_000).into_bytes()),
        case("deep_nesting_200_in_properties", Refused(400), |m| {
            format!(r#"{{"token": "{t}", "event": "e", "distinct_id": "{m}", "properties": {{"d": {}}}}}"#, nested(200))
                .into_bytes()
        }),
        case("deep_nesting_100_in_properties", Stored(1, |r| depth_is(&r["properties"]["d"], 100)), |m| {
            format!(r#"{{"token": "{t}", "event": "e", "distinct_id": "{m}", "properties": {{"d": {}}}}}"#, nested(100))
                .into_bytes()
        }),
        case("truncated_gzip", Refused(400), |m| {
            let g = gzip(&with(t, m, json!({})));
            g[..g.len() / 2].to_vec()
        }),
        case("gzip_bomb", Refused(413), |m| {
            // 30 MiB of spaces inflate from about 30 KiB: over the 20 MiB body limit.
            let mut body = format!(r#"{{"token": "{t}", "distinct_id": "{m}", "event": "e", "p": ""#).into_bytes();
            body.extend(std::iter::repeat_n(b' ', 30 * 1024 * 1024));
            body.extend(b"\"}");
            gzip(&body)
        }),
        case("gzip_of_garbage", Refused(400), |m| gzip(format!("garbage {m}").as_bytes())),
        case("gzip_twice", Refused(400), |m| gzip(&gzip(&with(t, m, json!({}))))),
        case("gzip_body_with_lz64_param", STORED, |m| gzip(&with(t, m, json!({})))).at("/e/?compression=lz64"),
        case("plain_body_with_gzip_param", STORED, |m| with(t, m, json!({}))).at("/e/?compression=gzip-js"),
        case("plain_body_with_gzip_content_encoding", STORED, |m| with(t, m, json!({})))
            .header("content-encoding", "gzip"),
        case("form_lz64", Refused(400), |m| {
            format!("{}&compression=lz64", form(&b64(&with(t, m, json!({}))))).into_bytes()
        })
        .typed(Some("application/x-www-form-urlencoded")),
        case("form_without_data", Refused(400), |m| format!("foo={m}").into_bytes())
            .typed(Some("application/x-www-form-urlencoded")),
        case("form_bad_base64", Refused(400), |m| form(&format!("!!{m}!!")).into_bytes())
            .typed(Some("application/x-www-form-urlencoded")),
        case("form_base64_of_garbage", Refused(400), |m| form(&b64(format!("garbage {m}").as_bytes())).into_bytes())
            .typed(Some("application/x-www-form-urlencoded")),
        case("form_type_json_body", Refused(400), |m| with(t, m, json!({})))
            .typed(Some("application/x-www-form-urlencoded")),
        case("json_type_form_body", Refused(400), |m| form(&b64(&with(t, m, json!({})))).into_bytes()),
        case("form_gzip_base64", STORED, |m| gzip(form(&b64(&with(t, m, json!({})))).as_bytes()))
            .typed(Some("application/x-www-form-urlencoded")),
        case("text_plain_json", STORED, |m| with(t, m, json!({}))).typed(Some("text/plain")),
        case("no_content_type", STORED, |m| with(t, m, json!({}))).typed(None),
        case("odd_content_type", STORED, |m| with(t, m, json!({}))).typed(Some("image/png; charset=ebcdic")),
        case("huge_body", Refused(413), |m| {
            let mut b = with(t, m, json!({}));
            b.extend(std::iter::repeat_n(b' ', 21 * 1024 * 1024));
            b
        }),
        case("event_over_message_limit", Refused(413), |m| props(t, m, json!({"blob": lorem(1_500_000)}))),
        case(
            "huge_property_key",
            Stored(1, |r| {
                let keys = r["properties"].as_object().unwrap();
                if keys.keys().any(|k| k.len() == 100_000) { Ok(()) } else { Err("the 100 KB key is gone".into()) }
            }),
            |m| props(t, m, obj(lorem(100_000), json!(1))),
        ),
        case("huge_property_value", Stored(1, |r| want(r, "/properties/blob", json!("x".repeat(900_000)))), |m| {
            props(t, m, json!({"blob": lorem(900_000)}))
        }),
        case("many_properties", Stored(1, |r| want(r, "/properties/p19999", json!(19999))), |m| {
            let p: Map<String, Value> = (0..20_000).map(|i| (format!("p{i}"), json!(i))).collect();
            props(t, m, Value::Object(p))
        }),
        // Event names.
        case("event_missing", Refused(400), |m| v(json!({"token": t, "distinct_id": m}))),
        case("event_null", Refused(400), |m| with(t, m, json!({"event": null}))),
        case("event_empty", Refused(400), |m| with(t, m, json!({"event": ""}))),
        case("event_number", Refused(400), |m| with(t, m, json!({"event": 42}))),
        case("event_object", Refused(400), |m| with(t, m, json!({"event": {"a": 1}}))),
        case("event_nul", Stored(1, |r| want(r, "/event", json!("sign\u{fffd}up"))), |m| {
            with(t, m, json!({"event": "sign\u{0}up"}))
        }),
        case("event_1000_chars", Stored(1, |r| want(r, "/event", json!("x".repeat(200)))), |m| {
            with(t, m, json!({"event": lorem(1000)}))
        }),
        // Distinct ids.
        case("distinct_id_missing", Refused(400), |m| v(json!({"token": t, "event": "e", "properties": {"case": m}}))),
        case("distinct_id_null", Refused(400), |m| with(t, m, json!({"distinct_id": null}))),
        case("distinct_id_object", Refused(400), |m| with(t, m, json!({"distinct_id": {"id": m}}))),
        case("distinct_id_array", Refused(400), |m| with(t, m, json!({"distinct_id": [m]}))),
        case("distinct_id_bool", Refused(400), |m| with(t, m, json!({"distinct_id": true}))),
        case("distinct_id_empty", Refused(400), |m| with(t, m, json!({"distinct_id": ""}))),
        case("distinct_id_whitespace", Refused(400), |m| with(t, m, json!({"distinct_id": " \t\n "}))),
        case("distinct_id_number", Stored(1, |r| want(r, "/distinct_id", json!("4242"))), |m| {
            with(t, m, json!({"distinct_id": 4242}))
        }),
        case("distinct_id_undefined", Stored(1, |r| want(r, "/distinct_id", json!("undefined"))), |m| {
            with(t, m, json!({"distinct_id": "undefined"}))
        }),
        case("distinct_id_null_string", Stored(1, |r| want(r, "/distinct_id", json!("null"))), |m| {
            with(t, m, json!({"distinct_id": "null"}))
        }),
        case("distinct_id_zero", Stored(1, |r| want(r, "/distinct_id", json!("0"))), |m| {
            with(t, m, json!({"distinct_id": "0"}))
        }),
        case("distinct_id_nul", Stored(1, |r| want(r, "/distinct_id", json!("hx:distinct_id_nul:\u{fffd}x"))), |m| {
            with(t, m, json!({"distinct_id": format!("{m}\u{0}x")}))
        }),
        case(
            "distinct_id_huge",
            Stored(1, |r| want(r, "/distinct_id", json!(format!("hx:distinct_id_huge:{}", "x".repeat(200 - 20))))),
            |m| with(t, m, json!({"distinct_id": format!("{m}{}", lorem(100_000))})),
        ),
        case("distinct_id_in_properties_only", Stored(1, |r| want(r, "/distinct_id", json!("from_props"))), |m| {
            v(json!({"token": t, "event": "e", "properties": {"case": m, "distinct_id": "from_props"}}))
        }),
        // Uuids.
        case("uuid_invalid", Refused(400), |m| with(t, m, json!({"uuid": "not-a-uuid"}))),
        case("uuid_number", Refused(400), |m| with(t, m, json!({"uuid": 7}))),
        case("uuid_nul", Refused(400), |m| with(t, m, json!({"uuid": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5\u{0}"}))),
        case("uuid_uppercase", Stored(1, |r| want(r, "/uuid", json!("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"))), |m| {
            with(t, m, json!({"uuid": "0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B"}))
        }),
        case("uuid_duplicate_in_batch", Stored(1, |_| Ok(())), |m| {
            // A redelivered event: the same uuid twice is one event.
            let uuid = uuid::Uuid::now_v7().to_string();
            let e = base(t, m);
            let mut one = e.clone();
            one["uuid"] = json!(uuid);
            v(json!({"api_key": t, "batch": [one.clone(), one]}))
        })
        .at("/batch"),
        // Properties.
        case("properties_string", Stored(1, |r| want(r, "/properties/$ip", json!("127.0.0.1"))), |m| {
            with(t, m, json!({"properties": "nope"}))
        }),
        case("properties_array", Stored(1, |r| want(r, "/properties/$ip", json!("127.0.0.1"))), |m| {
            with(t, m, json!({"properties": [1, 2]}))
        }),
        case("properties_null", Stored(1, |r| want(r, "/properties/$ip", json!("127.0.0.1"))), |m| {
            with(t, m, json!({"properties": null}))
        }),
        case(
            "nul_in_property_key",
            Stored(1, |r| all(&[want(r, "/properties/a\u{fffd}b", json!(1)), no_nul(r)])),
            |m| props(t, m, json!({"a\u{0}b": 1})),
        ),
        case("nul_in_property_value", Stored(1, |r| want(r, "/properties/v", json!("a\u{fffd}b"))), |m| {
            props(t, m, json!({"v": "a\u{0}b"}))
        }),
        case(
            "nul_in_nested_value",
            Stored(1, |r| all(&[want(r, "/properties/o/k/0", json!("\u{fffd}")), no_nul(r)])),
            |m| props(t, m, json!({"o": {"k": ["\u{0}"], "\u{0}": "\u{0}"}})),
        ),
        case(
            "duplicate_keys",
            Stored(1, |r| all(&[want(r, "/event", json!("second")), want(r, "/properties/p", json!(2))])),
            |m| {
                format!(r#"{{"token": "{t}", "event": "first", "distinct_id": "{m}", "event": "second", "properties": {{"p": 1, "p": 2}}}}"#)
                .into_bytes()
            },
        ),
        // Timestamps, offsets and sent_at.
        case("timestamp_year_9999", Stored(1, near_now), |m| with(t, m, json!({"timestamp": "9999-12-31T23:59:59Z"}))),
        case("timestamp_year_0", Stored(1, near_now), |m| with(t, m, json!({"timestamp": "0000-01-01T00:00:00Z"}))),
        case("timestamp_not_rfc3339", Stored(1, near_now), |m| with(t, m, json!({"timestamp": "yesterday"}))),
        case("timestamp_bad_fields", Stored(1, near_now), |m| with(t, m, json!({"timestamp": "2024-13-45T99:99:99Z"}))),
        case("timestamp_number", Stored(1, near_now), |m| with(t, m, json!({"timestamp": 1e300}))),
        case("timestamp_object", Stored(1, near_now), |m| with(t, m, json!({"timestamp": {"at": 1}}))),
        case("offset_huge", Stored(1, near_now), |m| with(t, m, json!({"offset": 1_000_000_000_000_000_000i64}))),
        case("offset_negative_huge", Stored(1, near_now), |m| {
            with(t, m, json!({"offset": -1_000_000_000_000_000_000i64}))
        }),
        case("offset_i64_min", Stored(1, near_now), |m| with(t, m, json!({"offset": i64::MIN}))),
        case("offset_u64_max", Stored(1, near_now), |m| with(t, m, json!({"offset": u64::MAX}))),
        case("offset_string", Stored(1, near_now), |m| with(t, m, json!({"offset": "1000000000000"}))),
        case("offset_float", Stored(1, near_now), |m| with(t, m, json!({"offset": 1.5e300}))),
        case("sent_at_year_9999", Stored(1, near_now), |m| {
            let e = json!({"event": "e", "distinct_id": m, "timestamp": "2024-05-01T00:00:00Z"});
            v(json!({"api_key": t, "sent_at": "9999-12-31T23:59:59Z", "batch": [e]}))
        })
        .at("/batch"),
        case("sent_at_year_1", Stored(1, near_now), |m| {
            let e = json!({"event": "e", "distinct_id": m, "timestamp": "2024-05-01T00:00:00Z"});
            v(json!({"api_key": t, "sent_at": "0001-01-01T00:00:00Z", "batch": [e]}))
        })
        .at("/batch"),
        case("sent_at_garbage", Stored(1, |r| want(r, "/timestamp", json!("2024-05-01T00:00:00Z"))), |m| {
            let e = json!({"event": "e", "distinct_id": m, "timestamp": "2024-05-01T00:00:00Z"});
            v(json!({"api_key": t, "sent_at": "\u{0}garbage", "batch": [e]}))
        })
        .at("/batch"),
        case("sent_at_number", STORED, |m| {
            v(json!({"api_key": t, "sent_at": -5, "batch": [{"event": "e", "distinct_id": m}]}))
        })
        .at("/batch"),
        case("sent_at_query_huge", Stored(1, near_now), |m| with(t, m, json!({}))).at("/e/?_=99999999999999999999999"),
        // Person properties.
        case("set_string", STORED, |m| with(t, m, json!({"$set": "x"}))),
        case("set_array", STORED, |m| with(t, m, json!({"$set": [1, {"a": 2}]}))),
        case("set_once_number", STORED, |m| with(t, m, json!({"$set_once": 5}))),
        case("properties_set_string", STORED, |m| props(t, m, json!({"$set": "x", "$set_once": [1]}))),
        case("unset_string", STORED, |m| props(t, m, json!({"$unset": "a"}))),
        case("unset_object", STORED, |m| props(t, m, json!({"$unset": {"a": 1}}))),
        case("unset_nested_arrays", STORED, |m| props(t, m, json!({"$unset": [[1], [2, null], {}]}))),
        case("set_huge_key", STORED, |m| with(t, m, json!({"$set": obj(lorem(10_000), json!(lorem(10_000)))}))),
        case("set_nul", Stored(1, no_nul), |m| {
            with(t, m, json!({"$set": {"k\u{0}": "v\u{0}"}, "$set_once": {"\u{0}": 1}}))
        }),
        // Groups.
        case("groups_string", STORED, |m| props(t, m, json!({"$groups": "company"}))),
        case("groups_array", STORED, |m| props(t, m, json!({"$groups": ["company", 1]}))),
        case("groups_number_key", STORED, |m| props(t, m, json!({"$groups": {"company": 5, "org": null}}))),
        case("groups_huge_key", STORED, |m| props(t, m, json!({"$groups": {"company": lorem(100_000)}}))),
        case("groups_many_types", STORED, |m| {
            let g: Map<String, Value> = (0..50).map(|i| (format!("type{i}"), json!(format!("k{i}")))).collect();
            props(t, m, json!({"$groups": g}))
        }),
        case("groups_huge_type_name", STORED, |m| props(t, m, json!({"$groups": obj(lorem(10_000), json!("k"))}))),
        case("groups_nul", Stored(1, no_nul), |m| props(t, m, json!({"$groups": {"co\u{0}": "k\u{0}"}}))),
        case("groupidentify_odd", STORED, |m| {
            with(
                t,
                m,
                json!({"event": "$groupidentify",
                "properties": {"case": m, "$group_type": 5, "$group_key": {"a": 1}, "$group_set": "x"}}),
            )
        }),
        case("groupidentify_nul", Stored(1, no_nul), |m| {
            with(
                t,
                m,
                json!({"event": "$groupidentify",
                "properties": {"case": m, "$group_type": "org\u{0}", "$group_key": "k\u{0}", "$group_set": {"n\u{0}": "v\u{0}"}}}),
            )
        }),
        // Identity events.
        case("identify_without_anon", STORED, |m| with(t, m, json!({"event": "$identify"}))),
        case("identify_anon_self", STORED, |m| {
            with(t, m, json!({"event": "$identify", "properties": {"case": m, "$anon_distinct_id": m}}))
        }),
        case("identify_anon_nul", Stored(1, no_nul), |m| {
            with(t, m, json!({"event": "$identify", "properties": {"case": m, "$anon_distinct_id": "\u{0}"}}))
        }),
        case("identify_anon_object", STORED, |m| {
            with(t, m, json!({"event": "$identify", "properties": {"case": m, "$anon_distinct_id": {"a": 1}}}))
        }),
        case("identify_anon_illegal", STORED, |m| {
            with(t, m, json!({"event": "$identify", "properties": {"case": m, "$anon_distinct_id": "undefined"}}))
        }),
        // Refused as a merge (an ingestion warning), the event kept, on both deployments.
        case("identify_anon_huge", STORED, |m| {
            with(t, m, json!({"event": "$identify", "properties": {"case": m, "$anon_distinct_id": lorem(10_000)}}))
        }),
        case("identify_as_illegal_id", Stored(1, |r| want(r, "/distinct_id", json!("None"))), |m| {
            with(
                t,
                m,
                json!({"event": "$identify", "distinct_id": "None",
                "properties": {"case": m, "$anon_distinct_id": format!("{m}anon")}}),
            )
        }),
        case("alias_missing", STORED, |m| with(t, m, json!({"event": "$create_alias"}))),
        case("alias_number", STORED, |m| {
            with(t, m, json!({"event": "$create_alias", "properties": {"case": m, "alias": 7}}))
        }),
        case("alias_self", STORED, |m| {
            with(t, m, json!({"event": "$create_alias", "properties": {"case": m, "alias": m}}))
        }),
        case("alias_nul", Stored(1, no_nul), |m| {
            with(t, m, json!({"event": "$create_alias", "properties": {"case": m, "alias": format!("{m}\u{0}")}}))
        }),
        case("merge_dangerously_illegal", STORED, |m| {
            with(t, m, json!({"event": "$merge_dangerously", "properties": {"case": m, "alias": "null"}}))
        }),
        case("merge_dangerously_array", STORED, |m| {
            with(t, m, json!({"event": "$merge_dangerously", "properties": {"case": m, "alias": [m]}}))
        }),
        // Tokens.
        case("token_unknown", Refused(401), |m| v(json!({"token": "phc_nobody", "event": "e", "distinct_id": m}))),
        case("token_empty", Refused(400), |m| v(json!({"token": "", "event": "e", "distinct_id": m}))),
        case("token_whitespace", Refused(401), |m| v(json!({"token": "   ", "event": "e", "distinct_id": m}))),
        case("token_huge", Refused(401), |m| v(json!({"token": lorem(100_000), "event": "e", "distinct_id": m}))),
        case("token_nul", Refused(401), |m| v(json!({"token": format!("{t}\u{0}"), "event": "e", "distinct_id": m}))),
        case("token_number", Refused(400), |m| v(json!({"token": 5, "event": "e", "distinct_id": m}))),
        case("token_object", Refused(400), |m| v(json!({"api_key": {"t": t}, "event": "e", "distinct_id": m}))),
        case("token_sql", Refused(401), |m| v(json!({"token": "' OR 1=1 --", "event": "e", "distinct_id": m}))),
        // Batches.
        case("batch_object", Refused(400), |m| v(json!({"api_key": t, "batch": base(t, m)}))).at("/batch"),
        case("batch_string", Refused(400), |m| v(json!({"api_key": t, "batch": m}))).at("/batch"),
        case("batch_null", Refused(400), |m| v(json!({"api_key": t, "batch": null, "m": m}))).at("/batch"),
        case("batch_empty", Refused(400), |m| v(json!({"api_key": t, "batch": [], "m": m}))).at("/batch"),
        case("batch_scalar_element", Refused(400), |m| v(json!({"api_key": t, "batch": [base(t, m), 1]}))).at("/batch"),
        case("batch_one_bad_among_good", Refused(400), |m| {
            v(json!({"api_key": t, "batch": [base(t, m), {"event": "x", "properties": {"case": m}}]}))
        })
        .at("/batch"),
        case("batch_10k_events", Stored(10_000, |_| Ok(())), |m| {
            let events: Vec<Value> =
                (0..10_000).map(|i| json!({"event": "bulk", "distinct_id": format!("{m}{i}")})).collect();
            v(json!({"api_key": t, "batch": events}))
        })
        .at("/batch"),
        // Paths, methods and headers.
        case("capture_path_gzip", STORED, |m| gzip(&with(t, m, json!({})))).at("/capture/"),
        case("i_v0_e_path_batch", STORED, |m| v(json!({"api_key": t, "batch": [base(t, m)]}))).at("/i/v0/e/"),
        case("unknown_path", Refused(404), |m| with(t, m, json!({}))).at("/nope"),
        case("get_without_body", Refused(400), |_| vec![]).method("GET"),
        case("xff_garbage", Stored(1, |r| want(r, "/properties/$ip", json!("127.0.0.1"))), |m| with(t, m, json!({})))
            .header("x-forwarded-for", "not-an-ip, <script>"),
        case("xff_chain", Stored(1, |r| want(r, "/properties/$ip", json!("203.0.113.9"))), |m| with(t, m, json!({})))
            .header("x-forwarded-for", " 203.0.113.9 , 10.0.0.1"),
        case("xff_huge", Stored(1, |r| want(r, "/properties/$ip", json!("127.0.0.1"))), |m| with(t, m, json!({})))
            .header("x-forwarded-for", "9".repeat(8000)),
        case("origin_huge", STORED, |m| with(t, m, json!({}))).header("origin", format!("http://{}", "o".repeat(8000))),
    ]
}

/// A request written byte for byte on a TCP connection, for what an HTTP
/// client library will not send: its expected answer is always a 4xx status
/// line (a dropped connection or a 5xx is a failure).
struct Wire {
    name: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
}

fn wire_cases(t: &str) -> Vec<Wire> {
    let w = |name: &'static str, code: u16, build: &dyn Fn(&str, String) -> String| {
        let body = String::from_utf8(with(t, &mark(name), json!({}))).unwrap();
        Wire { name, bytes: build(&mark(name), body).into_bytes(), expect: Refused(code) }
    };
    vec![
        w("wire_not_http", 400, &|m, _| format!("HELLO {m}\r\n\r\n")),
        w("wire_content_length_short", 400, &|_, b| {
            format!(
                "POST /e HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5\r\nconnection: close\r\n\r\n{b}"
            )
        }),
        w("wire_content_length_garbage", 400, &|_, b| {
            format!("POST /e HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\nconnection: close\r\n\r\n{b}")
        }),
        w("wire_header_too_large", 431, &|_, b| {
            format!(
                "POST /e HTTP/1.1\r\nhost: x\r\nx-junk: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
                "j".repeat(1 << 20),
                b.len()
            )
        }),
        w("wire_nul_in_header", 400, &|_, b| {
            format!(
                "POST /e HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 1.2.3.4\0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
                b.len()
            )
        }),
        w("wire_bad_chunked", 400, &|_, b| {
            format!(
                "POST /e HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\nzz\r\n{b}\r\n0\r\n\r\n"
            )
        }),
    ]
}

/// Writes `bytes` and reads the status of the answer; None when the connection closed without one.
async fn send_wire(addr: &str, bytes: &[u8]) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.ok()?;
    // The server may answer (and close) before reading it all, as it should for a huge header.
    let _ = conn.write_all(bytes).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer)).await;
    let line = String::from_utf8_lossy(&answer);
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

struct Raw {
    name: &'static str,
    /// The messages, put into the topic one after the other.
    payloads: Vec<Vec<u8>>,
    expect: Expect,
}

/// A raw case in the capture format: `outer` replaces the message's fields,
/// `data` the event's (`data` as sent is its JSON text).
fn raw(name: &'static str, expect: Expect, build: impl FnOnce(&str) -> Vec<u8>) -> Raw {
    Raw { name, payloads: vec![build(&mark(name))], expect }
}

fn message(token: &str, m: &str, outer: Value, data: Value) -> Value {
    let mut event = json!({"event": "hostile", "properties": {"case": m}});
    event.as_object_mut().unwrap().extend(data.as_object().unwrap().clone());
    let now = Utc::now().to_rfc3339();
    let mut msg = json!({"uuid": uuid::Uuid::now_v7().to_string(), "distinct_id": m, "ip": "10.0.0.1",
                         "site_url": "http://x", "data": event.to_string(), "token": token, "now": now, "sent_at": null});
    msg.as_object_mut().unwrap().extend(outer.as_object().unwrap().clone());
    msg
}

fn msg(token: &str, m: &str, outer: Value, data: Value) -> Vec<u8> {
    message(token, m, outer, data).to_string().into_bytes()
}

/// A message whose `data` is the given text, not an object.
fn msg_data_text(token: &str, m: &str, data: String) -> Vec<u8> {
    let mut v = message(token, m, json!({}), json!({}));
    v["data"] = json!(data);
    v.to_string().into_bytes()
}

/// The corpus put straight into the consumption topic.
fn raw_cases(t: &str) -> Vec<Raw> {
    vec![
        raw("raw_not_json", Dead("malformed_message"), |m| format!("{{not json {m}").into_bytes()),
        raw("raw_invalid_utf8", Dead("invalid_utf8"), |m| {
            let mut b = msg(t, m, json!({}), json!({}));
            b.extend([0xff, 0xfe]);
            b
        }),
        raw("raw_empty", Dead("malformed_message"), |_| vec![]),
        raw("raw_json_array", Dead("malformed_message"), |m| json!([m]).to_string().into_bytes()),
        raw("raw_json_null", Dead("malformed_message"), |_| b"null".to_vec()),
        raw("raw_outer_deep_100k", Dead("malformed_message"), |_| "[".repeat(100_000).into_bytes()),
        raw("raw_missing_token", Dead("malformed_message"), |m| {
            let mut v = message(t, m, json!({}), json!({}));
            v.as_object_mut().unwrap().remove("token");
            v.to_string().into_bytes()
        }),
        raw("raw_team_id_instead_of_token", Dead("malformed_message"), |m| {
            let mut v = message(t, m, json!({"team_id": 1}), json!({}));
            v.as_object_mut().unwrap().remove("token");
            v.to_string().into_bytes()
        }),
        raw("raw_missing_data", Dead("malformed_message"), |m| {
            let mut v = message(t, m, json!({}), json!({}));
            v.as_object_mut().unwrap().remove("data");
            v.to_string().into_bytes()
        }),
        raw("raw_data_object_not_text", Dead("malformed_message"), |m| {
            msg(t, m, json!({"data": {"event": "e"}}), json!({}))
        }),
        raw("raw_distinct_id_number", Dead("malformed_message"), |m| {
            msg(t, m, json!({"distinct_id": 5, "site_url": m}), json!({}))
        }),
        raw("raw_ip_number", Dead("malformed_message"), |m| msg(t, m, json!({"ip": 10}), json!({}))),
        raw("raw_sent_at_number", Dead("malformed_message"), |m| msg(t, m, json!({"sent_at": 10}), json!({}))),
        raw("raw_lone_surrogate_outer", Dead("malformed_message"), |m| {
            let text = String::from_utf8(msg(t, m, json!({"site_url": "SURROGATE"}), json!({}))).unwrap();
            text.replace("SURROGATE", "\\ud800").into_bytes()
        }),
        raw("raw_data_not_json", Dead("malformed_data"), |m| msg_data_text(t, m, format!("{{nope {m}"))),
        raw("raw_data_array", Dead("malformed_data"), |m| msg_data_text(t, m, json!([m]).to_string())),
        raw("raw_data_deep_100k", Dead("malformed_data"), |m| msg_data_text(t, m, "[".repeat(100_000))),
        raw("raw_data_lone_surrogate", Dead("malformed_data"), |m| {
            msg_data_text(t, m, format!(r#"{{"event": "\ud800", "properties": {{"case": "{m}"}}}}"#))
        }),
        raw("raw_data_nan", Dead("malformed_data"), |m| {
            msg_data_text(t, m, format!(r#"{{"event": "e", "properties": {{"case": "{m}", "x": NaN}}}}"#))
        }),
        raw("raw_no_event_name", Dead("missing_event_name"), |m| {
            msg_data_text(t, m, json!({"properties": {"case": m}}).to_string())
        }),
        raw("raw_event_null", Dead("missing_event_name"), |m| msg(t, m, json!({}), json!({"event": null}))),
        raw("raw_event_number", Stored(1, |r| want(r, "/event", json!("42"))), |m| {
            msg(t, m, json!({}), json!({"event": 42}))
        }),
        raw("raw_event_object", Stored(1, |r| want(r, "/event", json!(r#"{"a":1}"#))), |m| {
            msg(t, m, json!({}), json!({"event": {"a": 1}}))
        }),
        raw("raw_distinct_id_empty", Dead("missing_distinct_id"), |m| {
            msg(t, m, json!({"distinct_id": "", "site_url": m}), json!({}))
        }),
        raw("raw_distinct_id_whitespace", Dead("missing_distinct_id"), |m| {
            msg(t, m, json!({"distinct_id": "\t \n", "site_url": m}), json!({}))
        }),
        raw(
            "raw_distinct_id_nul",
            Stored(1, |r| want(r, "/distinct_id", json!("hx:raw_distinct_id_nul:\u{fffd}"))),
            |m| msg(t, m, json!({"distinct_id": format!("{m}\u{0}")}), json!({})),
        ),
        raw(
            "raw_distinct_id_huge",
            Stored(1, |r| want(r, "/distinct_id", json!(format!("hx:raw_distinct_id_huge:{}", "x".repeat(200 - 24))))),
            |m| msg(t, m, json!({"distinct_id": format!("{m}{}", "x".repeat(2000))}), json!({})),
        ),
        raw("raw_uuid_invalid", Dead("invalid_uuid"), |m| msg(t, m, json!({"uuid": "not-a-uuid"}), json!({}))),
        raw("raw_uuid_empty", Dead("invalid_uuid"), |m| msg(t, m, json!({"uuid": ""}), json!({}))),
        raw("raw_uuid_nul", Dead("invalid_uuid"), |m| msg(t, m, json!({"uuid": "\u{0}"}), json!({}))),
        Raw {
            name: "raw_uuid_duplicate",
            payloads: {
                let m = mark("raw_uuid_duplicate");
                let one = msg(t, &m, json!({"uuid": "0190a1b2-c3d4-7e5f-8a9b-000000000001"}), json!({}));
                vec![one.clone(), one]
            },
            expect: Stored(1, |r| want(r, "/uuid", json!("0190a1b2-c3d4-7e5f-8a9b-000000000001"))),
        },
        raw("raw_token_unknown", Dead("unknown_token"), |m| msg(t, m, json!({"token": "phc_nobody"}), json!({}))),
        raw("raw_token_empty", Dead("unknown_token"), |m| msg(t, m, json!({"token": ""}), json!({}))),
        raw("raw_token_nul", Dead("unknown_token"), |m| msg(t, m, json!({"token": format!("{t}\u{0}")}), json!({}))),
        raw("raw_token_huge", Dead("unknown_token"), |m| msg(t, m, json!({"token": "t".repeat(500_000)}), json!({}))),
        raw("raw_now_garbage", Stored(1, near_now), |m| msg(t, m, json!({"now": "\u{0}soon"}), json!({}))),
        raw("raw_now_year_9999", Stored(1, near_now), |m| msg(t, m, json!({"now": "9999-12-31T23:59:59Z"}), json!({}))),
        raw("raw_offset_huge", Stored(1, near_now), |m| {
            msg(t, m, json!({}), json!({"offset": 1_000_000_000_000_000_000i64}))
        }),
        raw("raw_offset_negative_huge", Stored(1, near_now), |m| {
            msg(t, m, json!({}), json!({"offset": -1_000_000_000_000_000_000i64}))
        }),
        raw("raw_offset_i64_min", Stored(1, near_now), |m| msg(t, m, json!({}), json!({"offset": i64::MIN}))),
        raw("raw_timestamp_year_0", Stored(1, near_now), |m| {
            msg(t, m, json!({}), json!({"timestamp": "0000-01-01T00:00:00Z"}))
        }),
        raw("raw_timestamp_year_9999_with_offset", Stored(1, near_now), |m| {
            msg(t, m, json!({}), json!({"timestamp": "9999-12-31T23:59:59Z", "offset": -1}))
        }),
        raw("raw_sent_at_year_9999", Stored(1, near_now), |m| {
            msg(t, m, json!({"sent_at": "9999-12-31T23:59:59Z"}), json!({"timestamp": "2024-05-01T00:00:00Z"}))
        }),
        raw("raw_oversized", per(Dead("oversized_event"), Expect::Undeliverable), |m| {
            msg(t, m, json!({}), json!({"properties": {"case": m, "b": "x".repeat(1_100_000)}}))
        }),
        raw("raw_nul_everywhere", Stored(1, |r| all(&[no_nul(r), want(r, "/event", json!("e\u{fffd}"))])), |m| {
            msg(
                t,
                m,
                json!({"distinct_id": format!("{m}\u{0}all"), "ip": "\u{0}"}),
                json!({"event": "e\u{0}",
                "properties": {"case": m, "\u{0}": "\u{0}", "l": ["\u{0}"], "$set": {"\u{0}": "\u{0}"}},
                "$set_once": {"k\u{0}": 1}}),
            )
        }),
        raw("raw_properties_deep_100", STORED, |m| {
            let deep: Value = serde_json::from_str(&nested(100)).unwrap();
            msg(t, m, json!({}), json!({"properties": {"case": m, "d": deep}}))
        }),
        raw("raw_extra_fields", STORED, |m| {
            msg(t, m, json!({"extra": {"x": [1]}, "team_id": "nope"}), json!({"more": 1}))
        }),
        raw("raw_groups_not_object", STORED, |m| {
            msg(t, m, json!({}), json!({"properties": {"case": m, "$groups": [1]}}))
        }),
        raw("raw_identify_odd", Stored(1, no_nul), |m| {
            msg(
                t,
                m,
                json!({}),
                json!({"event": "$identify", "properties": {"case": m, "$anon_distinct_id": "\u{0}"}, "$set": "x"}),
            )
        }),
        raw("raw_properties_string", STORED, |m| {
            msg(t, m, json!({}), json!({"properties": "x", "$set": [1], "$set_once": null}))
        }),
    ]
}

/// What a deployment shows after the run: stored events and dead letters (reason, payload).
struct Observed {
    rows: Vec<(String, Value)>,
    letters: Vec<(String, String)>,
}

trait Target {
    fn production(&self) -> bool;
    async fn observe(&self) -> Observed;
}

struct Embedded {
    dir: std::path::PathBuf,
}

impl Target for Embedded {
    fn production(&self) -> bool {
        false
    }
    async fn observe(&self) -> Observed {
        let out = crate::util::embedded::cli(&self.dir, &["events", "list", "--json", "--limit", "1000000"]);
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", self.dir.join("ingestion-log.sqlite3").display()))
            .await
            .unwrap();
        let letters: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT reason, payload FROM dead_letters").fetch_all(&pool).await.unwrap();
        pool.close().await;
        Observed { rows: rows_of(&out), letters: lossy(letters) }
    }
}

struct Production {
    d: Deployment,
    dlq: crate::util::production::TopicReader,
}

impl Target for Production {
    fn production(&self) -> bool {
        true
    }
    async fn observe(&self) -> Observed {
        let out = self.d.cli(&["events", "list", "--json", "--limit", "1000000"]);
        let letters = self
            .dlq
            .read()
            .into_iter()
            .map(|m| (m.headers.get("reason").cloned().unwrap_or_default(), m.payload))
            .collect();
        Observed { rows: rows_of(&out), letters: lossy(letters) }
    }
}

fn rows_of(out: &str) -> Vec<(String, Value)> {
    out.lines().map(|l| (l.to_string(), serde_json::from_str(l).unwrap())).collect()
}

fn lossy(letters: Vec<(String, Vec<u8>)>) -> Vec<(String, String)> {
    letters.into_iter().map(|(r, p)| (r, String::from_utf8_lossy(&p).into_owned())).collect()
}

/// One case's outcome so far: the HTTP status it got (None for raw cases).
struct Sent<'a> {
    name: &'static str,
    status: Option<u16>,
    expect: &'a Expect,
    /// A raw case's messages, as its dead letters carry them (some, like an
    /// empty message, have no room for a marker).
    raw: Vec<String>,
}

impl Sent<'_> {
    fn letters<'s>(&self, seen: &'s Observed) -> Vec<&'s str> {
        let m = mark(self.name);
        let ours = |p: &String| if self.raw.is_empty() { p.contains(&m) } else { self.raw.contains(p) };
        seen.letters.iter().filter(|(_, p)| ours(p)).map(|(r, _)| r.as_str()).collect()
    }
}

fn resolve(expect: &Expect, production: bool) -> &Expect {
    match expect {
        Expect::Per(e, p) => resolve(if production { p } else { e }, production),
        e => e,
    }
}

/// What is wrong with one case, given what the deployment shows; None when it is as expected.
fn judge(sent: &Sent, seen: &Observed, production: bool) -> Option<String> {
    let m = mark(sent.name);
    let rows: Vec<&Value> = seen.rows.iter().filter(|(text, _)| text.contains(&m)).map(|(_, v)| v).collect();
    let letters = sent.letters(seen);
    let got = format!(
        "got status {}, {} rows{}, dead letters {letters:?}",
        sent.status.map_or("-".into(), |s| s.to_string()),
        rows.len(),
        rows.first().map_or(String::new(), |r| format!(" (first: {})", short(r)))
    );
    let accepted = sent.status.is_none_or(|s| s == 200);
    match resolve(sent.expect, production) {
        Refused(code) => (sent.status != Some(*code) || !rows.is_empty() || !letters.is_empty())
            .then(|| format!("want {code} and nothing stored; {got}")),
        Dead(reason) => (!accepted || !rows.is_empty() || letters != [*reason])
            .then(|| format!("want 200 and one dead letter `{reason}`; {got}")),
        Stored(n, check) => {
            if !accepted || rows.len() != *n || !letters.is_empty() {
                return Some(format!("want 200 and {n} stored rows; {got}"));
            }
            let bad: Vec<String> = rows.iter().filter_map(|r| check(r).err()).take(1).collect();
            (!bad.is_empty()).then(|| format!("stored, but {}", bad[0]))
        }
        Expect::Undeliverable => (sent.status != Some(0) || !rows.is_empty() || !letters.is_empty())
            .then(|| format!("want the append refused and nothing stored; {got}")),
        Expect::Per(..) => unreachable!("resolved above"),
    }
}

/// Whether everything expected has shown up (rows and dead letters), so waiting can stop.
fn complete(sent: &[Sent], follow_ups: &[String], seen: &Observed, production: bool) -> bool {
    let count = |m: &str| seen.rows.iter().filter(|(t, _)| t.contains(m)).count();
    follow_ups.iter().all(|f| count(f) >= 1)
        && sent.iter().all(|s| {
            let accepted = s.status.is_none_or(|c| c == 200);
            match resolve(s.expect, production) {
                Stored(n, _) if accepted => count(&mark(s.name)) >= *n,
                Dead(_) if accepted => !s.letters(seen).is_empty(),
                _ => true,
            }
        })
}

/// Sends the valid event that follows case `name`: its marker, once accepted.
async fn follow_up(client: &reqwest::Client, server: &Server, token: &str, name: &str) -> Result<String, String> {
    let f = follow_up_mark(name);
    let body = json!({"token": token, "event": "follow_up", "distinct_id": f});
    let r = client.post(format!("http://{}/e", server.capture)).body(body.to_string()).send().await;
    match r.map(|r| r.status().as_u16()) {
        Ok(200) => Ok(f),
        other => Err(format!("{name}: the valid event after it got {other:?}")),
    }
}

async fn health(client: &reqwest::Client, server: &Server) -> Result<(), String> {
    match client.get(format!("http://{}/_health", server.addr)).send().await {
        Ok(r) if r.status() == 200 => Ok(()),
        Ok(r) => Err(format!("/_health answered {}: {}", r.status(), r.text().await.unwrap_or_default())),
        Err(e) => Err(format!("/_health did not answer: {e}")),
    }
}

/// Sends every case (HTTP, then raw), each followed by a valid event, waits
/// once, and fails with every case that went wrong.
async fn run_corpus(
    target: impl Target,
    server: &mut Server,
    raw_into: &dyn Producer,
    token: &str,
    log: &std::path::Path,
) {
    let started = Instant::now();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let http = http_cases(token);
    let raws = raw_cases(token);
    let mut names: Vec<&str> = http.iter().map(|c| c.name).chain(raws.iter().map(|c| c.name)).collect();
    names.extend(wire_cases(token).iter().map(|c| c.name));
    names.sort();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "case names are unique (they are the markers)");

    let mut problems: Vec<String> = Vec::new();
    let mut sent = Vec::new();
    let mut follow_ups = Vec::new();
    for c in &http {
        let method = reqwest::Method::from_bytes(c.method.as_bytes()).unwrap();
        let mut req = client.request(method, format!("http://{}{}", server.capture, c.path)).body(c.body.clone());
        if let Some(ct) = c.content_type {
            req = req.header("content-type", ct);
        }
        for (k, v) in &c.headers {
            req = req.header(*k, v);
        }
        let status = match req.send().await {
            Ok(r) => Some(r.status().as_u16()),
            Err(e) => {
                problems.push(format!("{}: no answer ({e})", c.name));
                Some(0)
            }
        };
        sent.push(Sent { name: c.name, status, expect: &c.expect, raw: vec![] });
        match follow_up(&client, server, token, c.name).await {
            Ok(f) => follow_ups.push(f),
            Err(e) => problems.push(e),
        }
        if let Err(e) = health(&client, server).await {
            problems.push(format!("{}: {e}", c.name));
        }
    }
    let wires = wire_cases(token);
    for c in &wires {
        let status = send_wire(&server.capture, &c.bytes).await;
        if status.is_none() {
            problems.push(format!("{}: the connection closed without an answer", c.name));
        }
        sent.push(Sent { name: c.name, status: Some(status.unwrap_or(0)), expect: &c.expect, raw: vec![] });
        match follow_up(&client, server, token, c.name).await {
            Ok(f) => follow_ups.push(f),
            Err(e) => problems.push(e),
        }
        if let Err(e) = health(&client, server).await {
            problems.push(format!("{}: {e}", c.name));
        }
    }
    for c in &raws {
        // One append per case: a message the broker refuses must not take the others with it.
        let messages: Vec<(String, Vec<u8>)> = c.payloads.iter().map(|p| ("hostile".to_string(), p.clone())).collect();
        let status = raw_into.append(&messages).await.err().map(|_| 0);
        let f = follow_up_mark(c.name);
        let ok = message(token, &f, json!({}), json!({"event": "follow_up"}));
        raw_into
            .append(&[(format!("{token}:{f}"), ok.to_string().into_bytes())])
            .await
            .expect("a valid message is appended");
        follow_ups.push(f);
        let raw = c.payloads.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
        sent.push(Sent { name: c.name, status, expect: &c.expect, raw });
    }
    let http_time = started.elapsed();

    // Wait once, for everything expected; a stalled pipeline shows as what is missing at the deadline.
    let within = Duration::from_secs(if target.production() { 90 } else { 60 });
    let seen = settle(within, async || {
        let seen = target.observe().await;
        if complete(&sent, &follow_ups, &seen, target.production()) { Ok(seen) } else { Err(seen) }
    })
    .await
    .unwrap_or_else(|incomplete| incomplete);
    // /_health may truthfully be red for a while on a loaded machine (a backlog such as
    // batch_10k_events slower than HEALTHCHECK_MAX_STALE_SECONDS); a stalled pipeline never recovers.
    let mut healthy = health(&client, server).await;
    let recover_by = std::time::Instant::now() + Duration::from_secs(60);
    while healthy.is_err() && std::time::Instant::now() < recover_by {
        tokio::time::sleep(Duration::from_millis(500)).await;
        healthy = health(&client, server).await;
    }
    if let Err(e) = healthy {
        problems.push(format!("after the run, for 60 s: {e}"));
    }
    if let Some(status) = server.child.try_wait().unwrap() {
        problems.push(format!("phs serve exited: {status}"));
    }
    for f in &follow_ups {
        let stored = seen.rows.iter().filter(|(t, _)| t.contains(f.as_str())).count();
        if stored != 1 {
            problems.push(format!("{f} (the valid event after a case) is stored {stored} times, want once"));
        }
    }
    let failed: Vec<String> =
        sent.iter().filter_map(|s| judge(s, &seen, target.production()).map(|p| format!("{}: {p}", s.name))).collect();
    eprintln!(
        "{} cases ({} HTTP, {} on the wire, {} raw), sent in {http_time:?}, judged after {:?}: {} as expected",
        sent.len(),
        http.len(),
        wires.len(),
        raws.len(),
        started.elapsed(),
        sent.len() - failed.len()
    );
    problems.extend(failed);
    if !problems.is_empty() {
        // The server's warnings and errors say why (a panic, a refused write, a retry loop).
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let noteworthy: Vec<&str> =
            text.lines().filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("panicked")).collect();
        let tail = noteworthy[noteworthy.len().saturating_sub(30)..].join("\n");
        panic!(
            "{} problems:\n{}\n\nthe server's last warnings and errors:\n{tail}",
            problems.len(),
            problems.join("\n")
        );
    }
}

/// Small enough that a stuck batch shows on /_health during the run.
const STALE_SECONDS: &str = "20";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_survives_the_hostile_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let token = crate::util::embedded::cli(&d, &["teams", "create", "hostile"]).trim().to_string();
    let env = [("PHS_DATA_DIR", d.display().to_string()), ("HEALTHCHECK_MAX_STALE_SECONDS", STALE_SECONDS.into())];
    // A log file, not a pipe: nobody reads a pipe, and a full one would block the server.
    let log_file = d.join("serve.log");
    let mut server = start_logged(&env, &log_file);
    wait_healthy(&mut server);
    let log = phs::pipeline::source::local_log::LocalLog::open(&d).await.unwrap();
    run_corpus(Embedded { dir: d.clone() }, &mut server, &log, &token, &log_file).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_survives_the_hostile_corpus() {
    let d = Deployment::new().await;
    let token = d.cli(&["teams", "create", "hostile"]).trim().to_string();
    let mut env = d.env.clone();
    env.push(("HEALTHCHECK_MAX_STALE_SECONDS", STALE_SECONDS.into()));
    let log_file = d.dir.path().join("serve.log");
    let mut server = start_logged(&env, &log_file);
    wait_healthy(&mut server);
    let producer = d.producer();
    let dlq = d.read_topic("events_plugin_ingestion_dlq");
    run_corpus(Production { d, dlq }, &mut server, &producer, &token, &log_file).await;
}

/// Writes this corpus, and the SDK requests recorded in
/// ../shared/capture-requests, as seed inputs for the fuzz targets into
/// `$PHS_FUZZ_SEEDS/<target>/` (scripts/fuzz runs it before fuzzing, so
/// neither is copied into the repository). capture_parse's input is three
/// lines (content type or `-`, query, Origin) and the body; normalize's a raw
/// message; lua_json's a JSON value.
#[test]
#[ignore = "writes fuzz seeds; scripts/fuzz runs it"]
fn fuzz_seeds() {
    let root = std::path::PathBuf::from(std::env::var("PHS_FUZZ_SEEDS").expect("PHS_FUZZ_SEEDS names the seed folder"));
    let write = |target: &str, name: &str, bytes: &[u8]| {
        // libFuzzer would cut larger seeds to its -max_len anyway.
        if bytes.len() <= 256 * 1024 {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    };
    let capture_input = |content_type: Option<&str>, path: &str, origin: Option<&str>, body: &[u8]| {
        let query = path.split_once('?').map_or("", |(_, q)| q);
        let mut input =
            format!("{}\n{query}\n{}\n", content_type.unwrap_or("-"), origin.unwrap_or("http://h")).into_bytes();
        input.extend_from_slice(body);
        input
    };
    let token = "phc_seed";
    for c in http_cases(token) {
        let origin = c.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("origin")).map(|(_, v)| v.as_str());
        write("capture_parse", c.name, &capture_input(c.content_type, c.path, origin, &c.body));
        if serde_json::from_slice::<Value>(&c.body).is_ok() {
            write("lua_json", c.name, &c.body);
        }
    }
    for c in raw_cases(token) {
        for (i, p) in c.payloads.iter().enumerate() {
            write("normalize", &format!("{}-{i}", c.name), p);
        }
    }
    let dump = std::fs::read_to_string("../shared/capture-requests/requests_dump.jsonl")
        .expect("../shared/capture-requests/requests_dump.jsonl is missing: it sits beside the project");
    let requests = dump.lines().filter(|l| !l.starts_with("###") && !l.trim().is_empty());
    for (i, line) in requests.enumerate() {
        let r: Value = serde_json::from_str(line).unwrap();
        let body = base64::engine::general_purpose::STANDARD.decode(r["body"].as_str().unwrap()).unwrap();
        let input = capture_input(r["content_type"].as_str(), r["path"].as_str().unwrap(), None, &body);
        write("capture_parse", &format!("sdk-{i}"), &input);
        for (j, out) in r["output"].as_array().into_iter().flatten().enumerate() {
            write("normalize", &format!("sdk-{i}-{j}"), out.to_string().as_bytes());
            write("lua_json", &format!("sdk-{i}-{j}"), out["data"].as_str().unwrap().as_bytes());
        }
    }
}
