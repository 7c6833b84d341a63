//! Drawing: instances header, the four panels (or the enlarged one), the
//! footer with the current view's keys, and overlays on top.

mod overlay;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row as TableRow, Sparkline, Table, TableState};

use crate::app::{App, Mode};
use crate::panels::{Panel, duration, num};
use crate::theme::{Level, Theme};
use phs_report::InstanceStatus;

pub fn draw(frame: &mut Frame, app: &App, theme: Theme) {
    let instances = app.snapshot.instances.len().max(1) as u16;
    let [header, body, footer] =
        Layout::vertical([Constraint::Length(instances + 1), Constraint::Min(0), Constraint::Length(1)])
            .areas(frame.area());
    draw_header(frame, header, app, theme);
    if app.enlarged {
        draw_panel(frame, body, app, app.focus, theme);
    } else {
        let [top, plugins, errors] =
            Layout::vertical([Constraint::Percentage(35), Constraint::Percentage(35), Constraint::Percentage(30)])
                .areas(body);
        let [lag, workers] = Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(top);
        for (panel, area) in
            [(Panel::Lag, lag), (Panel::Workers, workers), (Panel::Plugins, plugins), (Panel::Errors, errors)]
        {
            draw_panel(frame, area, app, panel, theme);
        }
    }
    draw_footer(frame, footer, app, theme);
    overlay::draw(frame, app, theme);
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let mut lines = Vec::new();
    let mut title = vec![Span::styled("phs top", theme.header()), Span::raw(format!("  every {}s", app.interval))];
    if app.frozen {
        title.push(Span::styled("  FROZEN", theme.level(Level::Warn)));
    }
    if let Some(re) = &app.filter {
        title.push(Span::raw(format!("  filter /{}/", re.as_str().trim_start_matches("(?i)"))));
    }
    lines.push(Line::from(title));
    if app.snapshot.instances.is_empty() {
        lines.push(Line::from("no instances yet: waiting for the first poll"));
    }
    for i in &app.snapshot.instances {
        let (mark, level, status) = match i.status {
            InstanceStatus::Healthy => ("●", Level::Ok, "healthy"),
            InstanceStatus::Unhealthy => ("●", Level::Bad, "UNHEALTHY"),
            InstanceStatus::Down => ("○", Level::Bad, "DOWN"),
        };
        let mut spans = vec![
            Span::styled(format!("{mark} "), theme.level(level)),
            Span::styled(format!("{:<21}", i.admin_addr), theme.header()),
            Span::styled(format!(" {status:<9}"), theme.level(level)),
        ];
        // Why an instance is unhealthy (or degraded) comes before its rates: a long reason after them
        // was cut off. A down instance's rates are its last ones, which its mark says first.
        let stale = i.status == InstanceStatus::Down && i.report.is_some();
        if stale {
            spans.push(Span::styled(" (last seen)", theme.level(level)));
        }
        if let Some(reason) = &i.reason {
            spans.push(Span::styled(format!("  {reason} "), theme.level(level)));
        }
        if let Some(r) = &i.report {
            // Per-worker in-hand counts are in the workers panel; the header lists the shared queues.
            let queues: String = r
                .queues
                .iter()
                .filter(|q| !q.name.starts_with("worker_"))
                .map(|q| format!("  {} {}", q.name.replace('_', " "), q.value))
                .collect();
            spans.push(Span::raw(format!(
                " {} v{}  in {}/s  out {}/s  batch p50 {} p99 {} ms{queues}",
                r.mode,
                r.version,
                num(r.events_in_per_sec),
                num(r.events_out_per_sec),
                r.batch_ms.p50.map_or("-".into(), num),
                r.batch_ms.p99.map_or("-".into(), num),
            )));
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

fn draw_panel(frame: &mut Frame, area: Rect, app: &App, panel: Panel, theme: Theme) {
    let focused = app.focus == panel;
    let sort = app.sort[panel.index()];
    let rows = app.rows(panel);
    let mut title = format!(" {} ({}) ", panel.title(), rows.len());
    if let Some(c) = sort.column {
        let dir = if sort.reverse { "▲" } else { "▼" };
        title.push_str(&format!("sort: {}{dir} ", panel.columns()[c].0));
    }
    let block =
        Block::bordered().title(title).border_style(if focused { theme.focused_border() } else { Style::new() });
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let (table_area, extra) = split_extra(panel, inner, app);
    if rows.is_empty() {
        let what = match panel {
            Panel::Lag => "no partitions reported",
            Panel::Workers => "no workers reported",
            Panel::Plugins => "no plugin has run yet",
            Panel::Errors => "no plugin errors",
        };
        let text = if app.filter.is_some() { "nothing matches the filter" } else { what };
        frame.render_widget(Paragraph::new(text).style(theme.level(Level::Stale)), table_area);
        return;
    }
    let widths: Vec<Constraint> = panel
        .columns()
        .iter()
        .map(|(_, w)| if *w == 0 { Constraint::Fill(1) } else { Constraint::Length(*w) })
        .collect();
    let header = TableRow::new(panel.columns().iter().enumerate().map(|(i, (name, _))| {
        let marker = match (sort.column == Some(i), sort.reverse) {
            (false, _) => "",
            (true, false) => "▼",
            (true, true) => "▲",
        };
        Cell::from(format!("{name}{marker}"))
    }))
    .style(theme.header());
    let body = rows.iter().map(|r| TableRow::new(r.cells.iter().cloned().map(Cell::from)).style(theme.level(r.level)));
    let table = Table::new(body, widths).header(header).row_highlight_style(theme.selected()).column_spacing(1);
    let mut state = TableState::default().with_selected(if focused { app.selection(panel) } else { None });
    frame.render_stateful_widget(table, table_area, &mut state);
    if let Some(area) = extra {
        let selected = app.selection(panel).unwrap_or(0);
        let row = &rows[selected];
        let label = format!("lag of {} over the last {}", row.cells[0], duration(row.history.len() as f64));
        let [label_area, spark_area] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
        frame.render_widget(Paragraph::new(label).style(theme.level(Level::Stale)), label_area);
        let data: Vec<u64> = row.history.iter().rev().take(spark_area.width as usize).rev().copied().collect();
        frame.render_widget(Sparkline::default().data(&data).style(theme.level(row.level)), spark_area);
    }
}

/// The lag panel keeps its last rows for the selected partition's sparkline.
fn split_extra(panel: Panel, inner: Rect, app: &App) -> (Rect, Option<Rect>) {
    if panel != Panel::Lag || inner.height < 6 || app.rows(panel).is_empty() {
        return (inner, None);
    }
    let spark = if app.enlarged { inner.height / 2 } else { 3 };
    let [table, extra] = Layout::vertical([Constraint::Min(2), Constraint::Length(spark)]).areas(inner);
    (table, Some(extra))
}

fn draw_footer(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let mut spans = Vec::new();
    if let Mode::Filter { input, error } = &app.mode {
        spans.push(Span::styled("filter /", theme.key()));
        spans.push(Span::raw(input.clone()));
        spans.push(Span::styled("▏", theme.key()));
        if let Some(e) = error {
            spans.push(Span::styled(format!("  {e}"), theme.level(Level::Bad)));
        }
        spans.push(Span::raw("   "));
    }
    for (key, what) in app.footer_keys() {
        spans.push(Span::styled(key, theme.key()));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
