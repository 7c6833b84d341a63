//! Event and property definitions, the first-event flag and the rows a
//! person merge moves, on both backends, read back with plain SQL on
//! PostHog's own column names, as PostHog's UI and API read them.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use sqlx::Row;

use phs::pipeline::definitions::{Definitions, writer};
use phs::pipeline::sink::{GroupRow, SinkBatch};
use phs::store::{MergedPerson, NewPerson, NewTeam, Person, PersonWrites, Store};
use phs::wire::EventRow;

/// A store with a raw connection to the same database beside it.
struct Db {
    store: Arc<dyn Store>,
    raw: Raw,
    _dir: tempfile::TempDir,
}

enum Raw {
    Pg(sqlx::PgPool),
    Lite(sqlx::SqlitePool),
}

impl Db {
    async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::util::sqlite_store(&dir).await;
        let url = format!("sqlite://{}", dir.path().join("phs.sqlite3").display());
        Db { store, raw: Raw::Lite(sqlx::SqlitePool::connect(&url).await.unwrap()), _dir: dir }
    }

    async fn postgres() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::util::fresh_postgres_db().await;
        let s = crate::util::store_settings(Some(url.clone()), dir.path());
        phs::migrate::run(&s, phs::migrate::Mode::Apply, crate::util::LAYOUT).await.unwrap();
        let store = phs::store::connect(&s).await.unwrap();
        // Times read back as text are then in UTC whatever the server's zone.
        let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        let raw = sqlx::PgPool::connect_with(options.options([("TimeZone", "UTC")])).await.unwrap();
        Db { store, raw: Raw::Pg(raw), _dir: dir }
    }

    async fn exec(&self, sql: &str) {
        match &self.raw {
            Raw::Pg(p) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(p).await.map(|_| ()),
            Raw::Lite(p) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(p).await.map(|_| ()),
        }
        .unwrap();
    }

    /// The rows of a query whose every column is text (or null).
    async fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        fn text<R: Row>(r: &R) -> Vec<Option<String>>
        where
            for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            usize: sqlx::ColumnIndex<R>,
        {
            (0..r.len()).map(|i| r.try_get::<Option<String>, _>(i).unwrap()).collect()
        }
        let sql = || sqlx::AssertSqlSafe(sql.to_string());
        match &self.raw {
            Raw::Pg(p) => sqlx::query(sql()).fetch_all(p).await.unwrap().iter().map(text).collect(),
            Raw::Lite(p) => sqlx::query(sql()).fetch_all(p).await.unwrap().iter().map(text).collect(),
        }
    }

    /// The rows as space-separated text (`-` for null), sorted here: Postgres's
    /// collation and SQLite's order `$` differently.
    async fn strings(&self, sql: &str) -> Vec<String> {
        let mut rows: Vec<String> = self
            .rows(sql)
            .await
            .into_iter()
            .map(|r| r.into_iter().map(|c| c.unwrap_or("-".into())).collect::<Vec<_>>().join(" "))
            .collect();
        rows.sort();
        rows
    }

    async fn team(&self, name: &str) -> i64 {
        self.store.create_team(NewTeam { name: name.into(), anonymize_ips: false, api_token: None }).await.unwrap().id
    }
}

fn event(team_id: i64, name: &str, properties: Value) -> EventRow {
    let now = Utc::now();
    EventRow {
        uuid: uuid::Uuid::now_v7().to_string(),
        team_id,
        event: name.into(),
        distinct_id: "d".into(),
        properties: properties.as_object().unwrap().clone(),
        timestamp: now,
        created_at: now,
        elements_chain: String::new(),
        person: None,
        groups: Default::default(),
    }
}

fn batch(events: Vec<EventRow>) -> SinkBatch {
    SinkBatch { events, ..Default::default() }
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Db::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Db::postgres().await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    definitions_are_written_with_types_as_posthog_reads_them,
    known_definitions_are_not_written_again_and_last_seen_moves_hourly,
    existing_rows_are_kept_and_a_missing_type_is_filled_in,
    off_writes_only_the_first_event_flag,
    a_failed_write_is_retried_without_losing_rows,
    a_merge_moves_cohorts_and_hash_keys_without_duplicates,
);

