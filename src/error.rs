//! Errors that decide what happens next. Every failure of a source, a sink,
//! a producer or a store has a kind, and the pipeline acts on the kind alone:
//! a transient failure is retried with backoff, a data failure sends the
//! offending events to the dead-letter queue (retrying could never help),
//! and a fatal one stops `phs serve` with the reason so an orchestrator can
//! restart it or a person can fix the setting.

/// What a caller does with a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The dependency is unreachable, overloaded or timed out: retry with backoff.
    Transient,
    /// The request itself is refused (a value, a constraint, a size): do not
    /// retry it; dead-letter what caused it and go on with the rest.
    Data,
    /// Nothing this process can do will help (a missing table, bad
    /// credentials): stop and exit non-zero with the reason.
    Fatal,
}

impl ErrorKind {
    /// The kind of an sqlx error (Postgres or SQLite), by its SQLSTATE class
    /// or SQLite result code where there is one.
    pub fn of_sqlx(e: &sqlx::Error) -> ErrorKind {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => ErrorKind::Transient,
            sqlx::Error::Database(db) => match db.code() {
                Some(code) => Self::of_database_code(&code),
                None => ErrorKind::Data,
            },
            sqlx::Error::Configuration(_) => ErrorKind::Fatal,
            _ => ErrorKind::Data,
        }
    }

    /// Postgres SQLSTATEs are five characters; SQLite reports its (extended)
    /// result code as a number, which is below 10000.
    fn of_database_code(code: &str) -> ErrorKind {
        if let Some(n) = code.parse::<u32>().ok().filter(|_| code.len() < 5) {
            // SQLite: the primary code is the low byte of an extended code.
            return match n & 0xff {
                // BUSY, LOCKED, NOMEM, IOERR, FULL, CANTOPEN, PROTOCOL
                5 | 6 | 7 | 10 | 13 | 14 | 15 => ErrorKind::Transient,
                // ERROR (no such table or column: SQLite is typed loosely, so a
                // value is rarely at fault), READONLY, CORRUPT, NOTADB, AUTH
                1 | 8 | 11 | 26 | 23 => ErrorKind::Fatal,
                _ => ErrorKind::Data,
            };
        }
        match &code[..code.len().min(2)] {
            // data exception, integrity constraint, invalid text representation et al.
            "22" | "23" => ErrorKind::Data,
            // connection, transaction rollback (serialization, deadlock), resources, operator intervention, system
            "08" | "40" | "53" | "55" | "57" | "58" => ErrorKind::Transient,
            // undefined table or column, insufficient privilege, invalid authorization
            "42" | "28" | "3D" | "3F" => ErrorKind::Fatal,
            _ => ErrorKind::Transient,
        }
    }
}

/// A failed call to a source, sink or producer: what was being done, why it
/// failed, and what kind of failure it is.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct PipeError {
    pub kind: ErrorKind,
    pub context: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl PipeError {
    pub fn new(
        kind: ErrorKind,
        context: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        PipeError { kind, context, source: source.into() }
    }

    pub fn transient(context: &'static str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::new(ErrorKind::Transient, context, source)
    }

    pub fn data(context: &'static str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::new(ErrorKind::Data, context, source)
    }

    /// A failed sqlx call, with its kind read from the error.
    pub fn sqlx(context: &'static str) -> impl FnOnce(sqlx::Error) -> PipeError {
        move |e| {
            let kind = ErrorKind::of_sqlx(&e);
            if damaged_file(&e) {
                return PipeError::new(kind, context, Damaged(e));
            }
            PipeError::new(kind, context, e)
        }
    }
}

/// Whether SQLite says a file itself is damaged (SQLITE_CORRUPT, SQLITE_NOTADB),
/// as opposed to being unable to reach it (permissions, a full disk).
pub fn damaged_file(e: &sqlx::Error) -> bool {
    let code = match e {
        sqlx::Error::Database(db) => db.code().filter(|c| c.len() < 5).and_then(|c| c.parse::<u32>().ok()),
        _ => None,
    };
    matches!(code.map(|c| c & 0xff), Some(11 | 26))
}

/// A damaged SQLite file met while serving (fatal): the message says what comes next.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0}; the file is damaged: restart phs serve, which checks the embedded events store and logs after a stop \
     like this one and rebuilds a damaged one from its readable rows (README, \"Torn or damaged files\")"
)]
pub struct Damaged(sqlx::Error);

/// The message of a caught panic, for logs and dead letters.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    match p.downcast_ref::<String>() {
        Some(s) => s.clone(),
        None => p.downcast_ref::<&str>().map_or_else(|| "(a panic without a message)".into(), |s| s.to_string()),
    }
}

/// Anything whose failure has a kind.
pub trait Kinded {
    fn kind(&self) -> ErrorKind;
}

impl Kinded for PipeError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_codes_decide_the_kind() {
        let k = ErrorKind::of_database_code;
        assert_eq!(k("22P05"), ErrorKind::Data, "untranslatable character (a NUL in text)");
        assert_eq!(k("23505"), ErrorKind::Data, "unique violation");
        assert_eq!(k("40001"), ErrorKind::Transient, "serialization failure");
        assert_eq!(k("57P01"), ErrorKind::Transient, "admin shutdown");
        assert_eq!(k("42P01"), ErrorKind::Fatal, "undefined table");
        assert_eq!(k("5"), ErrorKind::Transient, "SQLITE_BUSY");
        assert_eq!(k("517"), ErrorKind::Transient, "SQLITE_BUSY_SNAPSHOT");
        assert_eq!(k("2067"), ErrorKind::Data, "SQLITE_CONSTRAINT_UNIQUE");
        assert_eq!(k("18"), ErrorKind::Data, "SQLITE_TOOBIG");
        assert_eq!(k("11"), ErrorKind::Fatal, "SQLITE_CORRUPT");
        assert_eq!(k("1"), ErrorKind::Fatal, "SQLITE_ERROR: no such table");
    }
}
