//! `phs serve`: run the server until SIGINT or SIGTERM.

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
    phs::server::run(opts.settings, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
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