async fn definitions_are_written_with_types_as_posthog_reads_them(db: Db) {
    let team = db.team("A").await;
    let other = db.team("B").await;
    let defs = Definitions::new(db.store.clone(), true);
    let mut group = batch(vec![
        event(
            team,
            "signed_up",
            json!({
                "plan": "pro", "price": 9.5, "paid": true, "trial": "false", "signup_date": "2024-03-01",
                "utm_campaign": 2024, "$feature/new-nav": true, "nothing": null,
                "$set": {"email": "a@b.c", "age": 40}, "$set_once": {"first_seen_at": "2024-03-01T10:00:00Z"},
                "$group_0": "acme", "$groups": {"company": "acme"},
            }),
        ),
        event(team, "$pageview", json!({"plan": "free", "$current_url": "/"})),
        event(team, "$$plugin_metrics", json!({"metric": 1})),
    ]);
    group.groups.push(GroupRow {
        team_id: team,
        group_type_index: 0,
        group_key: "acme".into(),
        properties: json!({"employees": 12, "name": "Acme"}),
        created_at: Utc::now(),
        version: 1,
    });
    defs.read(&group, at("2025-06-01T10:30:00Z"));
    writer::write(&defs).await.unwrap();
    assert_eq!(defs.queued(), 0);

    let q = |sql: &str| sql.replace("$team", &team.to_string());
    let events = db
        .strings(&q(
            "SELECT name, CASE WHEN created_at IS NULL OR last_seen_at IS NULL THEN 'undated' ELSE 'dated' END \
                     FROM posthog_eventdefinition WHERE team_id = $team",
        ))
        .await;
    assert_eq!(events, ["$pageview dated", "signed_up dated"], "$$plugin_metrics gets no definition");
    let props = db
        .strings(&q("SELECT CAST(type AS TEXT), name, CAST(group_type_index AS TEXT), property_type, \
                       CASE WHEN is_numerical THEN 'numerical' ELSE 'not' END \
                     FROM posthog_propertydefinition WHERE team_id = $team"))
        .await;
    assert_eq!(
        props,
        [
            "1 $current_url - String not",
            "1 $feature/new-nav - String not",
            "1 nothing - - not",
            "1 paid - Boolean not",
            "1 plan - String not",
            "1 price - Numeric numerical",
            "1 signup_date - DateTime not",
            "1 trial - Boolean not",
            "1 utm_campaign - String not",
            "2 age - Numeric numerical",
            "2 email - String not",
            "2 first_seen_at - DateTime not",
            "3 employees 0 Numeric numerical",
            "3 name 0 String not",
        ]
    );
    let pairs = db.strings(&q("SELECT event, property FROM posthog_eventproperty WHERE team_id = $team")).await;
    assert_eq!(
        pairs,
        [
            "$pageview $current_url",
            "$pageview plan",
            "signed_up nothing",
            "signed_up paid",
            "signed_up plan",
            "signed_up price",
            "signed_up signup_date",
            "signed_up trial",
            "signed_up utm_campaign",
        ],
        "flags and person/group updates pair with no event"
    );
    let flags = db
        .strings(
            "SELECT name, CASE WHEN ingested_event THEN 'ingested' ELSE 'waiting' END FROM posthog_team ORDER BY id",
        )
        .await;
    assert_eq!(flags, ["A ingested", "B waiting"], "only the team that sent events ({other} sent none)");
}

async fn known_definitions_are_not_written_again_and_last_seen_moves_hourly(db: Db) {
    let team = db.team("A").await;
    let defs = Definitions::new(db.store.clone(), true);
    let b = batch(vec![event(team, "e", json!({"k": 1}))]);
    defs.read(&b, at("2025-06-01T10:00:05Z"));
    writer::write(&defs).await.unwrap();
    let seen = || db.strings("SELECT CAST(last_seen_at AS TEXT) FROM posthog_eventdefinition");
    let first = seen().await;

    defs.read(&b, at("2025-06-01T10:59:00Z"));
    assert_eq!(defs.queued(), 0, "everything in the batch is known, and the hour has not turned");

    defs.read(&b, at("2025-06-01T11:00:07Z"));
    assert_eq!(defs.queued(), 1, "only the event's last_seen_at, once the hour turns");
    writer::write(&defs).await.unwrap();
    let later = seen().await;
    assert_ne!(first, later);
    assert!(later[0].contains("11:00:07"), "{later:?}");

    // Another instance (or a restart) proposes it all again: nothing is duplicated or moved back.
    let again = Definitions::new(db.store.clone(), true);
    again.read(&b, at("2025-06-01T10:30:00Z"));
    writer::write(&again).await.unwrap();
    assert_eq!(seen().await, later, "an earlier sighting does not move last_seen_at back");
    let counts = db
        .strings(
            "SELECT CAST((SELECT count(*) FROM posthog_eventdefinition) AS TEXT), \
                    CAST((SELECT count(*) FROM posthog_propertydefinition) AS TEXT), \
                    CAST((SELECT count(*) FROM posthog_eventproperty) AS TEXT)",
        )
        .await;
    assert_eq!(counts, ["1 1 1"]);
}

