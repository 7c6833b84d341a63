//! Which past messages `phs replay` reads: one selector over every origin
//! (a Kafka topic, the embedded local log, the embedded dead-letter table),
//! positioned by offset or time and bounded by an end offset, a time, or
//! the end of the log when replay starts.
//!
//! Readers never join the server's consumer group nor commit anything: a
//! Kafka reader assigns partitions itself and seeks, the local log is read
//! by offset. Filters on the event's contents come later, after decoding.

mod kafka;
mod local;

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::ReplayError;
use crate::config::KafkaSettings;
use crate::pipeline::source::local_log::Table;

/// Where the messages come from.
#[derive(Clone)]
pub enum Origin {
    /// A Kafka topic (name before KAFKA_PREFIX).
    Kafka { settings: Box<KafkaSettings>, topic: String },
    /// The embedded ingestion log in this data directory.
    LocalLog(PathBuf),
    /// The embedded dead-letter table in this data directory.
    DeadLetters(PathBuf),
}

/// The first message to read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Start {
    Offset(i64),
    Beginning,
    Time(DateTime<Utc>),
}

/// Where reading stops. Every bound given applies; with none, the end of
/// the log when replay starts (unless `follow`).
#[derive(Debug, Clone, Default)]
pub struct End {
    /// Last offset to read, inclusive.
    pub offset: Option<i64>,
    /// Stop at the first message after this time.
    pub until: Option<DateTime<Utc>>,
    /// Keep reading new messages until interrupted.
    pub follow: bool,
}

#[derive(Clone)]
pub struct Selector {
    pub origin: Origin,
    pub start: Start,
    pub end: End,
    /// Partitions to read; empty: all.
    pub partitions: Vec<i32>,
}

/// One message read, with what its origin says about it.
#[derive(Debug, Clone)]
pub struct Selected {
    pub partition: i32,
    /// The offset in its partition (a dead letter's id in the table).
    pub offset: i64,
    pub payload: Vec<u8>,
    /// When it was appended (Kafka's message time, the log's append time).
    pub time: Option<DateTime<Utc>>,
    /// For a dead letter: why it was refused, and the detail.
    pub letter: Option<(String, String)>,
}

/// Messages in order within each partition, in batches.
#[async_trait::async_trait]
pub trait Reader: Send + Sync {
    /// The next batch; None when the selection is exhausted.
    async fn next(&mut self) -> Result<Option<Vec<Selected>>, ReplayError>;
    /// How many messages the selection spans (for the progress bar), when known.
    fn total(&self) -> Option<u64>;
}

/// Opens the selection: checks positions against what the origin holds, so
/// a wrong offset or partition is one clear error before anything runs.
pub async fn open(selector: &Selector) -> Result<Box<dyn Reader>, ReplayError> {
    match &selector.origin {
        Origin::Kafka { settings, topic } => Ok(Box::new(kafka::open(settings, topic, selector).await?)),
        Origin::LocalLog(dir) => Ok(Box::new(local::open(dir, Table::Log, selector).await?)),
        Origin::DeadLetters(dir) => Ok(Box::new(local::open(dir, Table::DeadLetters, selector).await?)),
    }
}

/// Reads `--from-timestamp`/`--until`: RFC 3339, or relative to now as
/// `-90s`, `-15m`, `-2h`, `-7d`.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let bad = || format!("`{s}` is neither an RFC 3339 time (2026-12-01T10:00:00Z) nor a relative one (-2h, -30m)");
    let rest = s.strip_prefix('-').ok_or_else(bad)?;
    let (number, unit) = rest.split_at(rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: i64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let back = n.checked_mul(seconds).and_then(chrono::TimeDelta::try_seconds).ok_or_else(bad)?;
    Utc::now().checked_sub_signed(back).ok_or_else(bad)
}

/// A time in the form the local log stores, so the two compare as text.
fn log_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let t = parse_time("2026-12-01T10:00:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-01T10:00:00+00:00");
        let ago = Utc::now() - parse_time("-2h").unwrap();
        assert!((ago.num_seconds() - 7200).abs() < 5, "{ago}");
        assert!((Utc::now() - parse_time("-30m").unwrap()).num_seconds() >= 1799);
        for bad in ["2h", "-2y", "-h", "yesterday", "-99999999999999999d"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert_eq!(log_time(t), "2026-12-01T10:00:00.000Z");
    }
}
