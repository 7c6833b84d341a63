//! Plugin log entries: what `console.*` writes and what the runtime records
//! about a plugin (errors, limits, disables), with the original's sources
//! and levels.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogSource {
    /// The runtime, about the plugin (setup failed, limit hit, disabled).
    System,
    /// An error thrown by the plugin's own code.
    Plugin,
    /// The plugin's console.* calls.
    Console,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Debug,
    Log,
    Info,
    Warn,
    Error,
}

impl LogSource {
    /// The name stored in the log table's `source` column.
    pub fn as_str(self) -> &'static str {
        match self {
            LogSource::System => "SYSTEM",
            LogSource::Plugin => "PLUGIN",
            LogSource::Console => "CONSOLE",
        }
    }
}

impl LogLevel {
    /// The name stored in the log table's `type` column.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Log => "LOG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub source: LogSource,
    pub level: LogLevel,
    pub message: String,
    pub timestamp: chrono::DateTime<chrono::Utc>,
}

/// The original dropped messages over 50,000 characters; phs keeps their
/// start, marked, so the user still sees what was logged.
pub const MAX_MESSAGE_CHARS: usize = 50_000;

/// The message cut to [`MAX_MESSAGE_CHARS`] bytes (on a character boundary), marked.
/// Also applied to a plugin's error messages, which are stored on its config
/// and kept in the error stream: `error(string.rep("x", 3e7))` must not make
/// 30 MB of each.
pub fn truncated(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_CHARS {
        let mut cut = MAX_MESSAGE_CHARS;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str(" …[truncated]");
    }
    message
}

impl LogEntry {
    pub fn new(source: LogSource, level: LogLevel, message: impl Into<String>) -> Self {
        LogEntry { source, level, message: truncated(message.into()), timestamp: chrono::Utc::now() }
    }
}

/// Where a plugin config's log entries go (the database, a test's buffer, stderr).
pub trait LogSink: Send + Sync {
    fn log(&self, entry: LogEntry);
}

/// Keeps entries in memory; used by `phs plugins test` and tests.
#[derive(Default)]
pub struct MemoryLog(pub std::sync::Mutex<Vec<LogEntry>>);

impl LogSink for MemoryLog {
    fn log(&self, entry: LogEntry) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(entry);
    }
}

impl MemoryLog {
    pub fn take(&self) -> Vec<LogEntry> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl std::str::FromStr for LogLevel {
    type Err = String;

    /// A level by name, in any case: debug, log, info, warn or error.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [LogLevel::Debug, LogLevel::Log, LogLevel::Info, LogLevel::Warn, LogLevel::Error]
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("expected one of debug, log, info, warn, error, not `{s}`"))
    }
}

/// Reads one config's stored log entries page by page, oldest first,
/// keeping those at `min` or above: `phs plugins logs [--follow]`.
pub struct LogReader {
    config_id: i64,
    min: LogLevel,
    after: Option<chrono::DateTime<chrono::Utc>>,
    /// The last page was full: another may be read at once.
    more: bool,
}

/// How long `--follow` waits before asking again once it has caught up.
pub const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Entries read per page.
pub const LOG_PAGE: i64 = 1000;

impl LogReader {
    pub fn new(config_id: i64, min: LogLevel) -> Self {
        LogReader { config_id, min, after: None, more: false }
    }

    /// The next entries since the last page.
    pub async fn next_page(
        &mut self,
        store: &dyn crate::store::PluginStore,
    ) -> crate::store::Result<Vec<crate::store::PluginLog>> {
        let entries = store.plugin_logs(self.config_id, self.after, LOG_PAGE).await?;
        self.after = entries.last().map(|e| e.timestamp).or(self.after);
        self.more = entries.len() as i64 >= LOG_PAGE;
        // An entry with a level this version does not know is shown rather than hidden.
        Ok(entries.into_iter().filter(|e| e.level.parse::<LogLevel>().map_or(true, |l| l >= self.min)).collect())
    }

    /// For `--follow`, between pages: at once after a full page, else
    /// [`FOLLOW_INTERVAL`], so a caught-up reader does not spin on the store.
    pub async fn wait_for_more(&self) {
        if !self.more {
            tokio::time::sleep(FOLLOW_INTERVAL).await;
        }
    }
}

#[cfg(test)]
mod level_tests {
    use super::*;

    #[test]
    fn levels_parse_in_any_case_and_order_by_severity() {
        assert_eq!("warn".parse::<LogLevel>(), Ok(LogLevel::Warn));
        assert_eq!("ERROR".parse::<LogLevel>(), Ok(LogLevel::Error));
        assert!("loud".parse::<LogLevel>().is_err());
        assert!(LogLevel::Debug < LogLevel::Log && LogLevel::Warn < LogLevel::Error);
    }
}