async fn existing_rows_are_kept_and_a_missing_type_is_filled_in(db: Db) {
    let team = db.team("A").await;
    // As PostHog's UI or an older version leaves them: one without a type, one with another type.
    db.exec(&format!(
        "INSERT INTO posthog_propertydefinition (id, team_id, name, is_numerical, type) VALUES \
           ('0190a1a0-0000-7000-8000-000000000001', {team}, 'untyped', false, 1); \
         INSERT INTO posthog_propertydefinition (id, team_id, name, is_numerical, type, property_type) VALUES \
           ('0190a1a0-0000-7000-8000-000000000002', {team}, 'typed', false, 1, 'String'); \
         INSERT INTO posthog_eventdefinition (id, team_id, name, created_at, last_seen_at) VALUES \
           ('0190a1a0-0000-7000-8000-000000000003', {team}, 'e', '2020-01-01T00:00:00Z', '2020-01-01T00:00:00Z')"
    ))
    .await;
    let defs = Definitions::new(db.store.clone(), true);
    defs.read(&batch(vec![event(team, "e", json!({"untyped": 3, "typed": 4}))]), at("2025-06-01T10:00:00Z"));
    writer::write(&defs).await.unwrap();
    let props = db
        .strings(
            "SELECT CAST(id AS TEXT), name, property_type, CASE WHEN is_numerical THEN 'numerical' ELSE 'not' END \
                  FROM posthog_propertydefinition ORDER BY name",
        )
        .await;
    assert_eq!(
        props,
        [
            "0190a1a0-0000-7000-8000-000000000001 untyped Numeric numerical",
            "0190a1a0-0000-7000-8000-000000000002 typed String not",
        ]
    );
    let events = db.strings("SELECT CAST(id AS TEXT), CAST(created_at AS TEXT) FROM posthog_eventdefinition").await;
    assert_eq!(events.len(), 1);
    assert!(events[0].starts_with("0190a1a0-0000-7000-8000-000000000003 2020-01-01"), "{events:?}");
}

async fn off_writes_only_the_first_event_flag(db: Db) {
    let team = db.team("A").await;
    let defs = Definitions::new(db.store.clone(), false);
    defs.read(&batch(vec![event(team, "e", json!({"k": 1, "$set": {"p": 2}}))]), Utc::now());
    writer::write(&defs).await.unwrap();
    let counts = db
        .strings(
            "SELECT CAST((SELECT count(*) FROM posthog_eventdefinition) AS TEXT), \
                    CAST((SELECT count(*) FROM posthog_propertydefinition) AS TEXT), \
                    CAST((SELECT count(*) FROM posthog_eventproperty) AS TEXT), \
                    (SELECT CASE WHEN ingested_event THEN 'ingested' ELSE 'waiting' END FROM posthog_team)",
        )
        .await;
    assert_eq!(counts, ["0 0 0 ingested"]);
}

async fn a_failed_write_is_retried_without_losing_rows(db: Db) {
    let team = db.team("A").await;
    let defs = Definitions::new(db.store.clone(), true);
    db.exec("ALTER TABLE posthog_eventproperty RENAME TO posthog_eventproperty_away").await;
    defs.read(&batch(vec![event(team, "e", json!({"k": 1}))]), Utc::now());
    assert!(writer::write(&defs).await.is_err(), "the table is missing");
    assert_eq!(defs.queued(), 4, "the rows wait: event, property, pair and the team's flag");
    // Names seen meanwhile join the queue; those already waiting are not queued twice.
    defs.read(&batch(vec![event(team, "e", json!({"k": 1, "k2": true}))]), Utc::now());
    assert_eq!(defs.queued(), 6);
    db.exec("ALTER TABLE posthog_eventproperty_away RENAME TO posthog_eventproperty").await;
    writer::write(&defs).await.unwrap();
    let pairs = db.strings("SELECT event, property FROM posthog_eventproperty ORDER BY property").await;
    assert_eq!(pairs, ["e k", "e k2"]);
    let names = db.strings("SELECT name FROM posthog_propertydefinition ORDER BY name").await;
    assert_eq!(names, ["k", "k2"]);
}

