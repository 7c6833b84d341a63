//! Storage errors, sorted by what the caller should do about them.

use thiserror::Error;

pub use crate::error::ErrorKind;

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
    /// A dependency a step called (a plugin's `meta.cache` or `meta.storage`) is unreachable.
    #[error("unreachable: {0}")]
    Unavailable(String),
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
            StoreError::Conflict(_) | StoreError::Unavailable(_) => ErrorKind::Transient,
            StoreError::Query { source, .. } => ErrorKind::of_sqlx(source),
        }
    }
}

impl crate::error::Kinded for StoreError {
    fn kind(&self) -> ErrorKind {
        StoreError::kind(self)
    }
}
