//! `phs replay`: past events run again through plugins, to see what each
//! plugin does to them (a dry run, the default) or to ingest them again.
//!
//! ```text
//!   select (Kafka topic | local log | dead letters; offsets, times, partitions)
//!     -> decode, filter, team          (one task)
//!     -> processEvent chain, traced    (one shard per core, each with its own Lua states)
//!        in the overlay: reads see the real stores, writes stay in memory
//!     -> reports in read order -> render (human, --json) and the summary
//! ```
//!
//! Replay sits beside `server`: it uses the pipeline's stages and the plugin
//! runner, and nothing below imports it.

pub mod diff;
mod engine;
pub mod overlay;
pub mod reingest;
pub mod render;
pub mod report;
pub mod select;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio_util::sync::CancellationToken;

pub use self::engine::Overlays;
use self::overlay::{Network, Overlay, Replacement};
use self::report::{EventReport, Summary};
use self::select::Selector;
use crate::pipeline::team::TeamCache;
use crate::plugins::runner::{Backends, RunnerOptions};

/// Why a replay could not run: a usage error (exit 2) names what was asked
/// wrongly; a failure (exit 1) is something unreachable or broken.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

/// Filters on the events' contents (and a dead letter's reason).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// The API token of the team asked for.
    pub token: Option<String>,
    pub distinct_id: Option<String>,
    pub event: Option<String>,
    pub uuid: Option<String>,
    pub reason: Option<String>,
}

impl Filters {
    /// Whether any filter needs the decoded event.
    fn on_contents(&self) -> bool {
        self.token.is_some() || self.distinct_id.is_some() || self.event.is_some() || self.uuid.is_some()
    }
}

pub struct Options {
    pub selector: Selector,
    pub filters: Filters,
    /// Stop after this many selected events.
    pub limit: Option<u64>,
    /// Tasks running plugins at once, each with its own plugin states.
    pub shards: usize,
    pub runner: RunnerOptions,
    /// Run only these plugin configs (empty: the team's whole chain).
    pub only: Vec<i64>,
    /// A local plugin folder run instead of the installed plugin of its name.
    pub plugin_dir: Option<PathBuf>,
    /// A local plugin folder run beside the installed one (`--compare`).
    pub compare: Option<PathBuf>,
    pub network: Network,
    /// Also run the persons stage and show the person writes it would make.
    pub persons: Option<Arc<dyn crate::store::PersonStore>>,
    /// Shown on stderr when it is a terminal; hidden otherwise.
    pub progress: indicatif::ProgressBar,
}

impl Options {
    fn on_total(&self, total: Option<u64>) {
        if let Some(t) = total {
            self.progress.set_length(t);
        }
    }
}

pub use crate::plugins::secrets::Redactor;

/// Every installed config's secrets, for masking replay's output: a plugin
/// may put one in a request URL, an error or an event, and the output is for people.
pub async fn secrets(plugins: &dyn crate::store::PluginStore) -> Result<Redactor, ReplayError> {
    let failed = |e: crate::store::StoreError| ReplayError::Failed(format!("reading the plugin configs: {e}"));
    let installed = plugins.list_plugins().await.map_err(failed)?;
    let mut values = Vec::new();
    for config in plugins.list_plugin_configs(None).await.map_err(failed)? {
        if let Some(plugin) = installed.iter().find(|p| p.id == config.plugin_id) {
            values.extend(crate::plugins::registry::secret_values(plugin, &config));
        }
    }
    Ok(Redactor::new(values))
}

/// The dry run over `real` (the stores, read but never written): each
/// selected event's report goes to `out` in read order, with the
/// [`Redactor`] its output must pass through (`out` returning false stops
/// the run, as when stdout is closed); then the summary.
pub async fn dry_run(
    options: &Options,
    real: Backends,
    stop: CancellationToken,
    out: impl FnMut(EventReport, &Redactor) -> bool,
) -> Result<Summary, ReplayError> {
    let local = |dir: &PathBuf| Replacement::from_dir(dir).map_err(ReplayError::Usage);
    let replacement = options.plugin_dir.as_ref().map(local).transpose()?;
    let compared = options.compare.as_ref().map(local).transpose()?;
    for r in replacement.iter().chain(compared.iter()) {
        let plugins = real
            .plugins
            .list_plugins()
            .await
            .map_err(|e| ReplayError::Failed(format!("reading the installed plugins: {e}")))?;
        if !plugins.iter().any(|p| p.name == r.name) {
            return Err(ReplayError::Usage(format!(
                "no installed plugin is named `{}` (the name in the folder's plugin.json); see `phs plugins list`",
                r.name
            )));
        }
    }
    let mut installed = Overlay::new(real.clone(), options.only.clone(), replacement, options.network);
    if let Some(persons) = &options.persons {
        installed = installed.with_persons(persons.clone());
    }
    let overlays = Overlays {
        installed,
        local: compared.map(|c| Overlay::new(real.clone(), options.only.clone(), Some(c), options.network)),
    };
    let teams = Arc::new(TeamCache::new(real.teams.clone()));
    let read = Arc::new(AtomicU64::new(0));
    let ticker = {
        let (read, bar, stop) = (read.clone(), options.progress.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
            while !stop.is_cancelled() {
                tick.tick().await;
                bar.set_position(read.load(std::sync::atomic::Ordering::Relaxed));
            }
        })
    };
    let summary = engine::run(options, teams, &overlays, read, stop, out).await;
    ticker.abort();
    options.progress.finish_and_clear();
    summary
}
