//! `phs replay`: re-run past events through plugins, to debug them or re-ingest.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{ArgGroup, Args};
use phs::config::StoreSettings;
use phs::replay::overlay::Network;
use phs::replay::render::{self, Style};
use phs::replay::select::{End, Origin, Selector, Start};
use phs::replay::{Filters, Options, ReplayError};

use super::top::Color;

/// Re-run past events from the ingestion log (Kafka or local) through plugins.
///
/// By default a dry run: each selected event goes through normalize, its
/// team and the team's processEvent chain as installed now, and what each
/// plugin changed, dropped or failed with is printed. Nothing is written:
/// plugins' storage, cache, jobs, captures and config errors stay in an
/// in-memory overlay that reads through to the real stores. With --reingest
/// the events are ingested again instead (uuids are kept, so ClickHouse
/// collapses duplicates).
///
/// Replay reads with its own partition assignment and never joins the
/// server's consumer group or moves its offsets.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("start").required(true).args(["from_offset", "from_beginning", "from_timestamp"])))]
pub struct Opts {
    /// First offset to replay (inclusive; a dead letter's id with --dead-letters).
    #[arg(long, value_name = "OFFSET", help_heading = "Selection")]
    pub from_offset: Option<i64>,

    /// Replay from the oldest retained message.
    #[arg(long, help_heading = "Selection")]
    pub from_beginning: bool,

    /// Replay from this time: RFC 3339 (2026-12-01T10:00:00Z) or relative (-2h, -30m, -7d).
    #[arg(long, value_name = "TIME", value_parser = phs::replay::select::parse_time, allow_hyphen_values = true, help_heading = "Selection")]
    pub from_timestamp: Option<chrono::DateTime<chrono::Utc>>,

    /// Last offset to replay (inclusive); default: the end of the log when replay starts.
    #[arg(long, value_name = "OFFSET", help_heading = "Selection")]
    pub to_offset: Option<i64>,

    /// Stop at the first message after this time (RFC 3339 or relative).
    #[arg(long, value_name = "TIME", value_parser = phs::replay::select::parse_time, allow_hyphen_values = true, help_heading = "Selection")]
    pub until: Option<chrono::DateTime<chrono::Utc>>,

    /// Stop after this many selected events.
    #[arg(long, value_name = "N", help_heading = "Selection")]
    pub limit: Option<u64>,

    /// Keep reading new messages after the end, until Ctrl-C.
    #[arg(long, help_heading = "Selection")]
    pub follow: bool,

    /// Partition to read (repeatable); default: every partition.
    #[arg(long = "partition", value_name = "P", help_heading = "Selection")]
    pub partitions: Vec<i32>,

    /// Topic to read, before KAFKA_PREFIX (the overflow and dead-letter topics too); default: KAFKA_CONSUMPTION_TOPIC.
    #[arg(long, help_heading = "Selection", conflicts_with = "dead_letters")]
    pub topic: Option<String>,

    /// Read the embedded dead-letter table instead of the log (with Kafka, use --topic <topic>_dlq).
    #[arg(long, help_heading = "Selection")]
    pub dead_letters: bool,

    /// Only events of this team (id, name or API token).
    #[arg(long, help_heading = "Filters")]
    pub team: Option<String>,

    #[arg(long, help_heading = "Filters")]
    pub distinct_id: Option<String>,

    /// Only events with this name.
    #[arg(long, help_heading = "Filters")]
    pub event: Option<String>,

    #[arg(long, help_heading = "Filters")]
    pub uuid: Option<String>,

    /// Only dead letters refused for this reason (e.g. invalid_uuid, store_refused).
    #[arg(long, help_heading = "Filters")]
    pub reason: Option<String>,

    /// Only run this plugin config (repeatable); default: all of the team's plugins in order.
    #[arg(long = "plugin-config", value_name = "ID", help_heading = "Plugins")]
    pub plugin_configs: Vec<i64>,

