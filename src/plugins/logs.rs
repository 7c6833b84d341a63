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

impl LogEntry {
    pub fn new(source: LogSource, level: LogLevel, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_MESSAGE_CHARS {
            let mut cut = MAX_MESSAGE_CHARS;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" …[truncated]");
        }
        LogEntry { source, level, message, timestamp: chrono::Utc::now() }
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
