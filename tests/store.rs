//! One behavioural suite for the database traits, run against both backends:
//! the embedded SQLite file and a fresh real Postgres database.

use std::sync::Arc;

use phs::config::StoreSettings;
use phs::migrate::{self, Mode, TopicLayout};
use phs::store::{NewTeam, Store};

use crate::util::fresh_postgres_db;

fn settings(database_url: Option<String>, data_dir: &std::path::Path) -> StoreSettings {
    use clap::Parser;
    #[derive(Parser)]
    struct P {
        #[command(flatten)]
        s: StoreSettings,
    }
    let mut args = vec!["x".to_string(), "--data-dir".into(), data_dir.display().to_string()];
    if let Some(url) = database_url {
        args.extend(["--database-url".into(), url]);
    }
    P::try_parse_from(args).expect("settings parse").s
}

const LAYOUT: TopicLayout = TopicLayout { partitions: 1, replication: 1 };

async fn sqlite_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let s = settings(None, dir.path());
    migrate::run(&s, Mode::Apply, LAYOUT).await.unwrap();
    phs::store::connect(&s).await.unwrap()
}

async fn postgres_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let s = settings(Some(fresh_postgres_db().await), dir.path());
    migrate::run(&s, Mode::Apply, LAYOUT).await.unwrap();
    phs::store::connect(&s).await.unwrap()
}

fn team(name: &str) -> NewTeam {
    NewTeam { name: name.into(), anonymize_ips: false, api_token: None }
}

async fn teams_behave(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    assert!(store.list_teams().await.unwrap().is_empty());

    let a = store.create_team(team("A")).await.unwrap();
    let b = store
        .create_team(NewTeam { name: "B".into(), anonymize_ips: true, api_token: Some("phc_fixed".into()) })
        .await
        .unwrap();
    assert_ne!(a.id, b.id);
    assert_ne!(a.api_token, b.api_token);
    assert_eq!(b.api_token, "phc_fixed");
    assert!(b.anonymize_ips && !a.anonymize_ips);
    assert_eq!(a.organization_id, b.organization_id, "teams share the default organization");

    assert_eq!(store.team_by_token(&a.api_token).await.unwrap().as_ref(), Some(&a));
    assert_eq!(store.team_by_token("phc_nope").await.unwrap(), None);
    assert_eq!(store.team_by_id(b.id).await.unwrap().as_ref(), Some(&b));
    assert_eq!(store.team_by_id(999_999).await.unwrap(), None);

    let listed = store.list_teams().await.unwrap();
    assert_eq!(listed, vec![a.clone(), b.clone()]);

    // A duplicate token is refused, not silently merged.
    let dup = store
        .create_team(NewTeam { name: "C".into(), anonymize_ips: false, api_token: Some("phc_fixed".into()) })
        .await;
    assert!(dup.is_err());
    assert_eq!(dup.unwrap_err().kind(), phs::store::ErrorKind::Data);

    // Concurrent creators end up in one organization with distinct teams.
    let mut handles = Vec::new();
    for i in 0..8 {
        let s = store.clone();
        handles.push(tokio::spawn(async move { s.create_team(team(&format!("T{i}"))).await.unwrap() }));
    }
    for h in handles {
        let t = h.await.unwrap();
        assert_eq!(t.organization_id, a.organization_id);
    }
    assert_eq!(store.list_teams().await.unwrap().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    teams_behave(sqlite_store(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_postgres() {
    let dir = tempfile::tempdir().unwrap();
    teams_behave(postgres_store(&dir).await).await;
}

#[tokio::test]
async fn unreachable_postgres_is_a_transient_error_naming_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::util::free_port();
    let s = settings(Some(format!("postgres://postgres:secret@127.0.0.1:{port}/x")), dir.path());
    let err = phs::store::connect(&s).await.err().expect("nothing listens there");
    assert_eq!(err.kind(), phs::store::ErrorKind::Transient);
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")) && !msg.contains("secret"), "{msg}");
}

#[test]
fn sqlite_and_postgres_schemas_have_the_same_tables_and_columns() {
    fn shape(sql: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut table = String::new();
        for line in sql.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
                table = rest.split_whitespace().next().unwrap().to_string();
            } else if !table.is_empty() && !line.starts_with("--") && !line.starts_with("CONSTRAINT") {
                if let Some(col) = line.split_whitespace().next().filter(|c| c.chars().all(|x| x.is_ascii_alphanumeric() || x == '_' || x == '"')) {
                    out.push(format!("{table}.{col}"));
                }
            }
        }
        out
    }
    let pg = shape(include_str!("../migrations/postgres/0001_posthog_core.sql"));
    let lite = shape(include_str!("../migrations/sqlite/0001_posthog_core.sql"));
    assert!(pg.len() > 80, "parsed too few columns: {}", pg.len());
    assert_eq!(pg, lite);
}
