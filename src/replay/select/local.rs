//! Reading the embedded local log, or its dead-letter table, by offset
//! (a dead letter's id). The log has one partition, 0.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::{End, Reader, Selected, Selector, Start, log_time};
use crate::pipeline::source::local_log::LocalLog;
use crate::replay::ReplayError;

const BATCH: usize = 1000;

pub struct LocalReader {
    log: LocalLog,
    letters: bool,
    /// The next offset to read.
    next: i64,
    /// The last offset to read; moves with the log's end when following.
    last: i64,
    end: End,
    total: u64,
    done: bool,
}

pub async fn open(dir: &Path, letters: bool, selector: &Selector) -> Result<LocalReader, ReplayError> {
    if let Some(p) = selector.partitions.iter().find(|p| **p != 0) {
        return Err(ReplayError::Usage(format!("the local log has one partition, 0; there is no partition {p}")));
    }
    let file = dir.join("ingestion-log.sqlite3");
    if !file.exists() {
        return Err(ReplayError::Usage(format!(
            "there is no local log at {} (is PHS_DATA_DIR right? with KAFKA_HOSTS set, replay reads Kafka)",
            file.display()
        )));
    }
    let log = LocalLog::open(dir).await.map_err(|e| ReplayError::Failed(format!("opening the local log: {e}")))?;
    let what = if letters { "dead-letter table" } else { "local log" };
    let range = if letters { log.dead_letters_retained().await } else { log.retained().await };
    let range = range.map_err(|e| ReplayError::Failed(format!("reading the {what}: {e}")))?;
    let Some((first, last)) = range else {
        if let Start::Offset(n) = selector.start {
            return Err(ReplayError::Usage(format!("offset {n} is not in the {what}: it is empty")));
        }
        return Ok(LocalReader { log, letters, next: 1, last: 0, end: selector.end.clone(), total: 0, done: true });
    };
    let next = match selector.start {
        Start::Beginning => first,
        Start::Offset(n) if n < first => {
            let why = if first > 1 { " (older messages were removed by retention)" } else { "" };
            return Err(ReplayError::Usage(format!(
                "offset {n} is older than the retained {what}, which starts at offset {first}{why}"
            )));
        }
        Start::Offset(n) if n > last + 1 => {
            return Err(ReplayError::Usage(format!(
                "offset {n} is past the end of the {what} (its last offset is {last})"
            )));
        }
        Start::Offset(n) => n,
        Start::Time(t) => {
            let at = if letters { log.dead_letter_at(&log_time(t)).await } else { log.offset_at(&log_time(t)).await };
            at.map_err(|e| ReplayError::Failed(format!("reading the {what}: {e}")))?.unwrap_or(last + 1)
        }
    };
    if let Some(to) = selector.end.offset
        && to < next
    {
        return Err(ReplayError::Usage(format!("--to-offset {to} is before the first offset to read ({next})")));
    }
    let last = selector.end.offset.map_or(last, |to| to.min(last));
    let total = (last - next + 1).max(0) as u64;
    Ok(LocalReader { log, letters, next, last, end: selector.end.clone(), total, done: false })
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

#[async_trait::async_trait]
impl Reader for LocalReader {
    async fn next(&mut self) -> Result<Option<Vec<Selected>>, ReplayError> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.end.follow && self.end.offset.is_none() {
                let range =
                    if self.letters { self.log.dead_letters_retained().await } else { self.log.retained().await };
                if let Ok(Some((_, last))) = range {
                    self.last = last;
                }
            }
            let mut out = if self.letters {
                let rows = self.log.read_dead_letters(self.next, self.last, BATCH).await;
                let rows = rows.map_err(|e| ReplayError::Failed(format!("reading the dead letters: {e}")))?;
                rows.into_iter()
                    .map(|l| Selected {
                        partition: 0,
                        offset: l.id,
                        payload: l.payload,
                        time: parse_time(&l.failed_at),
                        letter: Some((l.reason, l.detail)),
                    })
                    .collect::<Vec<_>>()
            } else {
                let rows = self.log.read(self.next, self.last, BATCH).await;
                let rows = rows.map_err(|e| ReplayError::Failed(format!("reading the local log: {e}")))?;
                rows.into_iter()
                    .map(|m| Selected {
                        partition: 0,
                        offset: m.offset,
                        payload: m.payload,
                        time: parse_time(&m.appended_at),
                        letter: None,
                    })
                    .collect()
            };
            if let Some(until) = self.end.until
                && let Some(cut) = out.iter().position(|s| s.time.is_some_and(|t| t > until))
            {
                out.truncate(cut);
                self.done = true;
            }
            match out.last() {
                Some(m) => self.next = m.offset + 1,
                None if self.end.follow && !self.done && self.end.offset.is_none_or(|to| self.next <= to) => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
                None => self.done = true,
            }
            if !self.end.follow && self.next > self.last {
                self.done = true;
            }
            if out.is_empty() {
                continue;
            }
            return Ok(Some(out));
        }
    }

    fn total(&self) -> Option<u64> {
        (!self.end.follow && self.end.until.is_none()).then_some(self.total)
    }
}
