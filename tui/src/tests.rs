//! Rendering tests: every panel in every state, drawn on ratatui's
//! TestBackend and compared with the text snapshots in `tui/snapshots/`.
//! `UPDATE_SNAPSHOTS=1 cargo test -p phs-tui` rewrites them after an
//! intended change (review the diff); a missing snapshot fails.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Color, Modifier};

use crate::app::{App, Mode};
use crate::panels::Panel;
use crate::term::render_text;
use crate::theme::Theme;
use phs_report::*;

const PLAIN: Theme = Theme { color: false };

fn check(name: &str, text: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots").join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("snapshot {} is missing ({e}); run with UPDATE_SNAPSHOTS=1", path.display()));
    assert!(expected == text, "snapshot {name} differs.\n--- expected\n{expected}\n--- got\n{text}");
}

fn report(lag: i64) -> Report {
    Report {
        id: "0193".into(),
        version: "0.1.0".into(),
        mode: "production".into(),
        admin_addr: "10.0.0.5:6738".into(),
        started_at: "2026-11-25T20:00:00Z".into(),
        healthy: true,
        reason: None,
        events_in_total: 12_000,
        events_out_total: 11_900,
        events_in_per_sec: 812.0,
        events_out_per_sec: 790.5,
        dropped: vec![Count { name: "plugin".into(), value: 100 }],
        dead_letters: vec![],
        batch_ms: Quantiles { p50: Some(20.0), p99: Some(200.0) },
        partitions: vec![
            PartitionLag {
                topic: "events_plugin_ingestion".into(),
                partition: 0,
                committed: 5_000,
                end: 5_000 + lag,
                lag,
                history: (0..30).map(|i| (lag as u64) * i / 30).collect(),
                catch_up_per_sec: if lag > 0 { -40.0 } else { 0.0 },
                eta_seconds: None,
            },
            PartitionLag {
                topic: "events_plugin_ingestion".into(),
                partition: 1,
                committed: 7_000,
                end: 7_012,
                lag: 12,
                history: vec![30, 20, 12],
                catch_up_per_sec: 6.0,
                eta_seconds: Some(2.0),
            },
        ],
        workers: vec![
            Worker { id: 0, busy_ratio: 0.35, stage: "plugins".into(), in_hand: 500 },
            Worker { id: 1, busy_ratio: 0.95, stage: "write".into(), in_hand: 500 },
        ],
        queues: vec![Count { name: "plugin_logs".into(), value: 3 }],
        plugins: vec![
            PluginRow {
                config_id: 3,
                team_id: 2,
                plugin: "hello-world".into(),
                events_per_sec: 790.0,
                p50_us: Some(50.0),
                p99_us: Some(500.0),
                errors_per_min: 0.0,
                calls_total: 11_900,
                errors_total: 0,
                memory_bytes: 300_000,
                state: PluginState::Healthy,
            },
            PluginRow {
                config_id: 4,
                team_id: 2,
                plugin: "broken".into(),
                events_per_sec: 790.0,
                p50_us: Some(20.0),
                p99_us: Some(50.0),
                errors_per_min: 47_400.0,
                calls_total: 11_900,
                errors_total: 11_900,
                memory_bytes: 90_000,
                state: PluginState::Degraded,
            },
        ],
        errors: vec![],
    }
}

fn error(n: u32) -> PluginError {
    PluginError {
        time: format!("2026-11-25T20:01:0{n}.123Z"),
        team_id: 2,
        config_id: 4,
        plugin: "broken".into(),
        message: format!("index.lua:3: boom number {n}"),
        traceback: "stack traceback:\n\t[C]: in function 'error'\n\tindex.lua:3: in function 'processEvent'".into(),
        event: Some(serde_json::json!({"event": "signed_up", "distinct_id": "u1"})),
    }
}

fn instance(status: InstanceStatus, report: Option<Report>, reason: Option<&str>) -> Instance {
    Instance { admin_addr: "10.0.0.5:6738".into(), status, reason: reason.map(String::from), report }
}

