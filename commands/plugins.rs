//! `phs plugins`: scaffold, test, install, configure and follow Lua plugins.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use phs::config::StoreSettings;
use phs::plugins::fixtures::{self, Outcome};
use phs::plugins::logs::{LogLevel, LogReader};
use phs::plugins::{PluginSource, listing, registry, scaffold};

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
    /// Scenario fixtures (with `run`, `http`, `expected_requests` or
    /// `expected_captures`) also run onEvent, exportEvents, runEvery* tasks
    /// and jobs, against a local HTTP responder. Needs no service. Exit 0 when all passed, 1 when a fixture failed or a
    /// call failed or hit a limit, 2 on a usage error or an invalid plugin.
    Test {
        dir: PathBuf,
        /// An event as JSON, or @FILE (repeatable); the events go through one plugin
        /// state in order, and each result is printed as one JSON line.
        #[arg(long = "event", value_name = "JSON|@FILE")]
        events: Vec<String>,
        /// A config value for the plugin (repeatable); overrides a fixture's config.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// One JSON line per fixture on stdout.
        #[arg(long)]
        json: bool,
        /// MaxMind City database (.mmdb) behind `meta.geoip`; a fixture's own `geoip` map wins.
        #[arg(long = "geoip-db", value_name = "MMDB_FILE")]
        geoip_db: Option<PathBuf>,
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
        /// KEY=VALUE to set (repeatable); KEY=@PATH for an attachment field. None shows the config.
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
        level: Option<LogLevel>,
    },
    /// Ask every running instance to reload plugins.
    ///
    /// phs instances re-read a team's plugin configs every 2 s on their own;
    /// with REDIS_URL set this also publishes on PLUGINS_RELOAD_PUBSUB_CHANNEL,
    /// as PostHog does, for other consumers of that channel.
    Reload {
        #[arg(
            long,
            env = "PLUGINS_RELOAD_PUBSUB_CHANNEL",
            value_name = "PLUGINS_RELOAD_PUBSUB_CHANNEL",
            default_value = "reload-plugins"
        )]
        channel: String,
    },
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
        Action::Test { dir, events, config, json, geoip_db } => {
            let geoip = match geoip_db {
                Some(path) => Some(std::sync::Arc::new(
                    phs::plugins::geoip::GeoIp::open(&path).map_err(|e| UsageError(format!("--geoip-db: {e}")))?,
                )),
                None => None,
            };
            let opts = fixtures::RunOptions { geoip, ..Default::default() };
            test(dir, events, config, json, opts).await
        }
        Action::Reload { channel } => reload(&opts.store, &channel).await,
        action => manage(action, &opts.store).await,
    }
}

