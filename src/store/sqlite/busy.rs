//! How a connection waits for another one's write to end. Each embedded
//! file has writers on more than one connection: the main and the overflow
//! pipelines both write events and persons, both append to and commit on
//! the overflow log, plugins' logs and errors share the main database. A
//! write that finds the file locked calls the busy handler, and SQLite's
//! own (`sqlite3_busy_timeout`) sleeps 1, 2, 5, 10, ... then 100 ms between
//! tries: past a few tries it sleeps on long after the lock is free. Seen
//! in `scripts/bench hostile`: waits of 180 to 630 ms on writes that held
//! the lock for a few milliseconds, the main pipeline's among them. This
//! handler tries again every 100 µs for the first 50 ms, then every
//! millisecond, until [`super::BUSY_TIMEOUT`].

use std::ffi::{c_int, c_void};
use std::time::Duration;

use sqlx::SqliteConnection;

/// Tries at the short pause: 50 ms in all.
const SHORT_TRIES: c_int = 500;
const SHORT: Duration = Duration::from_micros(100);
const LONG: Duration = Duration::from_millis(1);

/// Replaces the connection's busy timeout with [`wait`].
pub async fn install(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is a live connection, locked for this call; the
    // handler is a plain function that keeps no pointer (its argument is null).
    let rc = unsafe {
        libsqlite3_sys::sqlite3_busy_handler(handle.as_raw_handle().as_ptr(), Some(wait), std::ptr::null_mut())
    };
    if rc != libsqlite3_sys::SQLITE_OK {
        return Err(sqlx::Error::Protocol(format!("could not set SQLite's busy handler (code {rc})")));
    }
    Ok(())
}

/// The pause before try `tries + 1`, or None once [`super::BUSY_TIMEOUT`] has been waited.
fn pause(tries: c_int) -> Option<Duration> {
    let long_tries = (super::BUSY_TIMEOUT - SHORT * SHORT_TRIES as u32).as_millis() as c_int;
    match tries {
        t if t < SHORT_TRIES => Some(SHORT),
        t if t < SHORT_TRIES + long_tries => Some(LONG),
        _ => None,
    }
}

/// SQLite's busy handler: nonzero to try again. It runs on the thread that
/// runs the connection's statements (sqlx's worker), never an async one.
extern "C" fn wait(_: *mut c_void, tries: c_int) -> c_int {
    match pause(tries) {
        Some(p) => {
            std::thread::sleep(p);
            1
        }
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_tries_often_at_first_and_gives_up_after_the_busy_timeout() {
        assert_eq!(pause(0), Some(SHORT));
        assert_eq!(pause(SHORT_TRIES - 1), Some(SHORT));
        assert_eq!(pause(SHORT_TRIES), Some(LONG));
        let waited: Duration = (0..).map_while(pause).sum();
        assert_eq!(waited, super::super::BUSY_TIMEOUT);
    }

    #[tokio::test]
    async fn a_write_waits_for_another_connections_write_and_then_runs() {
        let dir = tempfile::tempdir().unwrap();
        let pool = super::super::open_pool(&dir.path().join("t.sqlite3"), sqlx::sqlite::SqliteSynchronous::Normal, 2)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER)").execute(&pool).await.unwrap();
        let mut holder = pool.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (1)").execute(&mut *holder).await.unwrap();
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { sqlx::query("INSERT INTO t VALUES (2)").execute(&pool).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "the second write waits for the lock");
        holder.commit().await.unwrap();
        waiting.await.unwrap().expect("runs once the lock is free");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&pool).await.unwrap();
        assert_eq!(n, 2);
    }
}