fn app(instances: Vec<Instance>) -> App {
    let mut app = App::new(1.0);
    app.update(Snapshot { instances });
    app
}

fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        let code = match c {
            '\t' => KeyCode::Tab,
            '\n' => KeyCode::Enter,
            '\x1b' => KeyCode::Esc,
            c => KeyCode::Char(c),
        };
        app.handle(KeyEvent::new(code, KeyModifiers::NONE));
    }
}

#[test]
fn empty_before_the_first_poll() {
    check("empty", &render_text(&app(vec![]), PLAIN, 100, 30));
}

#[test]
fn healthy_instance_with_no_traffic() {
    let mut r = report(0);
    r.plugins.truncate(1);
    r.plugins[0].state = PluginState::Healthy;
    check("healthy", &render_text(&app(vec![instance(InstanceStatus::Healthy, Some(r), None)]), PLAIN, 120, 34));
}

#[test]
fn lagging_partition_is_red_with_its_sparkline() {
    let mut a = app(vec![instance(InstanceStatus::Healthy, Some(report(25_000)), None)]);
    check("lagging", &render_text(&a, PLAIN, 120, 34));
    // Focus on the plugins, so no lag or worker row is drawn selected.
    press(&mut a, "\t\t");
    // In colour, the 25 000 lag row is red and the busy worker at 95 % too.
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 34)).unwrap();
    t.draw(|f| crate::ui::draw(f, &a, Theme { color: true })).unwrap();
    let buf = t.backend().buffer();
    let cell_of = |needle: &str| {
        let text = crate::term::buffer_text(buf);
        let (y, line) = text.lines().enumerate().find(|(_, l)| l.contains(needle)).expect(needle);
        let x = line[..line.find(needle).unwrap()].chars().count();
        buf[(x as u16, y as u16)].clone()
    };
    assert_eq!(cell_of("25000").fg, Color::Red);
    assert!(cell_of("25000").modifier.contains(Modifier::BOLD));
    assert_eq!(cell_of("95%").fg, Color::Red);
    assert_eq!(cell_of("35%").fg, Color::Green);
    // Without colour, nothing is coloured.
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 34)).unwrap();
    t.draw(|f| crate::ui::draw(f, &a, PLAIN)).unwrap();
    assert!(t.backend().buffer().content.iter().all(|c| c.fg == Color::Reset && c.bg == Color::Reset));
}

#[test]
fn plugin_errors_stream_and_open_with_enter() {
    let mut r = report(12);
    r.errors = (1..=3).rev().map(error).collect();
    let mut a = app(vec![instance(InstanceStatus::Healthy, Some(r), None)]);
    check("errors", &render_text(&a, PLAIN, 120, 34));
    press(&mut a, "\t\t\tj\n");
    assert_eq!(a.mode, Mode::ErrorDetail);
    let detail = render_text(&a, PLAIN, 120, 34);
    check("error_detail", &detail);
    assert!(detail.contains("boom number 2") && detail.contains("in function 'processEvent'"), "{detail}");
    assert!(detail.contains(r#""distinct_id": "u1""#), "{detail}");
    press(&mut a, "\x1b");
    assert_eq!(a.mode, Mode::Normal);
}

#[test]
fn an_instance_that_is_down_keeps_its_last_values_greyed() {
    let down = instance(InstanceStatus::Down, Some(report(12)), Some("no answer at 10.0.0.5:6738: connection refused"));
    let unhealthy = Instance {
        admin_addr: "10.0.0.6:6738".into(),
        status: InstanceStatus::Unhealthy,
        reason: Some("nothing ingested for 30 s while 12 events wait".into()),
        report: None,
    };
    let a = app(vec![down, unhealthy]);
    let plain = render_text(&a, PLAIN, 120, 34);
    check("down", &plain);
    // With several instances, a plugin config's row says whose it is, as partitions and workers do.
    assert!(plain.contains("10.0.0.5:6738 hello-world (3)"), "{plain}");
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 34)).unwrap();
    t.draw(|f| crate::ui::draw(f, &a, Theme { color: true })).unwrap();
    let text = crate::term::buffer_text(t.backend().buffer());
    let y = text.lines().position(|l| l.contains("7012")).unwrap();
    let line = text.lines().nth(y).unwrap();
    let x = line[..line.find("7012").unwrap()].chars().count();
    assert_eq!(t.backend().buffer()[(x as u16, y as u16)].fg, Color::DarkGray);
}

