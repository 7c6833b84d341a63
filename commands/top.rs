//! `phs top`: a live terminal dashboard of lag, worker load and plugin errors.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use phs::instances;
use phs_tui::{InstanceStatus, Snapshot};

/// Watch running instances: consumer lag, worker load, plugins and their errors.
///
/// Keys: q quit, ? help, Tab/arrows/hjkl move, / filter, s sort, 1-9 sort
/// column, r reverse, f freeze, e enlarge, Enter error details.
#[derive(Debug, Args)]
pub struct Opts {
    /// Admin address or URL of an instance (repeatable); default: the instances of
    /// --peers, else every instance in the heartbeats (with REDIS_URL), else the local one.
    #[arg(long = "server", value_name = "URL")]
    pub servers: Vec<String>,

    /// A file listing the instances to watch, one admin address or URL per line (`#` comments);
    /// re-read every 10 s, for deployments without Redis.
    #[arg(long, env = "PHS_PEERS_FILE", value_name = "FILE")]
    pub peers: Option<std::path::PathBuf>,

    /// Seconds between polls (the screen redraws on keys and new data, independently).
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,

    /// Print one snapshot and exit: a text rendering, or JSON with --json.
    #[arg(long)]
    pub once: bool,

    /// With --once: print the snapshot as JSON for scripts.
    #[arg(long, requires = "once")]
    pub json: bool,

    /// When to use colours; `auto` colours a terminal unless NO_COLOR is set.
    #[arg(long, default_value = "auto")]
    pub color: Color,

    /// Where heartbeats are read to discover instances.
    #[arg(long, env = "REDIS_URL", value_name = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<url::Url>,

    /// The local instance, used when no --server is given and REDIS_URL is unset.
    #[arg(long, env = "ADMIN_ADDR", value_name = "ADMIN_ADDR", default_value = "127.0.0.1:6738")]
    pub admin_addr: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// Re-reading heartbeats (or the peers file) every poll would cost a Redis scan a second for nothing.
const REDISCOVER: Duration = Duration::from_secs(10);

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    if !(opts.interval.is_finite() && opts.interval >= 0.1) {
        return Err(super::UsageError(format!("--interval must be at least 0.1 seconds, not {}", opts.interval)).into());
    }
    let interactive = !opts.once;
    if interactive && !(std::io::stdout().is_terminal() && std::io::stdin().is_terminal()) {
        return Err(super::UsageError(
            "phs top needs a terminal (stdin and stdout are not both terminals); in scripts use `phs top --once --json`"
                .into(),
        )
        .into());
    }
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let mut servers = discover(&opts).await?;
    if opts.once {
        let snapshot = instances::poll_all(&client, &servers, &Snapshot::default()).await;
        if opts.json {
            super::print(serde_json::to_string_pretty(&snapshot)?)?;
        } else {
            let mut app = phs_tui::app::App::new(opts.interval);
            app.update(snapshot.clone());
            let theme = phs_tui::theme::Theme { color: colour(opts.color) };
            super::print(phs_tui::term::render_text(&app, theme, 120, 40).trim_end())?;
        }
        let all_up = snapshot.instances.iter().all(|i| i.status == InstanceStatus::Healthy);
        return Ok(if all_up { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }

    let (tx, rx) = std::sync::mpsc::channel();
    let tui_opts = phs_tui::term::Options { color: colour(opts.color), interval: opts.interval };
    let interval = Duration::from_secs_f64(opts.interval);
    let poller = tokio::spawn(async move {
        let mut last = Snapshot::default();
        let mut discovered_at = tokio::time::Instant::now();
        let mut every = tokio::time::interval(interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if discovered_at.elapsed() >= REDISCOVER {
                discovered_at = tokio::time::Instant::now();
                // Instances seen once stay listed, shown as down when they go away.
                for s in discover(&opts).await.unwrap_or_default() {
                    if !servers.contains(&s) {
                        servers.push(s);
                    }
                }
            }
            last = instances::poll_all(&client, &servers, &last).await;
            if tx.send(last.clone()).is_err() {
                return;
            }
        }
    });
    let result = tokio::task::spawn_blocking(move || phs_tui::term::run(rx, tui_opts)).await?;
    poller.abort();
    result?;
    Ok(ExitCode::SUCCESS)
}

pub fn colour(choice: Color) -> bool {
    match choice {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

/// The servers to watch: --server, else --peers, else the heartbeats in Redis, else the local instance.
async fn discover(opts: &Opts) -> anyhow::Result<Vec<String>> {
    if !opts.servers.is_empty() {
        return Ok(opts.servers.clone());
    }
    if let Some(path) = &opts.peers {
        return Ok(instances::peers(path)?);
    }
    let Some(url) = &opts.redis_url else { return Ok(vec![opts.admin_addr.clone()]) };
    Ok(instances::admin_addrs(url).await?)
}
