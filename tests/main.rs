//! The integration tests, in one binary (one link step, shared helpers).
//!
//! Tests that need Postgres, Redis, ClickHouse or Kafka read their addresses
//! from PHS_TEST_* variables, which `scripts/test` sets after starting the
//! services; without them those tests fail and say so, they never skip.

// Benchmarks and tests may panic on a failed setup step: that is their failure report.
#![allow(clippy::unwrap_used)]

mod util;

mod cache;
mod cli;
mod completions;
mod definitions;
mod faults;
mod hostile;
mod hostile_plugins;
mod ingest;
mod jobs;
mod layers;
mod migrate;
mod never_stall;
mod outage;
mod overflow;
mod persons;
mod plugin_api;
mod plugin_containment;
mod plugin_fixtures;
mod plugins;
mod production;
mod replay;
mod replay_kafka;
mod retention;
mod sdk;
mod serve;
mod shards;
mod sinks;
mod slow_lane;
mod store;
mod tenant_isolation;
mod top;
mod torn_log;
mod torture;
mod worker;
