//! Copies every row SQLite can still read from a damaged file's table into
//! the same table of a fresh file, keeping rowids (a log's offsets, a dead
//! letter's id), and names the rowid ranges it could not read.
//!
//! Reads go through the table's b-tree by rowid: in chunks while that
//! works, then row by row around a failure, and past an unreadable page by
//! seeking to ever larger rowids until a seek succeeds (a seek only walks
//! the pages on its way down, so it gets past a damaged leaf). Rows that
//! only a page-by-page scan could find (below a damaged interior page) are
//! not recovered here: the damaged file is kept for `sqlite3 FILE .recover`.

use sqlx::{Connection, SqliteConnection};

/// Rows per copying statement while reads succeed.
const CHUNK: i64 = 500;

/// What became of one table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TableCopy {
    pub table: String,
    /// Rows copied into the fresh file.
    pub rows: u64,
    /// Inclusive rowid ranges that could not be read (`i64::MAX` as the end:
    /// everything after the start).
    pub skipped: Vec<(i64, i64)>,
}

impl TableCopy {
    /// Adds an unreadable range, joining it to the last one when they touch.
    fn skip(&mut self, from: i64, to: i64) {
        match self.skipped.last_mut() {
            Some(last) if last.1.checked_add(1) == Some(from) => last.1 = to,
            _ => self.skipped.push((from, to)),
        }
    }

    /// The most rows the skipped ranges can have held (rowids are dense in
    /// phs's tables); None when a range runs to the end and the last rowid is unknown.
    pub fn skipped_at_most(&self, last_rowid: Option<i64>) -> Option<u64> {
        self.skipped
            .iter()
            .map(|&(a, b)| {
                let b = if b == i64::MAX { last_rowid?.max(a - 1) } else { b };
                Some((b as i128 - a as i128 + 1).max(0) as u64)
            })
            .sum()
    }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The statements for one table, with `main` the fresh file and `old` the damaged one attached.
struct Table {
    /// The first rowid after ?1 (a seek).
    next: String,
    /// The last rowid of the next chunk of rows after ?1.
    chunk_end: String,
    /// Copies the rows with rowids in (?1, ?2].
    copy: String,
}

impl Table {
    fn new(table: &str, columns: &[String]) -> Table {
        let t = quoted(table);
        let cols: Vec<String> = columns.iter().map(|c| quoted(c)).collect();
        let cols = cols.join(", ");
        Table {
            next: format!("SELECT rowid FROM old.{t} WHERE rowid > ?1 ORDER BY rowid LIMIT 1"),
            chunk_end: format!(
                "SELECT max(r) FROM (SELECT rowid AS r FROM old.{t} WHERE rowid > ?1 ORDER BY rowid LIMIT {CHUNK})"
            ),
            // OR IGNORE: a damaged file may hold two rows with one key; the first wins.
            copy: format!(
                "INSERT OR IGNORE INTO main.{t} (rowid, {cols}) SELECT rowid, {cols} FROM old.{t} \
                 WHERE rowid > ?1 AND rowid <= ?2 ORDER BY rowid"
            ),
        }
    }
}

/// A damaged page can read as a leaf of made-up rows: a rowid that breaks
/// the query's own bound is no row, but damage.
fn past(after: i64, found: Option<i64>) -> Result<Option<i64>, sqlx::Error> {
    match found {
        Some(r) if r <= after => Err(sqlx::Error::Protocol(format!("rowid {r} read after {after}: a damaged page"))),
        found => Ok(found),
    }
}

async fn next_rowid(conn: &mut SqliteConnection, t: &Table, after: i64) -> Result<Option<i64>, sqlx::Error> {
    past(after, sqlx::query_scalar(sqlx::AssertSqlSafe(t.next.clone())).bind(after).fetch_optional(conn).await?)
}

async fn copy_range(conn: &mut SqliteConnection, t: &Table, after: i64, to: i64) -> Result<u64, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let n = sqlx::query(sqlx::AssertSqlSafe(t.copy.clone())).bind(after).bind(to).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(n.rows_affected())
}

/// The first rowid after `after` that a seek reaches: None when nothing
/// after it can be reached (or there is nothing), with the number of
/// seeks made. Seeks are exponential, then a binary search narrows the gap.
async fn seek_past(conn: &mut SqliteConnection, t: &Table, after: i64) -> Option<i64> {
    let probe = async |conn: &mut SqliteConnection, q: i64| next_rowid(conn, t, q - 1).await;
    let mut failed = after;
    let mut step: i64 = 1;
    let reached = loop {
        let q = failed.checked_add(step)?;
        match probe(conn, q).await {
            Ok(found) => break (q, found),
            Err(_) => {
                failed = q;
                step = step.checked_mul(2)?;
            }
        }
    };
    // The smallest q in (failed, reached.0] that seeks: the rows before it are the unreadable ones.
    let (mut lo, mut hi) = (failed, reached);
    while hi.0 - lo > 1 {
        let mid = lo + (hi.0 - lo) / 2;
        match probe(conn, mid).await {
            Ok(found) => hi = (mid, found),
            Err(_) => lo = mid,
        }
    }
    hi.1
}

/// The first rowid a phs table can hold after `pos`: they start at 1.
fn first_after(pos: i64) -> i64 {
    pos.saturating_add(1).max(1)
}

/// Copies `table` (its `columns` besides the rowid and any alias of it) from `old` into `main`.
pub async fn table(conn: &mut SqliteConnection, table: &str, columns: &[String]) -> TableCopy {
    let t = Table::new(table, columns);
    let mut out = TableCopy { table: table.to_string(), ..Default::default() };
    let mut pos = i64::MIN;
    loop {
        // Fast: a chunk at a time.
        let end: Result<Option<i64>, sqlx::Error> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(t.chunk_end.clone())).bind(pos).fetch_one(&mut *conn).await;
        let end = end.and_then(|e| past(pos, e));
        match end {
            Ok(None) => return out,
            Ok(Some(end)) => {
                if let Ok(n) = copy_range(conn, &t, pos, end).await {
                    out.rows += n;
                    pos = end;
                    continue;
                }
            }
            Err(_) => {}
        }
        // Slow: the next row alone.
        match next_rowid(conn, &t, pos).await {
            Ok(None) => return out,
            Ok(Some(r)) => {
                match copy_range(conn, &t, pos, r).await {
                    Ok(n) => out.rows += n,
                    // The row is found but its content cannot be read (a damaged cell or overflow page).
                    Err(_) => out.skip(r, r),
                }
                pos = r;
            }
            // Not even the next rowid: the page holding it is unreadable.
            Err(_) => match seek_past(conn, &t, pos).await {
                Some(r) => {
                    out.skip(first_after(pos), r - 1);
                    pos = r - 1;
                }
                None => {
                    out.skip(first_after(pos), i64::MAX);
                    return out;
                }
            },
        }
    }
}
