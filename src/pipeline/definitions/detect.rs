//! The type PostHog's later versions give a property from the first value
//! seen: String, Numeric, Boolean or DateTime (or none, for null, lists and
//! objects). The type sticks to the definition, so the rules lean towards
//! what the key's name says about its later values.

use std::borrow::Cow;

use chrono::DateTime;
use serde_json::Value;

/// Keys that always hold text, whatever their first value looks like:
/// campaign tags that can look numeric, and flag values and survey answers,
/// whose first value is often a boolean.
const STRING_PREFIXES: [&str; 4] = ["utm_", "$initial_utm_", "$feature/", "$survey_response"];

/// Words in a key that make a date-like or epoch-like value a DateTime.
const TIME_WORDS: [&str; 6] = ["time", "date", "_at", "-at", "createdat", "updatedat"];

/// Epoch seconds from further back than this (about six months) are taken
/// for plain numbers rather than times.
const RECENT_SECONDS: i64 = 15_768_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyType {
    String,
    Numeric,
    Boolean,
    DateTime,
}

impl PropertyType {
    /// PostHog's `property_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            PropertyType::String => "String",
            PropertyType::Numeric => "Numeric",
            PropertyType::Boolean => "Boolean",
            PropertyType::DateTime => "DateTime",
        }
    }
}

/// The type of property `key` whose first value is `value`, at `now` (epoch seconds).
pub fn detect(key: &str, value: &Value, now: i64) -> Option<PropertyType> {
    // Real keys are nearly all lowercase ASCII already: no allocation for them.
    let key: Cow<str> = if key.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
        Cow::Owned(key.to_lowercase())
    } else {
        Cow::Borrowed(key)
    };
    if STRING_PREFIXES.iter().any(|p| key.starts_with(p)) || key == "$feature_flag_response" {
        return Some(PropertyType::String);
    }
    let timeish = || TIME_WORDS.iter().any(|w| key.contains(w));
    match value {
        Value::String(s) => {
            let s = s.trim();
            Some(if matches!(s, "true" | "false" | "TRUE" | "FALSE") {
                PropertyType::Boolean
            } else if looks_like_date(s) {
                PropertyType::DateTime
            } else {
                PropertyType::String
            })
        }
        Value::Number(n) => Some(match n.as_u64() {
            Some(secs) if timeish() && secs >= now.saturating_sub(RECENT_SECONDS).max(0) as u64 => {
                PropertyType::DateTime
            }
            _ => PropertyType::Numeric,
        }),
        Value::Bool(_) => Some(PropertyType::Boolean),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// RFC 3339, RFC 2822, or a date as year-month-day or month-day-year (with
/// `-` or `/`), optionally followed by a time of day and anything after it.
fn looks_like_date(s: &str) -> bool {
    if DateTime::parse_from_rfc3339(s).is_ok() || DateTime::parse_from_rfc2822(s).is_ok() {
        return true;
    }
    let b = s.as_bytes();
    let digit = |i: usize, max: u8| b.get(i).is_some_and(|c| c.is_ascii_digit() && *c <= max);
    let sep = |i: usize| matches!(b.get(i), Some(b'-' | b'/'));
    let year_first = (0..4).all(|i| digit(i, b'9'))
        && sep(4)
        && digit(5, b'2')
        && digit(6, b'9')
        && sep(7)
        && digit(8, b'3')
        && digit(9, b'9');
    let year_last = digit(0, b'2')
        && digit(1, b'9')
        && sep(2)
        && digit(3, b'3')
        && digit(4, b'9')
        && sep(5)
        && (6..10).all(|i| digit(i, b'9'));
    if !(year_first || year_last) {
        return false;
    }
    match b.get(10) {
        None => true,
        Some(b' ' | b'T') => {
            digit(11, b'2')
                && digit(12, b'9')
                && b.get(13) == Some(&b':')
                && digit(14, b'6')
                && digit(15, b'9')
                && b.get(16) == Some(&b':')
                && digit(17, b'6')
                && digit(18, b'9')
        }
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::PropertyType::*;
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_750_000_000;

    fn t(key: &str, value: Value) -> Option<PropertyType> {
        detect(key, &value, NOW)
    }

    #[test]
    fn values_decide_the_type() {
        assert_eq!(t("plan", json!("pro")), Some(String));
        assert_eq!(t("price", json!(9.5)), Some(Numeric));
        assert_eq!(t("count", json!(-3)), Some(Numeric));
        assert_eq!(t("paid", json!(true)), Some(Boolean));
        assert_eq!(t("paid", json!(" FALSE ")), Some(Boolean));
        assert_eq!(t("paid", json!("False")), Some(String), "only the two spellings PostHog takes");
        assert_eq!(t("nothing", json!(null)), None);
        assert_eq!(t("list", json!([1, 2])), None);
        assert_eq!(t("obj", json!({"a": 1})), None);
    }

    #[test]
    fn dates_are_recognised_in_any_key() {
        for s in [
            "2024-03-01",
            "2024/03/01 10:20:30",
            "03-01-2024",
            "2024-03-01T10:20:30.123Z",
            "2024-03-01 10:20:30+02:00",
            "Fri, 01 Mar 2024 10:20:30 +0000",
        ] {
            assert_eq!(t("x", json!(s)), Some(DateTime), "{s}");
        }
        for s in ["2024-3-1", "2024-03-01X", "2024-03-01 10:20", "42-03-01", "2024-13-01x"] {
            assert_eq!(t("x", json!(s)), Some(String), "{s}");
        }
    }

    #[test]
    fn recent_epoch_numbers_are_times_only_in_time_like_keys() {
        assert_eq!(t("created_at", json!(NOW - 60)), Some(DateTime));
        assert_eq!(t("LoginTime", json!(NOW)), Some(DateTime), "keys compare in lowercase");
        assert_eq!(t("created_at", json!(NOW - 2 * RECENT_SECONDS)), Some(Numeric), "too old to be a time");
        assert_eq!(t("user_id", json!(NOW)), Some(Numeric), "the key says nothing of time");
        assert_eq!(t("created_at", json!(1.5)), Some(Numeric));
    }

    #[test]
    fn some_keys_are_always_text() {
        assert_eq!(t("utm_campaign", json!(2024)), Some(String));
        assert_eq!(t("$initial_utm_source", json!(1)), Some(String));
        assert_eq!(t("$feature/new-nav", json!(true)), Some(String));
        assert_eq!(t("$feature_flag_response", json!(false)), Some(String));
        assert_eq!(t("$survey_response_2", json!(5)), Some(String));
    }
}
