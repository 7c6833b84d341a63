//! The dashboard's state and what each key does to it. No terminal here:
//! keys come in as crossterm events, so tests drive the app directly.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use regex::Regex;

use crate::panels::{self, Key, Panel, Row};
use phs_report::Snapshot;

/// What the keyboard is talking to.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    Help,
    /// Typing a filter regex; `error` says why the text does not compile yet.
    Filter {
        input: String,
        error: Option<String>,
    },
    SortMenu,
    /// The full error of the selected row in the errors panel.
    ErrorDetail,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sort {
    /// Column index; None keeps the instance's order (newest error first).
    pub column: Option<usize>,
    pub reverse: bool,
}

pub struct App {
    pub snapshot: Snapshot,
    pub focus: Panel,
    pub mode: Mode,
    pub filter: Option<Regex>,
    pub sort: [Sort; 4],
    pub selected: [usize; 4],
    pub frozen: bool,
    pub enlarged: bool,
    pub quit: bool,
    /// Seconds between polls, shown in the header.
    pub interval: f64,
}

impl App {
    pub fn new(interval: f64) -> Self {
        App {
            snapshot: Snapshot::default(),
            focus: Panel::Lag,
            mode: Mode::Normal,
            filter: None,
            sort: [Sort::default(); 4],
            selected: [0; 4],
            frozen: false,
            enlarged: false,
            quit: false,
            interval,
        }
    }

    /// A new poll result; ignored while frozen. True when the view changed.
    pub fn update(&mut self, snapshot: Snapshot) -> bool {
        if self.frozen {
            return false;
        }
        self.snapshot = snapshot;
        true
    }

    /// The rows of a panel after filter and sort.
    pub fn rows(&self, panel: Panel) -> Vec<Row> {
        let mut rows = panels::rows(panel, &self.snapshot);
        if let Some(re) = &self.filter {
            rows.retain(|r| r.cells.iter().any(|c| re.is_match(c)));
        }
        let sort = self.sort[panel.index()];
        if let Some(col) = sort.column {
            rows.sort_by(|a, b| match (&a.keys[col], &b.keys[col]) {
                (Key::Num(x), Key::Num(y)) => x.total_cmp(y),
                (Key::Text(x), Key::Text(y)) => x.cmp(y),
                _ => std::cmp::Ordering::Equal,
            });
            // Numbers read best largest first; names alphabetically.
            if matches!(rows.first().map(|r| &r.keys[col]), Some(Key::Num(_))) {
                rows.reverse();
            }
        }
        if sort.reverse {
            rows.reverse();
        }
        rows
    }

    /// The selected row of a panel, clamped to what is there.
    pub fn selection(&self, panel: Panel) -> Option<usize> {
        let n = self.rows(panel).len();
        (n > 0).then(|| self.selected[panel.index()].min(n - 1))
    }

    pub fn handle(&mut self, key: KeyEvent) {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        match self.mode.clone() {
            Mode::Normal => self.normal(key.code),
            Mode::Help | Mode::ErrorDetail => {
                if matches!(key.code, KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q' | '?')) {
                    self.mode = Mode::Normal;
                }
            }
            Mode::SortMenu => match key.code {
                KeyCode::Char(c @ '1'..='9') => {
                    self.sort_by(c);
                    self.mode = Mode::Normal;
                }
                KeyCode::Esc | KeyCode::Char('s' | 'q') => self.mode = Mode::Normal,
                _ => {}
            },
            Mode::Filter { mut input, .. } => match key.code {
                KeyCode::Esc => self.mode = Mode::Normal,
                KeyCode::Enter => {
                    if input.is_empty() {
                        self.filter = None;
                        self.mode = Mode::Normal;
                    } else {
                        match Regex::new(&format!("(?i){input}")) {
                            Ok(re) => {
                                self.filter = Some(re);
                                self.selected = [0; 4];
                                self.mode = Mode::Normal;
                            }
                            Err(e) => {
                                let error = e.to_string().lines().last().unwrap_or("invalid regex").trim().to_string();
                                self.mode = Mode::Filter { input, error: Some(error) };
                            }
                        }
                    }
                }
                KeyCode::Backspace => {
                    input.pop();
                    self.mode = Mode::Filter { input, error: None };
                }
                KeyCode::Char(c) => {
                    input.push(c);
                    self.mode = Mode::Filter { input, error: None };
                }
                _ => {}
            },
        }
    }

