//! The library's layers (README, "Architecture") as a test: every
//! `crate::` path in src/ must point to a module of a lower layer, so a
//! change that makes a layer look upwards fails here, not in review.

/// The layers, bottom first; a module may use only modules of lower rows.
const LAYERS: &[&[&str]] = &[
    &["error", "config", "ready_file"],
    &["wire"],
    &["store", "cache", "clickhouse", "kafka", "telemetry"],
    &["metrics"],
    &["supervisor", "health", "instances", "migrate"],
    &["plugins"],
    &["pipeline", "worker", "admin"],
    &["server"],
    &["replay"],
];

/// Known upward imports, each to be removed by the work named (none left).
const EXCEPTIONS: &[(&str, &str)] = &[];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&module))
}

/// The top-level modules a line names through `crate::`, grouped imports included.
fn crate_paths(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in line.match_indices("crate::") {
        let rest = &line[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let (mut depth, mut segment, mut segments) = (0, String::new(), Vec::new());
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => segments.push(std::mem::take(&mut segment)),
                        _ => segment.push(c),
                    }
                }
                segments.push(segment);
                found.extend(segments.iter().filter_map(|s| first_ident(s.trim())));
            }
            None => found.extend(first_ident(rest)),
        }
    }
    found
}

fn first_ident(s: &str) -> Option<String> {
    let ident: String = s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    (!ident.is_empty()).then_some(ident)
}

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let mut files = Vec::new();
    rust_files(std::path::Path::new("src"), &mut files);
    let mut upward = Vec::new();
    let mut unplaced = Vec::new();
    for file in &files {
        let relative = file.strip_prefix("src").unwrap();
        let module =
            relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(own) = rank(&module) else {
            unplaced.push(module);
            continue;
        };
        let shown = file.display().to_string();
        for (n, line) in std::fs::read_to_string(file).unwrap().lines().enumerate() {
            // Doc links may point anywhere; only code imports.
            if line.trim_start().starts_with("//") {
                continue;
            }
            for dep in crate_paths(line) {
                let excepted = EXCEPTIONS.contains(&(shown.as_str(), dep.as_str()));
                if dep != module && rank(&dep).is_some_and(|r| r >= own) && !excepted {
                    upward.push(format!("{shown}:{}: {module} uses {dep}", n + 1));
                }
            }
        }
    }
    unplaced.dedup();
    assert!(unplaced.is_empty(), "modules in no layer (add them to LAYERS and the README): {unplaced:?}");
    assert!(upward.is_empty(), "imports of the same or a higher layer:\n{}", upward.join("\n"));
}

#[test]
fn grouped_and_nested_imports_are_all_seen() {
    assert_eq!(crate_paths("use crate::{cache, store::{Store, Team}};"), ["cache", "store"]);
    assert_eq!(crate_paths("let x = crate::metrics::global(); crate::wire::Message"), ["metrics", "wire"]);
}
