//! phs: the PostHog plugin server rebuilt in Rust.
//!
//! ```text
//!   capture endpoint ─┐
//!                     ├─> source (Kafka | local log) -> normalize -> team -> plugins
//!   Kafka topic ──────┘        -> persons -> prepare -> sinks (ClickHouse | SQLite, Kafka topics)
//!                                                          └─> commit offsets
//!   written events -> job queue -> onEvent / exportEvents;  jobs, runEvery* (worker)
//! ```
//!
//! Modules are declared in the order data meets them. What exists today:
//! settings ([`config`]), the stores ([`store`], [`cache`]) and their
//! connections ([`clickhouse`], [`kafka`]), schema management ([`migrate`]),
//! and the server shell ([`server`], [`admin`]) that the pipeline stages will
//! plug into.

pub mod config;
pub mod error;
pub mod telemetry;
pub mod wire;

pub mod cache;
pub mod clickhouse;
pub mod kafka;
pub mod store;

pub mod plugins;

pub mod pipeline;
/// After the pipeline: onEvent, exportEvents, jobs and scheduled tasks.
pub mod worker;

pub mod migrate;

pub mod metrics;

pub mod admin;
pub mod health;
pub mod instances;
pub mod ready_file;
pub mod server;
pub mod supervisor;