async fn a_merge_moves_cohorts_and_hash_keys_without_duplicates(db: Db) {
    let team = db.team("A").await;
    let person = |name: &str| NewPerson {
        uuid: uuid::Uuid::now_v7(),
        team_id: team,
        properties: json!({"name": name}),
        created_at: Utc::now() - Duration::hours(1),
        is_identified: false,
    };
    let created = db
        .store
        .write_persons(&PersonWrites {
            creates: vec![person("target"), person("source"), person("bystander")],
            ..Default::default()
        })
        .await
        .unwrap();
    let id = |name: &str| -> Person { created.iter().find(|p| p.properties["name"] == name).unwrap().clone() };
    let (target, source, bystander) = (id("target"), id("source"), id("bystander"));
    let (t, s, b) = (target.id, source.id, bystander.id);
    db.exec(&format!(
        "INSERT INTO posthog_cohort (id, team_id, name, version) VALUES (1, {team}, 'both', 2), (2, {team}, 'source only', 1), \
           (3, {team}, 'newer on source', 5); \
         INSERT INTO posthog_cohortpeople (cohort_id, person_id, version) VALUES \
           (1, {t}, 2), (1, {s}, 2), (2, {s}, 1), (3, {t}, 4), (3, {s}, 5), (1, {b}, 2); \
         INSERT INTO posthog_featureflaghashkeyoverride (team_id, person_id, feature_flag_key, hash_key) VALUES \
           ({team}, {t}, 'shared', 'target-key'), ({team}, {s}, 'shared', 'source-key'), \
           ({team}, {s}, 'only-source', 'source-key'), ({team}, {b}, 'shared', 'bystander-key')"
    ))
    .await;
    let merged =
        MergedPerson { properties: json!({"name": "target"}), created_at: source.created_at, is_identified: true };
    db.store.merge_persons(&target, &source, &merged).await.unwrap();

    let who = format!("CASE person_id WHEN {t} THEN 'target' WHEN {b} THEN 'bystander' ELSE 'source' END");
    let cohorts = db
        .strings(&format!(
            "SELECT CAST(cohort_id AS TEXT), {who}, 'v' || CAST(version AS TEXT) FROM posthog_cohortpeople"
        ))
        .await;
    assert_eq!(
        cohorts,
        ["1 bystander v2", "1 target v2", "2 target v1", "3 target v5"],
        "one row per cohort for the survivor, the newer calculation kept"
    );
    let keys =
        db.strings(&format!("SELECT feature_flag_key, {who}, hash_key FROM posthog_featureflaghashkeyoverride")).await;
    assert_eq!(
        keys,
        ["only-source target source-key", "shared bystander bystander-key", "shared target target-key"],
        "the survivor's own override wins; nothing is left on the deleted person"
    );
}

/// Sends one event through `phs serve` (embedded) with `PHS_DEFINITIONS` as
/// given, and returns the database once the event is stored.
async fn serve_one_event(definitions: &str) -> (tempfile::TempDir, sqlx::SqlitePool) {
    use crate::util::embedded::{cli, post, wait_for_events};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let token = cli(&d, &["teams", "create", "shop"]).trim().to_string();
    let mut server = crate::util::server::start(&[
        ("PHS_DATA_DIR", d.display().to_string()),
        ("PHS_DEFINITIONS", definitions.to_string()),
    ]);
    crate::util::server::wait_healthy(&mut server);
    let body = json!({"api_key": token, "batch": [
        {"event": "signed_up", "distinct_id": "u1", "properties": {"plan": "pro", "$set": {"email": "a@b.c"}}},
    ]});
    let (code, _) =
        post(&format!("http://{}/batch/", server.capture), "application/json", body.to_string().into_bytes()).await;
    assert_eq!(code, 200);
    wait_for_events(&d, 1);
    let url = format!("sqlite://{}", d.join("phs.sqlite3").display());
    (dir, sqlx::SqlitePool::connect(&url).await.unwrap())
}

/// Polls `sql` (one text row) until it gives `want`, for up to 60 s: the
/// definitions writer retries a busy database with a backoff of up to 10 s,
/// and with the whole suite on two cores one write once took longer than 20 s.
async fn eventually(pool: &sqlx::SqlitePool, sql: &str, want: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let got: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(pool).await.unwrap();
        if got == want {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{sql}: {got}, not {want}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_writes_definitions_as_events_arrive() {
    let (_dir, db) = serve_one_event("true").await;
    eventually(
        &db,
        "SELECT (SELECT group_concat(name) FROM posthog_eventdefinition) || ' | ' || \
           (SELECT group_concat(type || ':' || name || ':' || property_type, ',') FROM \
              (SELECT * FROM posthog_propertydefinition WHERE name IN ('plan', 'email') ORDER BY type)) || ' | ' || \
           (SELECT group_concat(event || '.' || property) FROM posthog_eventproperty WHERE property = 'plan') || ' | ' || \
           (SELECT ingested_event FROM posthog_team)",
        "signed_up | 1:plan:String,2:email:String | signed_up.plan | 1",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_definitions_off_sets_only_the_first_event_flag() {
    let (_dir, db) = serve_one_event("false").await;
    eventually(&db, "SELECT CAST(ingested_event AS TEXT) FROM posthog_team", "1").await;
    let counts: String = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM posthog_eventdefinition) || ' ' || (SELECT count(*) FROM posthog_propertydefinition)",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(counts, "0 0");
}
