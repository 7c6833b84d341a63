//! The `phs` binary: parse the command line, set up logging, run one
//! subcommand, and turn its outcome into an exit code (0 ok, 1 the checked
//! thing failed, 2 usage or configuration error; a closed stdout is not an error).

#[path = "../commands/mod.rs"]
mod commands;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc's malloc: ingestion allocates and frees many
/// small JSON values per event, and glibc's allocator (with its free-list
/// consolidation) took about 45% of `phs serve`'s CPU in a profile of
/// `scripts/bench ingest production`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Node-only variables are mapped onto phs's before clap reads the environment.
    let env: Vec<(String, String)> = std::env::vars().collect();
    let (sets, notices) = phs::config::legacy::plan(&env);
    for (key, value) in sets {
        // SAFETY: no other thread exists yet; the runtime is built below.
        unsafe { std::env::set_var(key, value) };
    }

    let cli = commands::Cli::parse();
    phs::telemetry::init(cli.log_level, cli.log_format);
    for notice in notices {
        tracing::warn!("{}", notice.0);
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("phs: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli.command)) {
        Ok(code) => code,
        Err(err) => report(err),
    }
}

fn report(err: anyhow::Error) -> ExitCode {
    for cause in err.chain() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return ExitCode::SUCCESS;
            }
        }
    }
    if let Some(usage) = err.downcast_ref::<commands::UsageError>() {
        eprintln!("phs: {usage}");
        return ExitCode::from(2);
    }
    eprintln!("phs: {err:#}");
    ExitCode::from(1)
}
