//! The subcommands. Each file holds one command's flags and a thin `run`
//! that calls into the library; no business logic lives here.

mod completions;
mod events;
mod healthcheck;
mod migrate;
mod persons;
mod plugins;
mod replay;
mod replay_reingest;
mod serve;
mod teams;
mod top;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use phs::config::{LogFormat, LogLevel};

/// phs: the PostHog plugin server, rebuilt in Rust with Lua plugins.
///
/// With no DATABASE_URL, REDIS_URL, KAFKA_HOSTS or CLICKHOUSE_HOST, phs runs
/// embedded on one machine (SQLite and a local log in PHS_DATA_DIR); each
/// external service is used as soon as its setting is given.
#[derive(Debug, Parser)]
#[command(name = "phs", version, propagate_version = true, max_term_width = 110)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Minimum log level (`log` is an alias of `info`, as in the original).
    #[arg(
        long,
        global = true,
        env = "LOG_LEVEL",
        value_name = "LOG_LEVEL",
        default_value = "info",
        ignore_case = true
    )]
    pub log_level: LogLevel,

    /// Log format on stderr.
    #[arg(long, global = true, env = "PHS_LOG_FORMAT", value_name = "PHS_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Serve(serve::Opts),
    Migrate(migrate::Opts),
    Healthcheck(healthcheck::Opts),
    Replay(replay::Opts),
    Plugins(plugins::Opts),
    Top(top::Opts),
    Teams(teams::Opts),
    Events(events::Opts),
    Persons(persons::Opts),
    Completions(completions::Opts),
}

pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(o) => serve::run(o).await,
        Command::Migrate(o) => migrate::run(o).await,
        Command::Healthcheck(o) => healthcheck::run(o).await,
        Command::Replay(o) => replay::run(o).await,
        Command::Plugins(o) => plugins::run(o).await,
        Command::Top(o) => top::run(o).await,
        Command::Teams(o) => teams::run(o).await,
        Command::Events(o) => events::run(o).await,
        Command::Persons(o) => persons::run(o).await,
        Command::Completions(o) => completions::run(o),
    }
}

/// An error in how phs was invoked; exits with code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Writes to stdout, turning a closed pipe into a quiet success upstream.
pub fn print(text: impl std::fmt::Display) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}