    fn normal(&mut self, code: KeyCode) {
        let i = self.focus.index();
        match code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Tab | KeyCode::Right | KeyCode::Char('l') => self.focus = Panel::ALL[(i + 1) % 4],
            KeyCode::BackTab | KeyCode::Left | KeyCode::Char('h') => self.focus = Panel::ALL[(i + 3) % 4],
            KeyCode::Down | KeyCode::Char('j') => {
                let n = self.rows(self.focus).len();
                self.selected[i] = (self.selected[i] + 1).min(n.saturating_sub(1));
            }
            KeyCode::Up | KeyCode::Char('k') => self.selected[i] = self.selected[i].saturating_sub(1),
            KeyCode::Home | KeyCode::Char('g') => self.selected[i] = 0,
            KeyCode::End | KeyCode::Char('G') => self.selected[i] = self.rows(self.focus).len().saturating_sub(1),
            KeyCode::Char('/') => {
                let input = self.filter.as_ref().map(|r| r.as_str().trim_start_matches("(?i)").to_string());
                self.mode = Mode::Filter { input: input.unwrap_or_default(), error: None };
            }
            KeyCode::Esc => self.filter = None,
            KeyCode::Char('s') => self.mode = Mode::SortMenu,
            KeyCode::Char(c @ '1'..='9') => self.sort_by(c),
            KeyCode::Char('r') => self.sort[i].reverse = !self.sort[i].reverse,
            KeyCode::Char('f') => self.frozen = !self.frozen,
            KeyCode::Char('e') => self.enlarged = !self.enlarged,
            KeyCode::Enter if self.focus == Panel::Errors && self.selection(Panel::Errors).is_some() => {
                self.mode = Mode::ErrorDetail
            }
            _ => {}
        }
    }

    /// Sorts the focused panel by column `c` (1-based); again reverses it.
    fn sort_by(&mut self, c: char) {
        let col = c as usize - '1' as usize;
        if col >= self.focus.columns().len() {
            return;
        }
        let sort = &mut self.sort[self.focus.index()];
        if sort.column == Some(col) {
            sort.reverse = !sort.reverse;
        } else {
            *sort = Sort { column: Some(col), reverse: false };
        }
    }

    /// The keys of the current view, for the footer.
    pub fn footer_keys(&self) -> Vec<(&'static str, &'static str)> {
        match &self.mode {
            Mode::Normal => {
                let mut keys = vec![("q", "quit"), ("?", "help"), ("Tab", "panel"), ("j/k", "move")];
                if self.focus == Panel::Errors {
                    keys.push(("Enter", "details"));
                }
                keys.extend([
                    ("/", "filter"),
                    ("s", "sort"),
                    ("r", "reverse"),
                    ("f", if self.frozen { "unfreeze" } else { "freeze" }),
                    ("e", if self.enlarged { "shrink" } else { "enlarge" }),
                ]);
                if self.filter.is_some() {
                    keys.push(("Esc", "clear filter"));
                }
                keys
            }
            Mode::Help => vec![("Esc/?", "close help")],
            Mode::ErrorDetail => vec![("Esc/Enter", "close")],
            Mode::SortMenu => vec![("1-9", "sort by column"), ("Esc", "cancel")],
            Mode::Filter { .. } => vec![("Enter", "apply"), ("Esc", "cancel"), ("empty+Enter", "clear")],
        }
    }
}
