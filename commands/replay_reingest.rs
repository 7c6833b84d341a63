//! `phs replay --reingest`: say what will be ingested again, ask, then run
//! the selection through the full pipeline and report what passed.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use phs::replay::Filters;
use phs::replay::reingest::{self, Plan, Summary};
use phs::replay::select::{Origin, Selector};

use super::replay::{Opts, fail, interruptible, progress_bar};

pub async fn run(
    opts: &Opts,
    selector: Selector,
    filters: Filters,
    store: Arc<dyn phs::store::Store>,
    cache: Arc<dyn phs::cache::Cache>,
) -> anyhow::Result<ExitCode> {
    let teams = phs::pipeline::team::TeamCache::new(store.clone());
    let plan = reingest::plan(&selector, &filters, opts.limit, &teams).await.map_err(fail)?;
    if plan.events == 0 {
        eprintln!("nothing to re-ingest: no selected event ({} left out as invalid or of no team)", plan.skipped);
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{}", describe(&plan, &selector));
    if !opts.yes && !confirmed()? {
        eprintln!("not re-ingested");
        return Ok(ExitCode::from(1));
    }
    let options = phs::server::IngestOptions {
        clickhouse_topics: opts.kafka_clickhouse_topics,
        runner: phs::plugins::runner::RunnerOptions { states: phs::config::cores(), ..opts.runner() },
        distinct_id_lru_size: phs::config::DISTINCT_ID_READ_AHEAD,
        definitions: opts.definitions,
    };
    let ingestion = phs::server::Ingestion::build(&opts.store, options, store, cache, uuid::Uuid::now_v7()).await?;
    let progress = progress_bar();
    let summary =
        reingest::run(ingestion, &selector, filters, opts.limit, progress, interruptible()).await.map_err(fail)?;
    if opts.json {
        super::print(serde_json::to_string(&serde_json::json!({"summary": summary}))?)?;
    } else {
        super::print(render(&summary).trim_end())?;
    }
    Ok(if summary.interrupted {
        ExitCode::from(130)
    } else if summary.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What is about to happen, before anything is written.
fn describe(plan: &Plan, selector: &Selector) -> String {
    let from = match &selector.origin {
        Origin::Kafka { topic, .. } => format!("Kafka topic `{topic}`"),
        Origin::LocalLog(dir) => format!("the local log in {}", dir.display()),
        Origin::DeadLetters(dir) => format!("the dead letters in {}", dir.display()),
    };
    let teams: Vec<String> = plan.teams.iter().map(|(t, n)| format!("team {t} ({n})")).collect();
    let teams = if teams.is_empty() { "no known team".to_string() } else { teams.join(", ") };
    let mut text = format!("re-ingest {} events from {from}: {teams}.", plan.events);
    if plan.skipped > 0 {
        text.push_str(&format!(" {} invalid or of no team are left out.", plan.skipped));
    }
    text.push_str(
        "\nThey go through the whole pipeline again: plugins run with real side effects \
         (storage, cache, fetch, captures, onEvent and exportEvents), persons are updated again, \
         and each event is written again under its uuid (SQLite replaces the first copy; \
         ClickHouse collapses the two when it merges).",
    );
    if matches!(selector.origin, Origin::DeadLetters(_)) {
        text.push_str("\nDead letters that pass are removed from the table; those refused again stay.");
    }
    text
}

/// Asks on the terminal; refuses to guess when there is none.
fn confirmed() -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(super::UsageError("--reingest asks before writing; with no terminal, pass --yes".into()).into());
    }
    eprint!("Proceed? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn render(s: &Summary) -> String {
    let mut out = format!("{} read, {} re-ingested", s.read, s.reingested);
    if s.interrupted {
        out.push_str(" (interrupted)");
    }
    if !s.refused.is_empty() {
        let refused: Vec<String> = s.refused.iter().map(|(r, n)| format!("{r} {n}")).collect();
        out.push_str(&format!(", refused again: {}", refused.join(", ")));
    }
    out.push('\n');
    for (reason, o) in &s.dead_letters {
        let failed: u64 = o.failed.values().sum();
        out.push_str(&format!("  dead letters first refused as {reason}: {} passed, {failed} refused again", o.passed));
        if failed > 0 {
            let why: Vec<String> = o.failed.iter().map(|(r, n)| format!("{r} {n}")).collect();
            out.push_str(&format!(" ({})", why.join(", ")));
        }
        out.push('\n');
    }
    out
}
