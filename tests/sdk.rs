//! PostHog's own SDKs against the capture endpoint: the rows they must produce.

use serde_json::{Value, json};

use crate::util::embedded::{cli, wait_for_events};
use crate::util::server::{start, wait_healthy};
use crate::util::{phs, service, stderr};

/// The `posthog` Python package (installed by scripts/services) sends a
/// signup story to an embedded `phs serve`: events, an alias merge, person
/// properties and a group all arrive as PostHog would store them.
#[test]
fn the_python_sdk_produces_the_expected_rows() {
    let python = service("PHS_TEST_PYTHON");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let token = cli(&d, &["teams", "create", "py"]).trim().to_string();
    let mut server = start(&[("PHS_DATA_DIR", d.display().to_string())]);
    wait_healthy(&mut server);

    let out = std::process::Command::new(&python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/python_client.py"))
        .arg(format!("http://{}", server.capture))
        .arg(&token)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(out.status.success(), "the Python SDK failed: {}", stderr(&out));

    let rows = wait_for_events(&d, 5);
    let by_event = |name: &str| -> &Value {
        rows.iter().find(|r| r["event"] == name).unwrap_or_else(|| panic!("no {name} event in {rows:?}"))
    };
    let signed_up = by_event("signed_up");
    assert_eq!(signed_up["distinct_id"], "py-anon");
    assert_eq!(signed_up["properties"]["plan"], "pro");
    assert_eq!(signed_up["properties"]["$lib"], "posthog-python");
    // posthog-python sends the alias from the previous id's side.
    let alias = by_event("$create_alias");
    assert_eq!((&alias["distinct_id"], &alias["properties"]["alias"]), (&json!("py-anon"), &json!("py-user")));
    let ordered = by_event("ordered");
    assert_eq!(ordered["properties"]["total"], 42);
    assert_eq!(ordered["properties"]["$group_0"], "acme", "company is the team's first group type");
    assert_eq!(by_event("$groupidentify")["properties"]["$group_set"], json!({"name": "Acme"}));

    let show = phs()
        .args(["persons", "show", "py-anon", "--team", &token, "--json"])
        .env("PHS_DATA_DIR", &d)
        .output()
        .unwrap();
    assert!(show.status.success(), "{}", stderr(&show));
    let person: Value = serde_json::from_slice(&show.stdout).unwrap();
    let mut ids: Vec<&str> = person["distinct_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["py-anon", "py-user"], "the alias joined both ids");
    assert_eq!(person["is_identified"], true);
    assert_eq!(person["properties"]["source"], "python");
    assert_eq!(person["properties"]["email"], "py@example.com");
}