#[test]
fn help_sort_menu_and_footer_follow_the_view() {
    let mut a = app(vec![instance(InstanceStatus::Healthy, Some(report(12)), None)]);
    press(&mut a, "?");
    check("help", &render_text(&a, PLAIN, 100, 30));
    press(&mut a, "?\t\ts");
    assert_eq!((a.focus, &a.mode), (Panel::Plugins, &Mode::SortMenu));
    check("sort_menu", &render_text(&a, PLAIN, 100, 30));
    press(&mut a, "6");
    assert_eq!(a.mode, Mode::Normal);
    let names: Vec<String> = a.rows(Panel::Plugins).iter().map(|r| r.cells[1].clone()).collect();
    assert_eq!(names, ["broken (4)", "hello-world (3)"], "sorted by errors/min, largest first");
    press(&mut a, "r");
    let names: Vec<String> = a.rows(Panel::Plugins).iter().map(|r| r.cells[1].clone()).collect();
    assert_eq!(names, ["hello-world (3)", "broken (4)"]);
    press(&mut a, "2");
    let names: Vec<String> = a.rows(Panel::Plugins).iter().map(|r| r.cells[1].clone()).collect();
    assert_eq!(names, ["broken (4)", "hello-world (3)"], "by name, alphabetically");
    assert!(render_text(&a, PLAIN, 100, 30).contains("sort: plugin▼"));
}

#[test]
fn filter_freeze_enlarge_and_quit() {
    let mut a = app(vec![instance(InstanceStatus::Healthy, Some(report(12)), None)]);
    press(&mut a, "/HELLO");
    assert!(render_text(&a, PLAIN, 100, 30).contains("filter /HELLO"));
    press(&mut a, "\n");
    assert_eq!(a.rows(Panel::Plugins).len(), 1, "the regex is case-insensitive");
    press(&mut a, "/(");
    press(&mut a, "\n");
    assert!(matches!(&a.mode, Mode::Filter { error: Some(_), .. }), "a bad regex keeps the prompt open");
    assert!(render_text(&a, PLAIN, 100, 30).contains("unclosed group"));
    press(&mut a, "\x1b\x1b");
    assert_eq!(a.rows(Panel::Plugins).len(), 2, "Esc clears the filter");

    press(&mut a, "f");
    assert!(!a.update(Snapshot::default()), "a frozen view ignores new data");
    assert_eq!(a.snapshot.instances.len(), 1);
    press(&mut a, "f");
    assert!(a.update(Snapshot::default()));

    let mut a = app(vec![instance(InstanceStatus::Healthy, Some(report(25_000)), None)]);
    press(&mut a, "e");
    check("enlarged_lag", &render_text(&a, PLAIN, 100, 30));
    press(&mut a, "q");
    assert!(a.quit);
    let mut b = App::new(1.0);
    b.handle(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(b.quit);
}

#[test]
fn navigation_wraps_panels_and_clamps_rows() {
    let mut a = app(vec![instance(InstanceStatus::Healthy, Some(report(12)), None)]);
    press(&mut a, "h");
    assert_eq!(a.focus, Panel::Errors);
    press(&mut a, "l");
    assert_eq!(a.focus, Panel::Lag);
    press(&mut a, "jjjj");
    assert_eq!(a.selection(Panel::Lag), Some(1));
    press(&mut a, "k");
    assert_eq!(a.selection(Panel::Lag), Some(0));
    press(&mut a, "G");
    assert_eq!(a.selection(Panel::Lag), Some(1));
    assert!(a.footer_keys().iter().all(|(k, _)| *k != "Enter"), "Enter is offered only on the errors panel");
    press(&mut a, "\t\t\t");
    assert!(a.footer_keys().iter().any(|(k, _)| *k == "Enter"));
}
