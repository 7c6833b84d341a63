//! `phs plugins`: scaffold, test, install, configure and follow Lua plugins.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use phs::config::StoreSettings;

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
    /// Exit 0 when all passed, 1 when a fixture failed or a call failed or hit
    /// a limit, 2 on a usage error or an invalid plugin.
    Test {
        dir: PathBuf,
        /// An event as JSON, or @FILE (repeatable); prints each result as one JSON line.
        #[arg(long = "event", value_name = "JSON|@FILE")]
        events: Vec<String>,
        /// A config value for the plugin (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
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

pub fn run(_opts: Opts) -> anyhow::Result<ExitCode> {
    super::not_yet_available("plugins", "the Lua plugin runtime")
}
