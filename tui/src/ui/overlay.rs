//! What draws over the panels: help, the sort menu and an error's details.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::app::{App, Mode};
use crate::panels::Panel;
use crate::theme::Theme;

pub fn draw(frame: &mut Frame, app: &App, theme: Theme) {
    match app.mode {
        Mode::Help => popup(frame, " Help ", help(), 64, 22, theme),
        Mode::SortMenu => {
            let mut lines = vec![Line::from(format!("Sort {} by:", app.focus.title().to_lowercase())), Line::from("")];
            for (i, (name, _)) in app.focus.columns().iter().enumerate() {
                lines.push(Line::from(format!("  {}  {name}", i + 1)));
            }
            lines.push(Line::from(""));
            lines.push(Line::from("the same column again reverses; Esc cancels"));
            let h = lines.len() as u16 + 2;
            popup(frame, " Sort ", lines, 48, h, theme);
        }
        Mode::ErrorDetail => {
            let Some(e) = app.selection(Panel::Errors).and_then(|i| app.rows(Panel::Errors).swap_remove(i).error)
            else {
                return;
            };
            let mut lines = vec![
                Line::from(format!("time    {}", e.time)),
                Line::from(format!("team    {}", e.team_id)),
                Line::from(format!("plugin  {} (config {})", e.plugin, e.config_id)),
                Line::from(""),
                Line::styled(e.message.clone(), theme.header()),
            ];
            lines.extend(e.traceback.lines().map(|l| Line::from(l.replace('\t', "    "))));
            lines.push(Line::from(""));
            match &e.event {
                Some(event) => {
                    lines.push(Line::styled("event", theme.header()));
                    let pretty = serde_json::to_string_pretty(event).unwrap_or_default();
                    lines.extend(pretty.lines().map(|l| Line::from(l.to_string())));
                }
                None => lines.push(Line::from("no event (the error came from setupPlugin)")),
            }
            let area = frame.area();
            popup(frame, " Plugin error ", lines, area.width.saturating_sub(4), area.height.saturating_sub(2), theme);
        }
        Mode::Normal | Mode::Filter { .. } => {}
    }
}

fn help() -> Vec<Line<'static>> {
    [
        "phs top: consumer lag, worker load, plugins and their errors",
        "",
        "  q, Ctrl-C        quit",
        "  ?                this help",
        "  Tab, l, →        next panel     Shift-Tab, h, ←  previous panel",
        "  j, ↓ / k, ↑      move           g / G            first / last row",
        "  Enter            full error (errors panel): traceback and event",
        "  /                filter rows by a regex (case-insensitive)",
        "  Esc              clear the filter, close a window",
        "  s                sort menu      1-9              sort by column",
        "  r                reverse order",
        "  f                freeze the view (polling goes on)",
        "  e                enlarge the focused panel",
        "",
        "Colours: green fine, yellow watch, red act; grey: last known",
        "values of an instance that is down. Lag: yellow from 1000 or",
        "when growing, red from 10000. Busy: yellow 70%, red 90%.",
    ]
    .into_iter()
    .map(Line::from)
    .collect()
}

fn popup(frame: &mut Frame, title: &str, lines: Vec<Line<'static>>, width: u16, height: u16, theme: Theme) {
    let area = centered(frame.area(), width, height);
    frame.render_widget(Clear, area);
    let block = Block::bordered().title(title.to_string()).border_style(theme.focused_border());
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), area);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(height.min(area.height))]).flex(Flex::Center).areas(area);
    let [h] = Layout::horizontal([Constraint::Length(width.min(area.width))]).flex(Flex::Center).areas(v);
    h
}
