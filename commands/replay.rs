//! `phs replay`: re-run past events through plugins, to debug them or re-ingest.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use phs::config::StoreSettings;

/// Re-run past events from the ingestion log (Kafka or local) through plugins.
///
/// By default a dry run: each event goes through the team's plugins with side
/// effects (storage, cache, captures, exports) kept in an in-memory overlay,
/// and a per-plugin diff of what changed is printed. With --reingest the
/// events are ingested again (uuids are kept, so ClickHouse collapses duplicates).
#[derive(Debug, Args)]
pub struct Opts {
    /// First offset to replay (inclusive).
    #[arg(long, value_name = "OFFSET")]
    pub from_offset: i64,

    /// Last offset to replay (inclusive); default: the end of the log at start.
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,

    /// Partition to read; default: every partition.
    #[arg(long)]
    pub partition: Option<i32>,

    /// Topic to read; default: KAFKA_CONSUMPTION_TOPIC.
    #[arg(long)]
    pub topic: Option<String>,

    /// Only events of this team (id or API token).
    #[arg(long)]
    pub team: Option<String>,

    /// Only run this plugin config (repeatable); default: all of the team's plugins in order.
    #[arg(long = "plugin-config", value_name = "ID")]
    pub plugin_configs: Vec<i64>,

    /// Run a plugin from a local folder instead of the installed version (to test a fix).
    #[arg(long, value_name = "DIR")]
    pub plugin_dir: Option<PathBuf>,

    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<u64>,

    /// Ingest the replayed events again instead of a dry run.
    #[arg(long)]
    pub reingest: bool,

    /// One JSON line per event and plugin on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub store: StoreSettings,
}

pub fn run(_opts: Opts) -> anyhow::Result<ExitCode> {
    super::not_yet_available("replay", "the replay work (dry-run diffs with an in-memory overlay)")
}
