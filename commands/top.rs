//! `phs top`: a live terminal dashboard of lag, worker load and plugin errors.

use std::process::ExitCode;

use clap::{Args, ValueEnum};

/// Watch running instances: consumer lag, worker load, plugins and their errors.
#[derive(Debug, Args)]
pub struct Opts {
    /// Admin URL of an instance (repeatable); default: every instance in the heartbeats, or the local one.
    #[arg(long = "server", value_name = "URL")]
    pub servers: Vec<String>,

    /// Seconds between polls.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,

    /// Print one snapshot and exit (with --json for scripts).
    #[arg(long)]
    pub once: bool,

    #[arg(long)]
    pub json: bool,

    /// When to use colours; NO_COLOR is honoured with `auto`.
    #[arg(long, default_value = "auto")]
    pub color: Color,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

pub fn run(_opts: Opts) -> anyhow::Result<ExitCode> {
    super::not_yet_available("top", "the observability work (metrics and the dashboard)")
}