    /// Run a plugin from a local folder instead of the installed plugin of the same name.
    #[arg(long, value_name = "DIR", help_heading = "Plugins", conflicts_with = "compare")]
    pub plugin_dir: Option<PathBuf>,

    /// Run the installed plugin and this local version side by side; print the events whose output differs.
    #[arg(long, value_name = "DIR", help_heading = "Plugins")]
    pub compare: Option<PathBuf>,

    /// Let plugins' fetch reach private and loopback addresses, as the server allows.
    #[arg(long, env = "PHS_PLUGIN_FETCH_ALLOW_PRIVATE", help_heading = "Plugins")]
    pub fetch_allow_private: bool,

    /// Send no request at all (by default GET and HEAD go out; other methods never do).
    #[arg(long, help_heading = "Plugins")]
    pub offline: bool,

    /// Also run the persons stage and show the person writes it would make (properties, distinct ids, merges).
    #[arg(long, help_heading = "Plugins", conflicts_with = "compare")]
    pub persons: bool,

    /// Print every event, also those no plugin changed.
    #[arg(long, help_heading = "Output")]
    pub all: bool,

    /// List each event's side effects (storage, cache, jobs, captures, requests).
    #[arg(long, help_heading = "Output")]
    pub side_effects: bool,

    /// Print only the summary.
    #[arg(long, short = 'q', help_heading = "Output", conflicts_with = "all")]
    pub quiet: bool,

    /// One JSON object per event, then a summary object, on stdout.
    #[arg(long, help_heading = "Output")]
    pub json: bool,

    #[arg(long, value_enum, default_value = "auto", help_heading = "Output")]
    pub color: Color,

    /// Tasks running plugins at once, each with its own plugin states; 0: one per core.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,

    /// Ingest the selected events again instead of a dry run.
    #[arg(long)]
    pub reingest: bool,

    /// With --reingest: do not ask for confirmation.
    #[arg(long, short = 'y', requires = "reingest")]
    pub yes: bool,

    /// With --reingest: write event and property definitions, as `phs serve` does with this set.
    #[arg(long, env = "PHS_DEFINITIONS", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub definitions: bool,

    /// With --reingest: also write the ClickHouse Kafka topics, as `phs serve` does with this set.
    // No `requires`: the variable is often set for `phs serve` in the same environment.
    #[arg(long, env = "PHS_KAFKA_CLICKHOUSE_TOPICS")]
    pub kafka_clickhouse_topics: bool,

    #[command(flatten)]
    pub store: StoreSettings,
}

impl Opts {
    pub(super) fn selector(&self) -> Result<Selector, super::UsageError> {
        let start = match (self.from_offset, self.from_timestamp) {
            (Some(n), _) => Start::Offset(n),
            (None, Some(t)) => Start::Time(t),
            (None, None) => Start::Beginning,
        };
        let origin = match (&self.store.kafka.kafka_hosts, self.dead_letters) {
            (Some(_), true) => {
                let dlq = format!("{}_dlq", self.store.kafka.kafka_consumption_topic);
                return Err(super::UsageError(format!(
                    "--dead-letters reads the embedded dead-letter table; with Kafka, replay the topic: --topic {dlq}"
                )));
            }
            (Some(_), false) => Origin::Kafka {
                settings: Box::new(self.store.kafka.clone()),
                topic: self.topic.clone().unwrap_or_else(|| self.store.kafka.kafka_consumption_topic.clone()),
            },
            (None, _) if self.topic.is_some() => {
                return Err(super::UsageError(
                    "--topic needs KAFKA_HOSTS; embedded, replay reads the local log".into(),
                ));
            }
            (None, true) => Origin::DeadLetters(self.store.data_dir.clone()),
            (None, false) => Origin::LocalLog(self.store.data_dir.clone()),
        };
        let end = End { offset: self.to_offset, until: self.until, follow: self.follow };
        Ok(Selector { origin, start, end, partitions: self.partitions.clone() })
    }
}

