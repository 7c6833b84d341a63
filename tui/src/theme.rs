//! Colours, or none: NO_COLOR and `--color never` give plain text where
//! selection and emphasis use reverse video and bold instead.

use ratatui::style::{Color, Modifier, Style};

/// How a value reads against its thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Bad,
    /// Data from an instance that is down: last known, not current.
    Stale,
}

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn level(&self, level: Level) -> Style {
        if !self.color {
            return match level {
                Level::Bad => Style::new().add_modifier(Modifier::BOLD),
                _ => Style::new(),
            };
        }
        match level {
            Level::Ok => Style::new().fg(Color::Green),
            Level::Warn => Style::new().fg(Color::Yellow),
            Level::Bad => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            Level::Stale => Style::new().fg(Color::DarkGray),
        }
    }

    pub fn selected(&self) -> Style {
        if self.color {
            Style::new().bg(Color::Blue).fg(Color::White)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }

    pub fn focused_border(&self) -> Style {
        if self.color { Style::new().fg(Color::Cyan) } else { Style::new().add_modifier(Modifier::BOLD) }
    }

    pub fn header(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn key(&self) -> Style {
        if self.color {
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }
}

/// Lag thresholds: a few seconds of traffic is normal, tens of thousands is not.
pub fn lag_level(lag: i64, catch_up_per_sec: f64) -> Level {
    match lag {
        l if l >= 10_000 => Level::Bad,
        l if l >= 1_000 || (l > 0 && catch_up_per_sec < 0.0) => Level::Warn,
        _ => Level::Ok,
    }
}

pub fn busy_level(ratio: f64) -> Level {
    match ratio {
        r if r >= 0.9 => Level::Bad,
        r if r >= 0.7 => Level::Warn,
        _ => Level::Ok,
    }
}
