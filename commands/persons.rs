//! `phs persons show`: a person as phs resolved it (properties, distinct
//! ids, version, is_identified), to check identity merges without SQL.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use phs::config::StoreSettings;
use serde_json::json;

/// Look at persons.
#[derive(Debug, Args)]
pub struct Opts {
    #[command(subcommand)]
    pub action: Action,

    #[command(flatten)]
    pub store: StoreSettings,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// The person behind a distinct id; exits 1 when there is none.
    Show {
        distinct_id: String,
        /// The team: id, API token or name.
        #[arg(long)]
        team: String,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let Action::Show { distinct_id, team, json } = opts.action;
    phs::migrate::embedded(&opts.store).await?;
    let store = phs::store::connect(&opts.store).await?;
    let team = phs::plugins::registry::find_team(store.as_ref(), &team).await?;
    let Some(person) = store.person_by_distinct_id(team.id, &distinct_id).await? else {
        eprintln!("no person has the distinct id `{distinct_id}` in team {} ({})", team.id, team.name);
        return Ok(ExitCode::FAILURE);
    };
    let ids: Vec<String> = store.distinct_ids_of(person.id).await?.into_iter().map(|(id, _)| id).collect();
    if json {
        super::print(json!({
            "uuid": person.uuid,
            "team_id": person.team_id,
            "distinct_ids": ids,
            "properties": person.properties,
            "is_identified": person.is_identified,
            "version": person.version,
            "created_at": person.created_at,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    super::print(format!("person        {}", person.uuid))?;
    super::print(format!("team          {} ({})", team.id, team.name))?;
    super::print(format!("created at    {}", person.created_at.format("%Y-%m-%d %H:%M:%S%.3f UTC")))?;
    super::print(format!("identified    {}", if person.is_identified { "yes" } else { "no" }))?;
    super::print(format!("version       {}", person.version))?;
    super::print(format!("distinct ids  {}", ids.join(", ")))?;
    super::print("properties")?;
    let mut props: Vec<_> = person.properties.as_object().into_iter().flatten().collect();
    props.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in props {
        super::print(format!("  {k:<28} {v}"))?;
    }
    Ok(ExitCode::SUCCESS)
}
