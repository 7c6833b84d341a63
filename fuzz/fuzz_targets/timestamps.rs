//! Fuzz target: the event time (`prepare::resolve_timestamp` and the `now`
//! check in `prepare::prepare`), with structured input so that most cases
//! are well-formed RFC 3339 times at the edges of every range (years 0 and
//! 9999, offsets of ±i64, leap seconds, odd zones) rather than text
//! chrono refuses at once.
//!
//! Invariants beyond "no panic" (chrono arithmetic panics on overflow):
//! the time lies between the epoch and 23 h after `now`; with nothing to go
//! by it is `now`; a timestamp alone within range is taken as is; and
//! `$ignore_sent_at` gives what the event without `sent_at` gives.
#![no_main]

use chrono::{DateTime, Duration, TimeZone, Utc};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use phs::pipeline::prepare;
use serde_json::{Map, Value, json};

#[derive(Arbitrary, Debug)]
enum Time {
    Missing,
    Raw(String),
    Number(f64),
    Parts { year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8, micros: u32, zone_minutes: i16 },
}

impl Time {
    fn json(&self) -> Option<Value> {
        match self {
            Time::Missing => None,
            Time::Raw(s) => Some(json!(s)),
            Time::Number(n) => Some(json!(n)),
            Time::Parts { year, month, day, hour, minute, second, micros, zone_minutes } => {
                let zone = match zone_minutes {
                    0 => "Z".to_string(),
                    z => format!(
                        "{}{:02}:{:02}",
                        if *z < 0 { '-' } else { '+' },
                        z.unsigned_abs() / 60 % 100,
                        z.unsigned_abs() % 60
                    ),
                };
                Some(json!(format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{zone}",
                    year % 10000,
                    month % 13,
                    day % 32,
                    hour % 25,
                    minute % 60,
                    second % 61,
                    micros % 1_000_000
                )))
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    timestamp: Time,
    sent_at: Time,
    now: Time,
    offset: Option<i64>,
    ignore_sent_at: Option<bool>,
    /// Seconds from 2023-11-14 that capture's clock reads (within ±100 years).
    created_at: i32,
}

fn event(input: &Input, with_sent_at: bool) -> Map<String, Value> {
    let mut e = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            e.insert(k.into(), v);
        }
    };
    put("timestamp", input.timestamp.json());
    put("sent_at", if with_sent_at { input.sent_at.json() } else { None });
    put("now", input.now.json());
    put("offset", input.offset.map(Value::from));
    put("properties", input.ignore_sent_at.map(|b| json!({"$ignore_sent_at": b})));
    e
}

fuzz_target!(|input: Input| {
    let created_at = Utc.timestamp_opt(1_700_000_000 + i64::from(input.created_at) % 3_155_760_000, 0).single();
    let Some(created_at) = created_at.filter(|t| *t >= DateTime::UNIX_EPOCH) else { return };
    let e = event(&input, true);

    let t = prepare::resolve_timestamp(&e, created_at);
    assert!(t >= DateTime::UNIX_EPOCH && t <= created_at + Duration::hours(23), "{t} for {e:?}");
    if e.get("timestamp").is_none() && e.get("offset").is_none() {
        assert_eq!(t, created_at, "nothing to go by but now");
    }
    if let (Some(Value::String(s)), None, None) = (e.get("timestamp"), e.get("sent_at"), e.get("offset"))
        && let Ok(ts) = DateTime::parse_from_rfc3339(s)
    {
        let ts = ts.with_timezone(&Utc);
        if ts >= DateTime::UNIX_EPOCH && ts <= created_at + Duration::hours(23) {
            assert_eq!(t, ts, "a timestamp alone, within range, is taken as is");
        }
    }
    if input.ignore_sent_at == Some(true) {
        assert_eq!(t, prepare::resolve_timestamp(&event(&input, false), created_at), "$ignore_sent_at");
    }

    let row = prepare::prepare(e, 1, false, created_at);
    assert!(row.timestamp >= DateTime::UNIX_EPOCH && row.timestamp <= created_at + Duration::hours(46));
    assert_eq!(row.created_at, created_at);
});
