//! `phs events list`: the latest stored events, to check what happened
//! without writing SQL.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use phs::config::StoreSettings;
use phs::pipeline::sink::EventFilter;

/// Look at stored events.
#[derive(Debug, Args)]
pub struct Opts {
    #[command(subcommand)]
    pub action: Action,

    #[command(flatten)]
    pub store: StoreSettings,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// The latest events, newest first.
    List {
        /// Only this team (id).
        #[arg(long)]
        team: Option<i64>,
        #[arg(long)]
        distinct_id: Option<String>,
        /// Only events with this name.
        #[arg(long)]
        event: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let Action::List { team, distinct_id, event, limit, json } = opts.action;
    let sink = phs::pipeline::sink::events_store(&opts.store).await?;
    let rows = sink.latest(&EventFilter { team_id: team, distinct_id, event, limit }).await?;
    for r in rows {
        if json {
            super::print(serde_json::to_string(&r)?)?;
        } else {
            super::print(format!(
                "{}  team {:<4} {:<24} {:<28} {}",
                r.timestamp.format("%Y-%m-%d %H:%M:%S%.3f"),
                r.team_id,
                r.event,
                r.distinct_id,
                r.properties_json()
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