pub(super) fn fail(e: ReplayError) -> anyhow::Error {
    match e {
        ReplayError::Usage(m) => super::UsageError(m).into(),
        ReplayError::Failed(m) => anyhow::anyhow!(m),
    }
}

impl Opts {
    /// The filters, with `--team` resolved to its token (an unknown team is a usage error).
    pub(super) async fn filters(&self, store: &dyn phs::store::Store) -> anyhow::Result<Filters> {
        let token = match &self.team {
            Some(key) => Some(
                phs::plugins::registry::find_team(store, key)
                    .await
                    .map_err(|e| super::UsageError(e.to_string()))?
                    .api_token,
            ),
            None => None,
        };
        Ok(Filters {
            token,
            distinct_id: self.distinct_id.clone(),
            event: self.event.clone(),
            uuid: self.uuid.clone(),
            reason: self.reason.clone(),
        })
    }

    pub(super) fn runner(&self) -> phs::plugins::runner::RunnerOptions {
        phs::plugins::runner::RunnerOptions {
            fetch: phs::plugins::fetch::FetchPolicy { allow_private: self.fetch_allow_private, ..Default::default() },
            ..Default::default()
        }
    }
}

/// Stops the run cleanly on Ctrl-C.
pub(super) fn interruptible() -> tokio_util::sync::CancellationToken {
    let stop = tokio_util::sync::CancellationToken::new();
    let interrupt = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            interrupt.cancel();
        }
    });
    stop
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let selector = opts.selector()?;
    let store = phs::store::connect(&opts.store).await?;
    let cache = phs::cache::connect(opts.store.redis_url.as_ref()).await?;
    let filters = opts.filters(store.as_ref()).await?;
    if opts.reingest {
        return super::replay_reingest::run(&opts, selector, filters, store, cache).await;
    }
    let network = if opts.offline { Network::Offline } else { Network::Reads };
    let progress = progress_bar();
    let options = Options {
        selector,
        filters,
        limit: opts.limit,
        shards: match opts.threads {
            0 => phs::config::cores(),
            n => n,
        },
        runner: opts.runner(),
        only: opts.plugin_configs.clone(),
        plugin_dir: opts.plugin_dir.clone(),
        compare: opts.compare.clone(),
        network,
        persons: opts.persons.then(|| store.clone() as Arc<dyn phs::store::PersonStore>),
        progress: progress.clone(),
    };
    let style = Style {
        color: super::top::colour(opts.color),
        all: opts.all,
        side_effects: opts.side_effects,
        compare: opts.compare.is_some(),
    };
    if !opts.json {
        progress.suspend(|| eprintln!("{}", render::dry_run_notice(network)));
    }
    let stop = interruptible();
    let mut stdout = std::io::stdout().lock();
    let (json, quiet) = (opts.json, opts.quiet);
    let out = |report: phs::replay::report::EventReport, redactor: &phs::replay::Redactor| {
        if quiet {
            return true;
        }
        let text = match json {
            true if render::printed(&report, &style, true) => serde_json::to_string(&report).ok(),
            true => None,
            false => render::event(&report, &style),
        };
        let Some(text) = text else { return true };
        progress.suspend(|| writeln!(stdout, "{}", redactor.redact(text.trim_end())).is_ok())
    };
    let summary = phs::replay::dry_run(&options, phs::plugins::runner::Backends::of(store, cache), stop, out)
        .await
        .map_err(fail)?;
    let text = if json {
        serde_json::to_string(&serde_json::json!({"summary": summary}))?
    } else {
        render::summary(&summary, &style, true)
    };
    // The summary goes where the events went, unless that was closed.
    if writeln!(std::io::stdout(), "{}", text.trim_end()).is_err() {
        return Ok(ExitCode::SUCCESS);
    }
    Ok(if summary.interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

/// A bar on stderr when it is a terminal: events read, rate, ETA.
pub fn progress_bar() -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} {bar:30} {human_pos}/{human_len} events  {rate}  eta {eta}  {elapsed}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{:.0} events/s", state.per_sec());
    });
    bar.set_style(style);
    bar
}
