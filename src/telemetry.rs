//! Logging setup. Logs always go to stderr: several commands print data on
//! stdout (`teams list --json`, `completions`), and logs must never mix in.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogLevel};

/// Installs the global subscriber. RUST_LOG, when set, refines LOG_LEVEL
/// per module (e.g. `RUST_LOG=phs::migrate=debug`).
pub fn init(level: LogLevel, format: LogFormat) {
    let base = match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info | LogLevel::Log => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
        LogLevel::None => "off",
    };
    // Dependencies are noisy at debug; keep them at warn unless asked.
    let mut filter = EnvFilter::new(format!("warn,phs={base}"));
    if let Ok(extra) = std::env::var("RUST_LOG") {
        for directive in extra.split(',').filter_map(|d| d.parse().ok()) {
            filter = filter.add_directive(directive);
        }
    }
    // Colour only for a person at a terminal; NO_COLOR (no-color.org) turns it off.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
