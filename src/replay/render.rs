//! The human-readable replay output: per event, what each plugin did (a
//! coloured diff of fields and properties, a drop, or the error with its
//! traceback), the side effects kept in the overlay, and the summary.

use std::fmt::Write as _;

use serde_json::Value;

use super::diff::Change;
use super::report::{EventReport, Fate, StepReport, Summary};

#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
    /// Print events no plugin changed too.
    pub all: bool,
    /// List each event's side effects.
    pub side_effects: bool,
    /// A `--compare` run: print the events whose outputs differ.
    pub compare: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}

/// Values longer than this are cut in the output (`--json` has them whole).
const SHOWN: usize = 160;

fn shown(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() <= SHOWN {
        return text;
    }
    let cut: String = text.chars().take(SHOWN).collect();
    format!("{cut}… ({} bytes)", text.len())
}

/// Whether the output has the event: with `--all` every one; comparing,
/// those whose outputs differ (an event neither version ran on, invalid or
/// of no team, shows no difference); as JSON every event; as text those a
/// plugin did something to (or that had side effects, when they are listed).
pub fn printed(r: &EventReport, style: &Style, json: bool) -> bool {
    match (&r.compare, style.all) {
        (_, true) => true,
        (Some(c), false) => !c.differences.is_empty(),
        (None, false) if style.compare => false,
        (None, false) => json || r.notable() || style.side_effects && !r.side_effects.is_empty(),
    }
}

/// The event's block, or None when the style leaves it out.
pub fn event(r: &EventReport, style: &Style) -> Option<String> {
    if !printed(r, style, false) {
        return None;
    }
    let mut out = String::new();
    let mut head = format!("{}:{}", r.partition, r.offset);
    for (label, value) in [("team", r.team_id.map(|t| t.to_string())), ("event", r.event.clone())] {
        if let Some(v) = value {
            let _ = write!(head, "  {label} {v}");
        }
    }
    if let Some(d) = &r.distinct_id {
        let _ = write!(head, "  distinct_id {}", Value::String(d.clone()));
    }
    if let Some(u) = &r.uuid {
        let _ = write!(head, "  uuid {u}");
    }
    let _ = writeln!(out, "{}", style.paint("1", &format!("── {head}")));
    if let Some(letter) = &r.dead_letter {
        let reason = letter["reason"].as_str().unwrap_or_default();
        let detail = letter["detail"].as_str().unwrap_or_default();
        let _ = writeln!(out, "  dead letter: {reason}: {detail}");
    }
    match r.fate {
        Fate::Invalid => {
            let why = r.error.as_deref().unwrap_or_default();
            let _ = writeln!(out, "  {} {why}", style.paint("31", "invalid:"));
        }
        Fate::UnknownTeam => {
            let why = r.error.as_deref().unwrap_or_default();
            let _ = writeln!(out, "  {} {why}", style.paint("31", "unknown team:"));
        }
        Fate::Ingested | Fate::Dropped => {}
    }
    let compare = r.compare.as_ref();
    if let Some(c) = compare {
        let _ = writeln!(out, "  {}", style.paint("2", "installed:"));
        steps(&mut out, &r.steps, style, "    ");
        let _ = writeln!(out, "  {}", style.paint("2", "local:"));
        steps(&mut out, &c.local_steps, style, "    ");
        let _ = writeln!(out, "  {}", style.paint("1", "output, installed -> local:"));
        changes(&mut out, &c.differences, style, "    ");
    } else {
        steps(&mut out, &r.steps, style, "  ");
    }
    if r.fate == Fate::Dropped && compare.is_none() {
        let _ = writeln!(out, "  {}", style.paint("33", "=> dropped, not ingested"));
    }
    persons(&mut out, &r.persons, style);
    if style.side_effects && !r.side_effects.is_empty() {
        let _ = writeln!(out, "  side effects (kept in the overlay):");
        for e in &r.side_effects {
            let _ = writeln!(out, "    {}", serde_json::to_string(e).unwrap_or_default());
        }
    }
    Some(out)
}

/// The person writes the persons stage would make.
fn persons(out: &mut String, writes: &[Value], style: &Style) {
    for w in writes {
        let d = &w["detail"];
        let properties = |before: &Value, after: &Value| match (before.as_object(), after.as_object()) {
            (Some(b), Some(a)) => super::diff::diff(b, a),
            _ => Vec::new(),
        };
        match w["change"].as_str() {
            Some("created") => {
                let _ = writeln!(
                    out,
                    "  {} {} {}",
                    style.paint("32", "person created"),
                    d["person"],
                    shown(&d["properties"])
                );
            }
            Some("distinct_id_added") => {
                let _ = writeln!(
                    out,
                    "  {} {} -> person {}",
                    style.paint("32", "distinct id added"),
                    d["distinct_id"],
                    d["person"]
                );
            }
            Some("updated") => {
                let _ = writeln!(out, "  {} {}", style.paint("33", "person updated"), d["person"]);
                changes(out, &properties(&d["before"], &d["after"]), style, "    ");
            }
            Some("merged") => {
                let _ = writeln!(
                    out,
                    "  {} {} into {} (distinct ids moved: {})",
                    style.paint("33", "persons merged:"),
                    d["merged_away"],
                    d["into"],
                    d["distinct_ids_moved"]
                );
                changes(out, &properties(&d["before"], &d["after"]), style, "    ");
            }
            _ => {
                let _ = writeln!(out, "  {} {}", style.paint("31", "persons step failed:"), w["error"]);
            }
        }
    }
}

