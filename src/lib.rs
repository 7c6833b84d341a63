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
//! Modules are declared by layer, bottom first: each uses only the layers
//! declared before it (the README's "Architecture" draws them, and
//! tests/layers.rs checks them). Shared types and settings come first,
//! then storage and its clients, metrics, the services around them
//! (supervision, probes, heartbeats, schemas), the plugin runtime, the
//! pipeline and the async worker side by side with the admin listener,
//! and at the top [`server`], which wires `phs serve` together.

pub mod config;
pub mod error;
pub mod ready_file;

pub mod wire;

pub mod cache;
pub mod clickhouse;
pub mod kafka;
pub mod store;
pub mod telemetry;

pub mod metrics;

pub mod health;
pub mod instances;
pub mod migrate;
pub mod supervisor;

pub mod plugins;

pub mod admin;
pub mod pipeline;
/// After the pipeline: onEvent, exportEvents, jobs and scheduled tasks.
pub mod worker;

/// Above the server: `phs replay`, which runs the pipeline's stages and the plugin runner on past events.
pub mod replay;
pub mod server;
