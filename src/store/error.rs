//! Storage errors, sorted by what the caller should do about them.

use thiserror::Error;

/// What a caller does with a failed store call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The database is unreachable or overloaded: retry with backoff.
    Transient,
    /// The request itself is wrong (constraint, bad value): do not retry.
    Data,
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot reach the {backend} database at {location}: {source}")]
    Connect {
        backend: &'static str,
        location: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("{context}: {source}")]
    Query {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("{0}")]
    Invalid(String),
    /// Another writer changed the row first (a version check or a unique key
    /// failed): re-read and redo.
    #[error("concurrent change: {0}")]
    Conflict(String),
}

impl StoreError {
    pub fn query(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Query { context, source }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Connect { .. } => ErrorKind::Transient,
            StoreError::Invalid(_) => ErrorKind::Data,
            // Still failing after the caller's own retries: back off and retry the batch.
            StoreError::Conflict(_) => ErrorKind::Transient,
            StoreError::Query { source, .. } => match source {
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
                    ErrorKind::Transient
                }
                _ => ErrorKind::Data,
            },
        }
    }
}
