//! Where raw events come from: the Kafka consumption topic in production or
//! the durable local log when embedded, behind one trait so the pipeline
//! (and later `phs replay`) reads both the same way.

pub mod kafka;
pub mod local_log;
pub mod producer;
pub mod retention;

pub use crate::wire::Source;
