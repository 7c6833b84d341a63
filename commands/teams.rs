//! `phs teams`: create and list teams (PostHog projects) and their API tokens.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use phs::config::StoreSettings;
use phs::store::NewTeam;

/// Manage teams (projects): each has the API token SDKs send events with.
#[derive(Debug, Args)]
pub struct Opts {
    #[command(subcommand)]
    pub action: Action,

    #[command(flatten)]
    pub store: StoreSettings,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Create a team and print its project API token on stdout.
    Create {
        /// The team's name.
        name: String,
        /// Drop the IP address of every event of this team.
        #[arg(long)]
        anonymize_ips: bool,
        /// Use this API token instead of a generated one (to mirror an existing PostHog project).
        #[arg(long)]
        token: Option<String>,
        /// Print the whole team as JSON instead of the token alone.
        #[arg(long)]
        json: bool,
    },
    /// List teams.
    List {
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    // Teams live in the database; the embedded one is created on first use.
    phs::migrate::embedded(&opts.store).await?;
    let store = phs::store::connect(&opts.store).await?;
    match opts.action {
        Action::Create { name, anonymize_ips, token, json } => {
            if name.trim().is_empty() {
                return Err(super::UsageError("the team name must not be empty".into()).into());
            }
            let team = store.create_team(NewTeam { name, anonymize_ips, api_token: token }).await?;
            if json {
                super::print(serde_json::to_string_pretty(&team)?)?;
            } else {
                eprintln!("created team {} \"{}\"; its project API token:", team.id, team.name);
                super::print(&team.api_token)?;
            }
        }
        Action::List { json } => {
            let teams = store.list_teams().await?;
            if json {
                super::print(serde_json::to_string_pretty(&teams)?)?;
            } else if teams.is_empty() {
                eprintln!("no teams yet; create one with `phs teams create NAME`");
            } else {
                super::print(format!("{:>5}  {:<24} {:<48} {}", "ID", "NAME", "API TOKEN", "ANONYMIZE IPS"))?;
                for t in teams {
                    super::print(format!("{:>5}  {:<24} {:<48} {}", t.id, t.name, t.api_token, t.anonymize_ips))?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