/// The subcommands that work on installed plugins in the database.
async fn manage(action: Action, settings: &StoreSettings) -> anyhow::Result<ExitCode> {
    phs::migrate::embedded(settings).await?;
    let store = phs::store::connect(settings).await?;
    let store = store.as_ref();
    let usage = |e: registry::RegistryError| -> anyhow::Error {
        match e {
            registry::RegistryError::Store(_) => anyhow::Error::new(e),
            other => UsageError(other.to_string()).into(),
        }
    };
    match action {
        Action::Install { path } => {
            let p = registry::install(store, &path).await.map_err(usage)?;
            let caps = &p.capabilities;
            eprintln!("installed plugin {} \"{}\" ({})", p.id, p.name, listing::capabilities_summary(caps));
            super::print(p.id)?;
        }
        Action::List { team, json } => {
            let team = match team {
                Some(t) => Some(registry::find_team(store, &t).await.map_err(usage)?),
                None => None,
            };
            let listing = listing::list(store, team.as_ref()).await?;
            if json {
                super::print(serde_json::to_string_pretty(&listing)?)?;
            } else {
                super::print(format!("{:>4}  {:<28} {}", "ID", "PLUGIN", "CAPABILITIES"))?;
                for p in &listing.plugins {
                    let caps = listing::capabilities_summary(&p.capabilities);
                    super::print(format!("{:>4}  {:<28} {}", p.id, p.name, caps))?;
                }
                if !listing.configs.is_empty() {
                    super::print("")?;
                    super::print(format!(
                        "{:>6}  {:>5}  {:>5}  {:<28} {:<9} {}",
                        "CONFIG", "TEAM", "ORDER", "PLUGIN", "STATE", "ERROR"
                    ))?;
                    for c in &listing.configs {
                        let name = c.plugin.as_deref().unwrap_or("?");
                        let state = if c.enabled { "enabled" } else { "disabled" };
                        super::print(format!(
                            "{:>6}  {:>5}  {:>5}  {:<28} {:<9} {}",
                            c.id,
                            c.team_id,
                            c.order,
                            name,
                            state,
                            c.error_message()
                        ))?;
                    }
                }
            }
        }
        Action::Enable { plugin, team } => {
            let (t, p) = (
                registry::find_team(store, &team).await.map_err(usage)?,
                registry::find_plugin(store, &plugin).await.map_err(usage)?,
            );
            let c = registry::enable(store, &t, &p).await.map_err(usage)?;
            eprintln!("enabled \"{}\" for team {} (config {}, order {})", p.name, t.id, c.id, c.order);
        }
        Action::Disable { plugin, team } => {
            let (t, p) = (
                registry::find_team(store, &team).await.map_err(usage)?,
                registry::find_plugin(store, &plugin).await.map_err(usage)?,
            );
            let c = registry::disable(store, &t, &p).await.map_err(usage)?;
            eprintln!("disabled \"{}\" for team {} (config {})", p.name, t.id, c.id);
        }
        Action::Config { plugin, team, set } => {
            let (t, p) = (
                registry::find_team(store, &team).await.map_err(usage)?,
                registry::find_plugin(store, &plugin).await.map_err(usage)?,
            );
            let pairs: Vec<(String, String)> = parse_pairs(&set)?.into_iter().collect();
            let c = if pairs.is_empty() {
                store.plugin_config(t.id, p.id).await?
            } else {
                registry::configure(store, &t, &p, &pairs).await.map_err(usage)?
            };
            let attachments = store.plugin_attachments(c.id).await?;
            super::print(serde_json::to_string_pretty(&registry::masked(&p, &c, &attachments))?)?;
        }
        Action::Order { team, plugins } => {
            let t = registry::find_team(store, &team).await.map_err(usage)?;
            let configs = if plugins.is_empty() {
                store.list_plugin_configs(Some(t.id)).await?
            } else {
                let mut found = Vec::new();
                for key in &plugins {
                    found.push(registry::find_plugin(store, key).await.map_err(usage)?);
                }
                registry::reorder(store, &t, &found).await.map_err(usage)?
            };
            for (c, name) in listing::named(store, configs).await? {
                super::print(format!("{:>3}  {name}{}", c.order, if c.enabled { "" } else { " (disabled)" }))?;
            }
        }
        Action::Logs { id, follow, level } => logs(store, id, follow, level).await?,
        Action::Remove { plugin } => {
            let p = registry::find_plugin(store, &plugin).await.map_err(usage)?;
            store.remove_plugin(p.id).await?;
            eprintln!("removed plugin {} \"{}\" with its configs, storage and logs", p.id, p.name);
        }
        Action::New { .. } | Action::Test { .. } | Action::Reload { .. } => unreachable!("handled in run"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn reload(settings: &StoreSettings, channel: &str) -> anyhow::Result<ExitCode> {
    match &settings.redis_url {
        Some(url) => {
            let cache = phs::cache::redis::RedisCache::connect(url).await?;
            let receivers = cache.publish(channel, "reload").await?;
            eprintln!(
                "published on `{channel}` ({receivers} subscribers); running phs instances pick up plugin changes within 2 s"
            );
        }
        None => eprintln!("running phs instances pick up plugin changes within 2 s; nothing else to do"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn logs(store: &dyn phs::store::Store, id: i64, follow: bool, level: Option<LogLevel>) -> anyhow::Result<()> {
    let mut reader = LogReader::new(id, level.unwrap_or(LogLevel::Debug));
    loop {
        let entries = reader.next_page(store).await?;
        for e in &entries {
            super::print(format!(
                "{} {:<7} {:<5} {}",
                e.timestamp.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                e.source,
                e.level,
                e.message
            ))?;
        }
        if !follow {
            return Ok(());
        }
        reader.wait_for_more().await;
    }
}

async fn test(
    dir: PathBuf,
    events: Vec<String>,
    config: Vec<String>,
    json: bool,
    opts: fixtures::RunOptions,
) -> anyhow::Result<ExitCode> {
    let invalid = |e: &dyn std::fmt::Display| UsageError(format!("{}: {e}", dir.display()));
    let source = PluginSource::from_dir(&dir).map_err(|e| invalid(&e))?;
    let overrides = parse_pairs(&config)?;

    if !events.is_empty() {
        let events = events.iter().map(|raw| read_event(raw)).collect::<anyhow::Result<Vec<_>>>()?;
        let (outcomes, logs) =
            fixtures::run_events(&source, &overrides, &events, &opts).await.map_err(|e| invalid(&e))?;
        print_logs(&logs);
        let mut failed = false;
        for outcome in outcomes {
            failed |= matches!(outcome, Outcome::Error { .. });
            super::print(serde_json::to_string(&outcome)?)?;
        }
        return Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS });
    }

    let cases = fixtures::load_fixtures(&dir).map_err(|e| invalid(&e))?;
    let (mut passed, mut failed) = (0, 0);
    for (name, mut fixture) in cases {
        fixture.config.extend(overrides.clone());
        let report = fixtures::check(&source, &name, &fixture, &opts).await.map_err(|e| invalid(&e))?;
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
