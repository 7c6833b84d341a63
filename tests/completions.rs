//! The committed completion scripts and man page must match the CLI.
//! Regenerate them with `scripts/completions` when the CLI changes.

use crate::util::{phs, stdout};

const FILES: &[(&str, &str)] = &[
    ("bash", "completions/phs.bash"),
    ("zsh", "completions/_phs"),
    ("fish", "completions/phs.fish"),
    ("elvish", "completions/phs.elv"),
    ("powershell", "completions/_phs.ps1"),
    ("man", "completions/phs.1"),
];

#[test]
fn committed_completions_match_the_cli() {
    for (target, path) in FILES {
        let out = phs().args(["completions", target]).output().unwrap();
        assert!(out.status.success(), "phs completions {target} failed");
        let generated = stdout(&out);
        let committed = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path} is missing ({e}); run scripts/completions"));
        assert!(
            generated == committed,
            "{path} is out of date with the CLI; run scripts/completions and commit the result"
        );
    }
}

#[test]
fn completions_know_the_subcommands() {
    let out = phs().args(["completions", "bash"]).output().unwrap();
    let script = stdout(&out);
    for sub in ["serve", "migrate", "healthcheck", "replay", "plugins", "top", "teams", "completions"] {
        assert!(script.contains(sub), "bash completion lacks {sub}");
    }
}
