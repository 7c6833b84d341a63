//! `phs migrate`: create or update every configured store's schema and topics.

use std::process::ExitCode;

use clap::Args;
use phs::config::StoreSettings;
use phs::migrate::{self, Mode, State, TopicLayout};

/// Create or update tables (Postgres or SQLite, ClickHouse) and Kafka topics.
///
/// Idempotent: run it on every deploy. Only the stores whose settings are
/// given are touched.
#[derive(Debug, Args)]
pub struct Opts {
    #[command(flatten)]
    pub store: StoreSettings,

    /// Report what is applied and what is pending, change nothing; exit 1 when something is pending.
    #[arg(long, conflicts_with = "dry_run")]
    pub status: bool,

    /// Show what would be applied, change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the steps as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// Partitions of topics created by this run.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..))]
    pub kafka_partitions: i32,

    /// Replication factor of topics created by this run.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub kafka_replication_factor: i32,
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let mode = if opts.status || opts.dry_run { Mode::Check } else { Mode::Apply };
    let layout = TopicLayout { partitions: opts.kafka_partitions, replication: opts.kafka_replication_factor };
    let steps = migrate::run(&opts.store, mode, layout).await?;

    if opts.json {
        super::print(serde_json::to_string_pretty(&steps)?)?;
    } else {
        for step in &steps {
            let state = match (step.state, opts.dry_run) {
                (State::Done, _) => "up to date",
                (State::Pending, true) => "would apply",
                (State::Pending, false) => "pending",
                (State::Applied, _) => "applied",
            };
            // Wide enough for the longest target, overflow-log.sqlite3.
            super::print(format!("{:<21} {:<12} {}", step.target, state, step.name))?;
        }
    }
    let pending = migrate::pending(&steps).count();
    Ok(if opts.status && pending > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
