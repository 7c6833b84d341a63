//! Reading the embedded local log, or its dead-letter table, by offset
//! (a dead letter's id). The log has one partition, 0.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::{End, Reader, Selected, Selector, Start, log_time};
use crate::pipeline::source::local_log::{LocalLog, Table};
use crate::replay::ReplayError;

const BATCH: usize = 1000;

pub struct LocalReader {
    log: LocalLog,
    table: Table,
    /// The next offset to read.
    next: i64,
    /// The last offset to read; moves with the log's end when following.
    last: i64,
    end: End,
    total: u64,
    done: bool,
}

pub async fn open(dir: &Path, table: Table, selector: &Selector) -> Result<LocalReader, ReplayError> {
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
    let what = name(table);
    let range = log.range(table).await.map_err(|e| ReplayError::Failed(format!("reading the {what}: {e}")))?;
    let Some((first, last)) = range else {
        if let Start::Offset(n) = selector.start {
            return Err(ReplayError::Usage(format!("offset {n} is not in the {what}: it is empty")));
        }
        return Ok(LocalReader { log, table, next: 1, last: 0, end: selector.end.clone(), total: 0, done: true });
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
            let at = log.first_at(table, &log_time(t)).await;
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
    Ok(LocalReader { log, table, next, last, end: selector.end.clone(), total, done: false })
}

/// What the messages are called: the local log or its dead-letter table.
fn name(table: Table) -> &'static str {
    match table {
        Table::Log => "local log",
        Table::DeadLetters => "dead-letter table",
    }
}

/// A time as SQLite stored it.
fn stored_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

#[async_trait::async_trait]
impl Reader for LocalReader {
    async fn next(&mut self) -> Result<Option<Vec<Selected>>, ReplayError> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.end.follow
                && self.end.offset.is_none()
                && let Ok(Some((_, last))) = self.log.range(self.table).await
            {
                self.last = last;
            }
            let rows = self.log.read(self.table, self.next, self.last, BATCH).await;
            let rows = rows.map_err(|e| ReplayError::Failed(format!("reading the {}: {e}", name(self.table))))?;
            let mut out: Vec<Selected> = rows
                .into_iter()
                .map(|r| Selected {
                    partition: 0,
                    offset: r.position,
                    time: stored_time(&r.stored_at),
                    payload: r.payload,
                    letter: r.reason.map(|reason| (reason, r.detail.unwrap_or_default())),
                })
                .collect();
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
