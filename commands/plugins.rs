//! `phs plugins`: scaffold, test, install, configure and follow Lua plugins.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use phs::config::StoreSettings;
use phs::plugins::fixtures::{self, Outcome};
use phs::plugins::{Limits, PluginSource, scaffold};

use super::UsageError;

/// Manage Lua plugins and their per-team configs.
#[derive(Debug, Args)]
pub struct Opts {
    #[command(subcommand)]
    pub action: Action,

    #[command(flatten)]
    pub store: StoreSettings,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Scaffold a plugin folder: plugin.json, index.lua and tests/ fixtures.
    New {
        name: String,
        /// Where to create it; default: ./NAME.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run a plugin's fixtures, or the given events, through setupPlugin and processEvent.
    ///
    /// Needs no service. Exit 0 when all passed, 1 when a fixture failed or a
    /// call failed or hit a limit, 2 on a usage error or an invalid plugin.
    Test {
        dir: PathBuf,
        /// An event as JSON, or @FILE (repeatable); prints each result as one JSON line.
        #[arg(long = "event", value_name = "JSON|@FILE")]
        events: Vec<String>,
        /// A config value for the plugin (repeatable); overrides a fixture's config.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// One JSON line per fixture on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Install a plugin from a folder or a .zip/.tar.gz archive into the database.
    Install { path: PathBuf },
    /// List installed plugins and their configs.
    List {
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Enable a plugin for a team (also clears an automatic disable).
    Enable {
        plugin: String,
        #[arg(long)]
        team: String,
    },
    /// Disable a plugin for a team.
    Disable {
        plugin: String,
        #[arg(long)]
        team: String,
    },
    /// Show or set a plugin's config for a team (validated; secrets masked).
    Config {
        plugin: String,
        #[arg(long)]
        team: String,
        /// KEY=VALUE to set (repeatable); none shows the config.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Show or set the order in which a team's plugins run.
    Order {
        #[arg(long)]
        team: String,
        /// Plugins in the order to run them; none shows the order.
        plugins: Vec<String>,
    },
    /// Show a plugin config's log entries.
    Logs {
        /// Plugin config id.
        id: i64,
        #[arg(long)]
        follow: bool,
        /// Lowest level shown: debug, log, info, warn or error.
        #[arg(long)]
        level: Option<String>,
    },
    /// Ask every running instance to reload plugins (PLUGINS_RELOAD_PUBSUB_CHANNEL).
    Reload,
    /// Remove an installed plugin and its configs.
    Remove { plugin: String },
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    match opts.action {
        Action::New { name, dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            scaffold::create(&dir, &name).map_err(|e| UsageError(e.to_string()))?;
            eprintln!("created {}; try it with `phs plugins test {}`", dir.display(), dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Action::Test { dir, events, config, json } => test(dir, events, config, json).await,
        _ => super::not_yet_available("plugins", "the plugin store (install, configure, logs, reload)"),
    }
}

async fn test(dir: PathBuf, events: Vec<String>, config: Vec<String>, json: bool) -> anyhow::Result<ExitCode> {
    let invalid = |e: &dyn std::fmt::Display| UsageError(format!("{}: {e}", dir.display()));
    let source = PluginSource::from_dir(&dir).map_err(|e| invalid(&e))?;
    let overrides = parse_pairs(&config)?;
    let limits = Limits::default();

    if !events.is_empty() {
        let mut failed = false;
        for raw in &events {
            let event = read_event(raw)?;
            let (outcome, logs) = fixtures::run_event(&source, &overrides, &event, limits).await.map_err(|e| invalid(&e))?;
            print_logs(&logs);
            failed |= matches!(outcome, Outcome::Error { .. });
            super::print(serde_json::to_string(&outcome)?)?;
        }
        return Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS });
    }

    let cases = fixtures::load_fixtures(&dir).map_err(|e| invalid(&e))?;
    let (mut passed, mut failed) = (0, 0);
    for (name, mut fixture) in cases {
        fixture.config.extend(overrides.clone());
        let report = fixtures::check(&source, &name, &fixture, limits).await.map_err(|e| invalid(&e))?;
        if report.passed {
            passed += 1;
        } else {
            failed += 1;
        }
        if json {
            super::print(serde_json::to_string(&report)?)?;
            continue;
        }
        let verdict = if report.passed { "PASS" } else { "FAIL" };
        match &fixture.description {
            Some(d) => super::print(format!("{verdict} {name}: {d}"))?,
            None => super::print(format!("{verdict} {name}"))?,
        }
        for line in &report.differences {
            super::print(format!("    {line}"))?;
        }
        if !report.passed {
            print_logs(&report.logs);
        }
    }
    if !json {
        super::print(format!("{}: {passed} of {} fixtures passed", source.manifest.name, passed + failed))?;
    }
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn print_logs(logs: &[phs::plugins::logs::LogEntry]) {
    for l in logs {
        eprintln!("    [{:?} {:?}] {}", l.source, l.level, l.message);
    }
}

fn parse_pairs(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| UsageError(format!("--config {p:?}: expected KEY=VALUE")).into())
        })
        .collect()
}

fn read_event(raw: &str) -> anyhow::Result<serde_json::Value> {
    let text = match raw.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| UsageError(format!("--event @{path}: {e}")))?,
        None => raw.to_string(),
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| UsageError(format!("--event {raw:?} is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(UsageError(format!("--event {raw:?}: an event is a JSON object")).into());
    }
    Ok(v)
}
