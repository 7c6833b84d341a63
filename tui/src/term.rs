//! The terminal loop: draw when something changed (a key, a new snapshot, a
//! resize), never on a timer, so an idle dashboard costs next to nothing.
//! Polling happens elsewhere and arrives on a channel: redraw and poll rates
//! are independent.

use std::io;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use crossterm::event::{self, Event, KeyEventKind};
use ratatui::Terminal;
use ratatui::backend::{Backend, TestBackend};

use crate::app::App;
use crate::theme::Theme;
use crate::ui;
use phs_report::Snapshot;

/// How long the loop waits for a key before looking at the channel again.
const TICK: Duration = Duration::from_millis(100);

pub struct Options {
    pub color: bool,
    /// Seconds between polls (shown in the header).
    pub interval: f64,
}

/// Runs the dashboard until the user quits or the poller hangs up.
pub fn run(snapshots: Receiver<Snapshot>, opts: Options) -> io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let result = event_loop(&mut terminal, snapshots, opts);
    ratatui::restore();
    result
}

fn event_loop<B: Backend>(terminal: &mut Terminal<B>, snapshots: Receiver<Snapshot>, opts: Options) -> io::Result<()> {
    let mut app = App::new(opts.interval);
    let theme = Theme { color: opts.color };
    let mut dirty = true;
    loop {
        if dirty {
            terminal.draw(|f| ui::draw(f, &app, theme))?;
            dirty = false;
        }
        if event::poll(TICK)? {
            match event::read()? {
                Event::Key(k) if k.kind == KeyEventKind::Press => {
                    app.handle(k);
                    dirty = true;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
        loop {
            match snapshots.try_recv() {
                Ok(s) => dirty |= app.update(s),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Ok(()),
            }
        }
        if app.quit {
            return Ok(());
        }
    }
}

/// The dashboard as plain text, `width` x `height` (for `phs top --once` and tests).
pub fn render_text(app: &App, theme: Theme, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test backend never fails");
    terminal.draw(|f| ui::draw(f, app, theme)).expect("a test backend never fails");
    buffer_text(terminal.backend().buffer())
}

/// A buffer's symbols, one line per row, trailing spaces trimmed.
pub fn buffer_text(buf: &ratatui::buffer::Buffer) -> String {
    let width = buf.area.width as usize;
    let mut out = String::new();
    for row in buf.content.chunks(width) {
        let line: String = row.iter().map(|c| c.symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
