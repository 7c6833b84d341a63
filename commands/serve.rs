//! `phs serve`: run the server until SIGINT or SIGTERM. The first signal
//! drains (the batches in hand are written and committed); a second one, or
//! PHS_SHUTDOWN_TIMEOUT_SECONDS without the drain finishing, exits at once
//! with code 1, leaving the uncommitted events to be delivered again.

use std::process::ExitCode;

use clap::Args;
use phs::config::ServeSettings;

/// Run the plugin server: ingestion, plugins, scheduled tasks, jobs and the admin listener.
///
/// Every setting is also an environment variable, named as in the original
/// plugin server; the flag wins when both are given.
#[derive(Debug, Args)]
pub struct Opts {
    #[command(flatten)]
    pub settings: ServeSettings,
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let runtime = phs::server::Runtime::build(&opts.settings)
        .map_err(|e| super::UsageError(format!("MMDB_FILE_LOCATION: {e}")))?;
    for notice in opts.settings.store.kafka.slow_producer() {
        tracing::warn!("{notice}");
    }
    let bound = std::time::Duration::from_secs(opts.settings.shutdown_timeout_seconds);
    let (signalled, first) = tokio::sync::oneshot::channel();
    let shutdown = async move {
        shutdown_signal().await;
        let _ = signalled.send(());
    };
    let forced = async move {
        if first.await.is_err() {
            // The server ended on its own: nothing to force.
            return std::future::pending().await;
        }
        tokio::select! {
            _ = shutdown_signal() => "a second signal",
            _ = tokio::time::sleep(bound) => "PHS_SHUTDOWN_TIMEOUT_SECONDS",
        }
    };
    let data_dir = opts.settings.store.data_dir.clone();
    tokio::select! {
        served = phs::server::run(opts.settings, runtime, shutdown) => {
            served?;
            // Only now: any other way out leaves the embedded files to be checked at the next start.
            phs::migrate::recover::stopped_cleanly(&data_dir);
            Ok(ExitCode::SUCCESS)
        }
        why = forced => {
            tracing::error!("exiting before the batches in hand were committed ({why}); they will be delivered again");
            // At once: the runtime's shutdown would wait for the very tasks being abandoned.
            std::process::exit(1)
        }
    }
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