fn steps(out: &mut String, steps: &[StepReport], style: &Style, indent: &str) {
    if steps.is_empty() {
        let _ = writeln!(out, "{indent}{}", style.paint("2", "(no plugin ran)"));
    }
    for s in steps {
        let (code, text) = match s.outcome {
            "changed" => ("32", "changed"),
            "unchanged" => ("2", "unchanged"),
            "dropped" => ("33", "dropped the event"),
            "failed" => ("31", "failed"),
            _ => ("2", "skipped"),
        };
        let _ = writeln!(
            out,
            "{indent}{} {} {}",
            s.plugin,
            style.paint(code, text),
            style.paint("2", &format!("({} µs)", s.micros))
        );
        changes(out, &s.changes, style, &format!("{indent}  "));
        if let Some(e) = &s.error {
            for line in plugin_frames(e) {
                let _ = writeln!(out, "{indent}  {}", style.paint("31", line));
            }
        }
    }
}

/// An error's message and the traceback frames in the plugin's own files:
/// the sandbox's frames (`phs:…`, the protected call) and the second
/// traceback its handler adds say nothing about the plugin (`--json` keeps them).
fn plugin_frames(error: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut tracebacks = 0;
    for line in error.lines() {
        if line.trim() == "stack traceback:" {
            tracebacks += 1;
            if tracebacks > 1 {
                break;
            }
        } else if line.starts_with('\t') && (line.contains("phs:") || line.contains("[C]:")) {
            continue;
        }
        lines.push(line);
    }
    lines
}

fn changes(out: &mut String, changes: &[Change], style: &Style, indent: &str) {
    for c in changes {
        let line = match (&c.before, &c.after) {
            (None, Some(a)) => style.paint("32", &format!("+ {} = {}", c.path, shown(a))),
            (Some(b), None) => style.paint("31", &format!("- {} (was {})", c.path, shown(b))),
            (Some(b), Some(a)) => style.paint("33", &format!("~ {}: {} -> {}", c.path, shown(b), shown(a))),
            (None, None) => continue,
        };
        let _ = writeln!(out, "{indent}{line}");
    }
}

/// The closing summary.
pub fn summary(s: &Summary, style: &Style, dry_run: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", style.paint("1", "── summary"));
    if s.interrupted {
        let _ = writeln!(out, "interrupted before the end of the selection");
    }
    let _ = writeln!(
        out,
        "{} read, {} matched: {} would be ingested, {} dropped by plugins, {} invalid, {} of unknown teams",
        s.read, s.matched, s.ingested, s.dropped, s.invalid, s.unknown_team
    );
    if let Some(d) = s.differing {
        let (noun, verb) = if d == 1 { ("event", "differs") } else { ("events", "differ") };
        let _ = writeln!(out, "{d} {noun} {verb} between the installed and the local plugin");
    }
    if !s.plugins.is_empty() {
        let width = s.plugins.keys().map(|k| k.chars().count()).max().unwrap_or(6).max(6);
        let _ = writeln!(
            out,
            "{:width$}  {:>9} {:>9} {:>8} {:>7} {:>8} {:>8} {:>8}",
            "plugin", "changed", "unchanged", "dropped", "failed", "skipped", "p50 µs", "p99 µs"
        );
        for (name, t) in &s.plugins {
            let _ = writeln!(
                out,
                "{name:width$}  {:>9} {:>9} {:>8} {:>7} {:>8} {:>8} {:>8}",
                t.changed, t.unchanged, t.dropped, t.failed, t.skipped, t.p50_micros, t.p99_micros
            );
        }
    }
    let effects: Vec<String> = s.side_effects.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let effects = if effects.is_empty() { "none".to_string() } else { effects.join(", ") };
    let kept = if dry_run { " (kept in memory, none written)" } else { "" };
    let _ = writeln!(out, "side effects{kept}: {effects}; plugin log lines: {}", s.logs);
    let _ = writeln!(out, "{} events in {:.2} s ({:.0} events/s)", s.read, s.seconds, s.events_per_second);
    out
}

/// The line a dry run starts with, so nobody mistakes it for a real run.
pub fn dry_run_notice(network: super::overlay::Network) -> String {
    let fetch = match network {
        super::overlay::Network::Reads => {
            "fetch GET and HEAD requests are sent (--offline sends none); other requests are recorded, not sent"
        }
        super::overlay::Network::Offline => "no request is sent (--offline)",
    };
    format!(
        "dry run: nothing is written to any store, cache, topic or table; \
         plugins' writes stay in memory; {fetch}"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn tracebacks_keep_the_plugins_frames() {
        let e = "index.lua:3: no plan\nstack traceback:\n\tindex.lua:3: in function 'processEvent'\n\t[C]: in upvalue 'raw_xpcall'\n\tphs:limits:5: in function 'xpcall'\nstack traceback:\n\t[C]: in function 'error'";
        assert_eq!(
            super::plugin_frames(e),
            ["index.lua:3: no plan", "stack traceback:", "\tindex.lua:3: in function 'processEvent'"]
        );
    }
}
