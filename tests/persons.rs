//! The person and group rules of POSTHOG-SEMANTICS.md §2, run against both
//! backends (a fresh Postgres database and the embedded SQLite file) through
//! the persons stage itself; `persons_show_*` checks the same through
//! `phs serve` and `phs persons show`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use phs::pipeline::persons::Batch;
use phs::pipeline::persons::{Persons, Warning};
use phs::pipeline::prepare;
use phs::store::{NewTeam, Person, Store, StoreError};
use phs::wire::EventRow;

/// Generates `<name>_sqlite` and `<name>_postgres` from one async body taking a `Setup`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$name(super::Setup::new(crate::util::sqlite_store(&dir).await).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$name(super::Setup::new(crate::util::postgres_store(&dir).await).await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    new_persons_and_property_updates,
    identify_links_an_anonymous_person,
    identify_when_neither_exists_creates_one_identified_person,
    identify_merges_two_persons,
    identify_refuses_an_already_identified_person,
    merge_dangerously_merges_identified_persons,
    create_alias_joins_the_alias,
    illegal_and_equal_ids_are_not_merged,
    teams_are_isolated,
    concurrent_updates_and_merges_lose_nothing,
    groups_are_identified_and_attached,
    personless_events_touch_no_person,
    derived_properties_reach_the_person,
    a_batch_writes_each_person_once,
    a_batch_sees_its_own_joins,
    a_merge_keeps_the_batch_changes_of_both_persons,
    a_conflicting_batch_is_redone_without_losing_rows,
    a_batch_sees_its_own_group_writes,
    a_batch_stopped_before_its_rows_were_written_is_copied_again,
);

struct Setup {
    store: Arc<dyn Store>,
    persons: Persons,
    team: i64,
    clock: std::sync::atomic::AtomicI64,
}

impl Setup {
    async fn new(store: Arc<dyn Store>) -> Setup {
        let team = store
            .create_team(NewTeam { name: "persons".into(), anonymize_ips: false, api_token: None })
            .await
            .unwrap()
            .id;
        Setup { persons: Persons::new(store.clone(), 10_000), store, team, clock: 0.into() }
    }

    /// Runs one event (`{"event", "distinct_id", "properties"}`) through prepare and persons.
    async fn send_to(&self, team: i64, event: Value) -> (EventRow, Vec<Warning>) {
        let mut e = event.as_object().unwrap().clone();
        e.insert("uuid".into(), json!(uuid::Uuid::now_v7().to_string()));
        // Each event a second later than the last, so created_at orders are visible.
        let n = self.clock.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        e.entry("timestamp").or_insert(json!(at(n).to_rfc3339()));
        // One event per batch, retried on a conflict as the pipeline retries a
        // batch: concurrent sends stand for other instances.
        loop {
            let mut row = prepare::prepare(e.clone(), team, false, Utc::now());
            let batch = self.persons.batch();
            let result = match self.persons.process(&mut row, &batch).await {
                Ok(changes) => self.persons.flush(batch).await.map(|_| changes),
                Err(err) => Err(err),
            };
            match result {
                Ok(changes) => return (row, changes.warnings),
                Err(StoreError::Conflict(_)) => continue,
                Err(err) => panic!("persons step: {err}"),
            }
        }
    }

    async fn send(&self, event: Value) -> (EventRow, Vec<Warning>) {
        self.send_to(self.team, event).await
    }

    async fn person(&self, distinct_id: &str) -> Person {
        self.store
            .person_by_distinct_id(self.team, distinct_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no person for {distinct_id}"))
    }

    async fn ids(&self, p: &Person) -> Vec<String> {
        let mut ids: Vec<String> =
            self.store.distinct_ids_of(p.id).await.unwrap().into_iter().map(|(d, _)| d).collect();
        ids.sort();
        ids
    }
}

fn at(n: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T00:00:00Z").unwrap().with_timezone(&Utc) + chrono::Duration::seconds(n)
}

fn pageview(distinct_id: &str, props: Value) -> Value {
    json!({"event": "$pageview", "distinct_id": distinct_id, "properties": props})
}

fn identify(distinct_id: &str, anon: &str, props: Value) -> Value {
    let mut p = props.as_object().unwrap().clone();
    p.insert("$anon_distinct_id".into(), json!(anon));
    json!({"event": "$identify", "distinct_id": distinct_id, "properties": p})
}

async fn new_persons_and_property_updates(s: Setup) {
    let (row, _) = s.send(pageview("u1", json!({"$set": {"plan": "free", "n": 1}, "$set_once": {"first": "a"}}))).await;
    let p = s.person("u1").await;
    assert_eq!(p.version, 0);
    assert!(!p.is_identified);
    assert_eq!(p.properties["plan"], "free");
    assert_eq!(p.properties["first"], "a");
    assert_eq!(p.properties["$creator_event_uuid"], json!(row.uuid), "new persons name their creator event");
    assert_eq!(p.created_at, row.timestamp);
    let on_row = row.person.expect("the row carries its person");
    assert_eq!((on_row.uuid, on_row.properties.value()), (p.uuid, &p.properties));

    // $set overwrites, $set_once keeps the first value, $unset removes; one write, version + 1.
    s.send(pageview("u1", json!({"$set": {"plan": "pro"}, "$set_once": {"first": "b", "second": 2}, "$unset": ["n"]})))
        .await;
    let p = s.person("u1").await;
    assert_eq!(p.version, 1);
    assert_eq!(p.properties["plan"], "pro");
    assert_eq!(p.properties["first"], "a");
    assert_eq!(p.properties["second"], 2);
    assert!(p.properties.get("n").is_none());

    // Nothing new: no write.
    s.send(pageview("u1", json!({"$set": {"plan": "pro"}, "$set_once": {"first": "c"}}))).await;
    assert_eq!(s.person("u1").await.version, 1);
}

async fn identify_links_an_anonymous_person(s: Setup) {
    s.send(pageview("anon", json!({"$set": {"from": "anon"}}))).await;
    let anon = s.person("anon").await;
    let (row, warnings) = s.send(identify("user", "anon", json!({"$set": {"email": "a@b.c"}}))).await;
    assert!(warnings.is_empty());
    let p = s.person("user").await;
    assert_eq!(p.uuid, anon.uuid, "the new id joins the anonymous person");
    assert!(p.is_identified);
    assert_eq!(p.properties["from"], "anon");
    assert_eq!(p.properties["email"], "a@b.c");
    assert_eq!(s.ids(&p).await, vec!["anon", "user"]);
    assert_eq!(row.person.unwrap().uuid, p.uuid);

    // The other way round: the identified id exists, a new anonymous id joins it.
    s.send(identify("user", "anon2", json!({}))).await;
    assert_eq!(s.person("anon2").await.uuid, p.uuid);
}

async fn identify_when_neither_exists_creates_one_identified_person(s: Setup) {
    s.send(identify("user", "anon", json!({"$set": {"a": 1}}))).await;
    let p = s.person("user").await;
    assert_eq!(s.person("anon").await.uuid, p.uuid);
    assert!(p.is_identified);
    assert_eq!(p.properties["a"], 1);
    assert_eq!(s.ids(&p).await, vec!["anon", "user"]);
}

async fn identify_merges_two_persons(s: Setup) {
    s.send(pageview("anon", json!({"$set": {"shared": "from anon", "only_anon": 1}}))).await;
    s.send(pageview("user", json!({"$set": {"shared": "from user"}}))).await;
    let (anon, user) = (s.person("anon").await, s.person("user").await);
    assert_ne!(anon.uuid, user.uuid);

    let (row, warnings) = s.send(identify("user", "anon", json!({"$set": {"new": true}}))).await;
    assert!(warnings.is_empty());
    let merged = s.person("user").await;
    assert_eq!(merged.uuid, user.uuid, "the event's own person survives");
    assert_eq!(s.person("anon").await.uuid, user.uuid);
    assert_eq!(s.ids(&merged).await, vec!["anon", "user"]);
    assert_eq!(merged.properties["shared"], "from user", "the target's properties win");
    assert_eq!(merged.properties["only_anon"], 1);
    assert_eq!(merged.properties["new"], true);
    assert!(merged.is_identified);
    assert_eq!(merged.created_at, anon.created_at, "the earlier created_at stays");
    assert_eq!(merged.version, user.version + 1);
    assert_eq!(row.person.unwrap().uuid, user.uuid);
}

async fn identify_refuses_an_already_identified_person(s: Setup) {
    s.send(identify("first-user", "device", json!({}))).await; // device's person is now identified
    s.send(pageview("second-user", json!({}))).await;
    let device = s.person("device").await;
    assert!(device.is_identified);

    let (_, warnings) = s.send(identify("second-user", "device", json!({"$set": {"x": 1}}))).await;
    assert_eq!(warnings, vec![Warning::AlreadyIdentified]);
    let second = s.person("second-user").await;
    assert_ne!(second.uuid, device.uuid, "no merge");
    assert_eq!(s.person("device").await.uuid, device.uuid);
    assert_eq!(second.properties["x"], 1, "the event still updates its own person");
}

async fn merge_dangerously_merges_identified_persons(s: Setup) {
    s.send(identify("first-user", "device", json!({}))).await;
    s.send(pageview("second-user", json!({}))).await;
    let (_, warnings) = s
        .send(json!({"event": "$merge_dangerously", "distinct_id": "second-user", "properties": {"alias": "device"}}))
        .await;
    assert!(warnings.is_empty());
    let p = s.person("second-user").await;
    assert_eq!(s.ids(&p).await, vec!["device", "first-user", "second-user"]);
}

async fn create_alias_joins_the_alias(s: Setup) {
    s.send(pageview("main", json!({"$set": {"m": 1}}))).await;
    s.send(json!({"event": "$create_alias", "distinct_id": "main", "properties": {"alias": "other"}})).await;
    assert_eq!(s.person("other").await.uuid, s.person("main").await.uuid);
}

async fn illegal_and_equal_ids_are_not_merged(s: Setup) {
    s.send(pageview("null", json!({}))).await;
    let (_, w) = s.send(identify("user", "null", json!({"$set": {"a": 1}}))).await;
    assert_eq!(w, vec![Warning::IllegalDistinctId]);
    assert_ne!(s.person("user").await.uuid, s.person("null").await.uuid);
    assert_eq!(s.person("user").await.properties["a"], 1, "the event still updates its own person");

    let (_, w) =
        s.send(json!({"event": "$create_alias", "distinct_id": "user", "properties": {"alias": "'anonymous'"}})).await;
    assert_eq!(w, vec![Warning::IllegalDistinctId]);
    assert!(s.store.person_by_distinct_id(s.team, "'anonymous'").await.unwrap().is_none());

    let before = s.person("user").await;
    let (_, w) = s.send(identify("user", "user", json!({}))).await;
    assert!(w.is_empty());
    assert_eq!(s.ids(&s.person("user").await).await, vec!["user"]);
    assert_eq!(s.person("user").await.version, before.version, "a self-identify writes nothing");
}

async fn teams_are_isolated(s: Setup) {
    let other =
        s.store.create_team(NewTeam { name: "other".into(), anonymize_ips: false, api_token: None }).await.unwrap().id;
    s.send(pageview("anon", json!({"$set": {"team": "a"}}))).await;
    s.send_to(other, pageview("anon", json!({"$set": {"team": "b"}}))).await;
    s.send_to(other, identify("user", "anon", json!({}))).await;
    let a = s.person("anon").await;
    let b = s.store.person_by_distinct_id(other, "anon").await.unwrap().unwrap();
    assert_ne!(a.uuid, b.uuid);
    assert_eq!(a.properties["team"], "a");
    assert!(!a.is_identified, "an identify in another team does not touch this one");
    assert_eq!(s.ids(&a).await, vec!["anon"]);
    assert!(s.store.person_by_distinct_id(s.team, "user").await.unwrap().is_none());
}

async fn concurrent_updates_and_merges_lose_nothing(s: Setup) {
    let s = Arc::new(s);
    s.send(pageview("anon", json!({}))).await;
    s.send(pageview("user", json!({}))).await;
    // Eight writers on the anonymous person while it is merged into the user.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.send(pageview("anon", json!({"$set": {format!("k{i}"): i}}))).await;
        }));
    }
    let merger = s.clone();
    tasks.push(tokio::spawn(async move {
        merger.send(identify("user", "anon", json!({"$set": {"merged": true}}))).await;
    }));
    for t in tasks {
        t.await.unwrap();
    }
    let p = s.person("anon").await;
    assert_eq!(p.uuid, s.person("user").await.uuid);
    for i in 0..8 {
        assert_eq!(p.properties[format!("k{i}")], i, "update k{i} lost: {}", p.properties);
    }
    assert_eq!(p.properties["merged"], true);
}

async fn groups_are_identified_and_attached(s: Setup) {
    let gi = |kind: &str, key: &str, set: Value| {
        json!({"event": "$groupidentify", "distinct_id": "u",
               "properties": {"$group_type": kind, "$group_key": key, "$group_set": set}})
    };
    s.send(gi("company", "acme", json!({"name": "Acme", "size": 10}))).await;
    s.send(gi("project", "p1", json!({"name": "P"}))).await;
    let (_, _) = s.send(gi("company", "acme", json!({"size": 20}))).await;
    let acme = s.store.group(s.team, 0, "acme").await.unwrap().expect("company is group type 0");
    assert_eq!(acme.properties, json!({"name": "Acme", "size": 20}));
    assert_eq!(acme.version, 2);
    assert_eq!(acme.created_at, at(0), "created_at is the first identify's time");
    assert!(s.store.group(s.team, 1, "p1").await.unwrap().is_some(), "project is group type 1");

    let (row, _) = s.send(pageview("u", json!({"$groups": {"company": "acme", "project": "p1"}}))).await;
    assert_eq!(row.properties["$group_0"], "acme");
    assert_eq!(row.properties["$group_1"], "p1");
    assert_eq!(row.groups[0].as_ref().unwrap()["size"], 20);
    assert_eq!(row.groups[1].as_ref().unwrap()["name"], "P");

    // At most five group types per team: the sixth is ignored.
    for kind in ["t3", "t4", "t5", "t6"] {
        s.send(gi(kind, "k", json!({}))).await;
    }
    assert_eq!(s.store.group_type_index(s.team, "t5").await.unwrap(), Some(4));
    assert_eq!(s.store.group_type_index(s.team, "t6").await.unwrap(), None);
}

async fn personless_events_touch_no_person(s: Setup) {
    let (row, _) = s.send(pageview("ghost", json!({"$process_person_profile": false, "$set": {"a": 1}}))).await;
    assert!(row.person.is_none());
    assert!(s.store.person_by_distinct_id(s.team, "ghost").await.unwrap().is_none());
}

async fn derived_properties_reach_the_person(s: Setup) {
    s.send(pageview("u", json!({"$browser": "Firefox", "utm_source": "news"}))).await;
    s.send(pageview("u", json!({"$browser": "Chrome"}))).await;
    let p = s.person("u").await;
    assert_eq!(p.properties["$browser"], "Chrome");
    assert_eq!(p.properties["$initial_browser"], "Firefox");
    assert_eq!(p.properties["$initial_utm_source"], "news");
}

/// What a user sees: an anonymous visitor signs up through the capture
/// endpoint of an embedded `phs serve`, and `phs persons show` tells the story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persons_show_an_identify_through_serve() {
    use crate::util::embedded::{cli, post};
    use crate::util::server::{start, wait_healthy};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let token = cli(&d, &["teams", "create", "shop"]).trim().to_string();
    let mut server = start(&[("PHS_DATA_DIR", d.display().to_string())]);
    wait_healthy(&mut server);
    let body = json!({"api_key": token, "batch": [
        {"event": "$pageview", "distinct_id": "anon-1", "properties": {"$browser": "Firefox"}},
        {"event": "$identify", "distinct_id": "alice",
         "properties": {"$anon_distinct_id": "anon-1", "$set": {"email": "alice@example.com"}}},
    ]});
    let (code, _) =
        post(&format!("http://{}/batch/", server.capture), "application/json", body.to_string().into_bytes()).await;
    assert_eq!(code, 200);

    // Both events stored means both went through persons (the sink writes after them).
    let rows = crate::util::embedded::wait_for_events(&d, 2);
    let person_of = |name: &str| rows.iter().find(|r| r["event"] == name).unwrap()["person"].clone();
    let (viewed, identified) = (person_of("$pageview"), person_of("$identify"));
    assert_eq!(viewed["uuid"], identified["uuid"], "anon-1 and alice are one person: {rows:?}");
    assert_eq!(identified["properties"]["email"], "alice@example.com", "the event keeps its person's properties");
    let identified = "alice to be identified";
    let person = crate::util::eventually::eventually_blocking(std::time::Duration::from_secs(30), identified, || {
        let out = crate::util::phs()
            .args(["persons", "show", "alice", "--team", "shop", "--json"])
            .env("PHS_DATA_DIR", &d)
            .output()
            .unwrap();
        if out.status.success() {
            return Ok(serde_json::from_slice::<Value>(&out.stdout).unwrap());
        }
        assert_eq!(out.status.code(), Some(1), "{}", crate::util::stderr(&out));
        assert!(crate::util::stderr(&out).contains("no person has the distinct id `alice`"));
        Err(crate::util::stderr(&out))
    });
    let mut ids: Vec<&str> = person["distinct_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["alice", "anon-1"]);
    assert_eq!(person["is_identified"], true);
    assert_eq!(person["properties"]["email"], "alice@example.com");
    assert_eq!(person["properties"]["$initial_browser"], "Firefox");

    let text = cli(&d, &["persons", "show", "anon-1", "--team", "shop"]);
    assert!(text.contains("identified    yes") && text.contains("alice") && text.contains("anon-1"), "{text}");
}

/// Runs events through prepare and persons in one batch, without flushing it.
async fn in_batch(s: &Setup, batch: &Batch, events: Vec<Value>) -> Vec<EventRow> {
    let mut rows = Vec::new();
    for event in events {
        let mut e = event.as_object().unwrap().clone();
        e.insert("uuid".into(), json!(uuid::Uuid::now_v7().to_string()));
        let mut row = prepare::prepare(e, s.team, false, Utc::now());
        s.persons.process(&mut row, batch).await.expect("persons step");
        rows.push(row);
    }
    rows
}

async fn a_batch_writes_each_person_once(s: Setup) {
    s.send(pageview("old", json!({"$set": {"n": 0}}))).await;
    s.send(pageview("twin-a", json!({}))).await;
    s.send(identify("twin-b", "twin-a", json!({}))).await;
    let old = s.person("old").await;

    let batch = s.persons.batch();
    s.persons.prefetch(&batch, &["old", "new", "twin-a", "twin-b"].map(|id| (s.team, id))).await.unwrap();
    let rows = in_batch(
        &s,
        &batch,
        vec![
            pageview("old", json!({"$set": {"n": 1}})),
            pageview("new", json!({"$set": {"plan": "free"}})),
            pageview("old", json!({"$set": {"n": 2}, "$set_once": {"first": "x"}})),
            pageview("new", json!({"$set": {"plan": "pro"}})),
            // Two distinct ids of one person share its state within the batch.
            pageview("twin-a", json!({"$set": {"a": 1}})),
            pageview("twin-b", json!({"$set": {"b": 1}})),
        ],
    )
    .await;
    assert!(
        s.store.person_by_distinct_id(s.team, "new").await.unwrap().is_none(),
        "nothing is written before the flush"
    );
    assert_eq!(rows[3].person.as_ref().unwrap().properties["plan"], "pro", "rows see the batch's own updates");
    assert_eq!(rows[5].person.as_ref().unwrap().properties["a"], 1);

    let written = s.persons.flush(batch).await.unwrap();
    let old_after = s.person("old").await;
    assert_eq!(old_after.version, old.version + 1, "one write for the batch's updates");
    assert_eq!((&old_after.properties["n"], &old_after.properties["first"]), (&json!(2), &json!("x")));
    let new = s.person("new").await;
    assert_eq!((new.version, &new.properties["plan"]), (0, &json!("pro")));
    let twin = s.person("twin-a").await;
    assert_eq!((&twin.properties["a"], &twin.properties["b"]), (&json!(1), &json!(1)));

    let mut rows: Vec<(String, i64)> =
        written.persons.iter().map(|p| (p.properties["$creator_event_uuid"].to_string(), p.version)).collect();
    rows.sort();
    assert_eq!(written.persons.len(), 3, "one person row per changed person: {rows:?}");
    let ids: Vec<&str> = written.distinct_ids.iter().map(|d| d.distinct_id.as_str()).collect();
    assert_eq!(ids, ["new"]);
}

async fn a_batch_sees_its_own_joins(s: Setup) {
    let batch = s.persons.batch();
    let rows = in_batch(
        &s,
        &batch,
        vec![
            pageview("anon", json!({"$set": {"seen": "anon"}})),
            identify("user", "anon", json!({"$set": {"email": "a@b.c"}})),
            pageview("user", json!({"$set": {"plan": "pro"}})),
            pageview("anon", json!({})),
        ],
    )
    .await;
    let uuids: Vec<_> = rows.iter().map(|r| r.person.as_ref().unwrap().uuid).collect();
    assert!(uuids.iter().all(|u| *u == uuids[0]), "one person throughout: {uuids:?}");
    s.persons.flush(batch).await.unwrap();
    let p = s.person("user").await;
    assert_eq!(p.uuid, uuids[0]);
    assert_eq!(s.ids(&p).await, vec!["anon", "user"]);
    assert!(p.is_identified);
    assert_eq!(
        (&p.properties["seen"], &p.properties["email"], &p.properties["plan"]),
        (&json!("anon"), &json!("a@b.c"), &json!("pro"))
    );
}

async fn a_merge_keeps_the_batch_changes_of_both_persons(s: Setup) {
    s.send(pageview("anon", json!({}))).await;
    s.send(pageview("user", json!({}))).await;
    let anon = s.person("anon").await;
    let batch = s.persons.batch();
    in_batch(
        &s,
        &batch,
        vec![
            pageview("anon", json!({"$set": {"a": 1}})),
            pageview("user", json!({"$set": {"b": 2}})),
            identify("user", "anon", json!({"$set": {"c": 3}})),
            pageview("anon", json!({"$set": {"d": 4}})),
            pageview("newcomer", json!({})),
            identify("user", "newcomer", json!({})),
        ],
    )
    .await;
    let written = s.persons.flush(batch).await.unwrap();
    let p = s.person("anon").await;
    assert_eq!(p.uuid, s.person("user").await.uuid);
    for (k, v) in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] {
        assert_eq!(p.properties[k], v, "{k} lost: {}", p.properties);
    }
    assert_eq!(s.ids(&p).await, vec!["anon", "newcomer", "user"]);
    assert!(written.persons.iter().any(|r| r.uuid == anon.uuid && r.is_deleted), "the merged-away person's row");
}

async fn a_conflicting_batch_is_redone_without_losing_rows(s: Setup) {
    s.send(pageview("anon", json!({}))).await;
    s.send(pageview("user", json!({}))).await;
    s.send(pageview("x", json!({}))).await;
    let anon = s.person("anon").await;
    let events = || vec![identify("user", "anon", json!({})), pageview("x", json!({"$set": {"mine": 1}}))];

    let batch = s.persons.batch();
    in_batch(&s, &batch, events()).await;
    // Another instance writes x meanwhile: this batch's write of x must not overwrite it.
    s.send(pageview("x", json!({"$set": {"theirs": 1}}))).await;
    match s.persons.flush(batch).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }

    let batch = s.persons.batch();
    in_batch(&s, &batch, events()).await;
    let written = s.persons.flush(batch).await.unwrap();
    let x = s.person("x").await;
    assert_eq!((&x.properties["mine"], &x.properties["theirs"]), (&json!(1), &json!(1)));
    // The merge was committed by the first attempt; its rows still reach the sinks.
    assert!(written.persons.iter().any(|r| r.uuid == anon.uuid && r.is_deleted), "{:?}", written.persons);
    assert!(written.distinct_ids.iter().any(|d| d.distinct_id == "anon" && d.version == 1));
}

async fn a_batch_sees_its_own_group_writes(s: Setup) {
    let gi = |size: i64| {
        json!({"event": "$groupidentify", "distinct_id": "u",
               "properties": {"$group_type": "company", "$group_key": "acme", "$group_set": {"size": size}}})
    };
    let view = || pageview("u", json!({"$groups": {"company": "acme"}}));
    let batch = s.persons.batch();
    let rows = in_batch(&s, &batch, vec![view(), gi(10), view(), gi(20), view()]).await;
    s.persons.flush(batch).await.unwrap();
    assert_eq!(rows[0].groups[0], None, "no group yet");
    assert_eq!(rows[2].groups[0].as_ref().unwrap()["size"], 10);
    assert_eq!(rows[4].groups[0].as_ref().unwrap()["size"], 20, "the batch's read is replaced by its write");
    assert_eq!(s.store.group(s.team, 0, "acme").await.unwrap().unwrap().properties["size"], 20);
}

/// A sink that keeps what it is given.
#[derive(Default)]
struct Kept(std::sync::Mutex<Vec<phs::pipeline::sink::SinkBatch>>);

#[async_trait::async_trait]
impl phs::pipeline::sink::EventSink for Kept {
    async fn write(&self, batch: &phs::pipeline::sink::SinkBatch) -> Result<(), phs::error::PipeError> {
        self.0.lock().unwrap().push(batch.clone());
        Ok(())
    }
    async fn latest(&self, _: &phs::pipeline::sink::EventFilter) -> Result<Vec<EventRow>, phs::error::PipeError> {
        Ok(Vec::new())
    }
}

/// A batch whose person writes committed but whose rows never reached the
/// sinks (the process was killed in between) leaves marks: the resync pass
/// copies those persons' stored state, the merged-away one as deleted, and
/// clears the marks; a batch whose rows were written and settled leaves none.
async fn a_batch_stopped_before_its_rows_were_written_is_copied_again(s: Setup) {
    use phs::pipeline::persons::resync::repair;
    let persons = Persons::new(s.store.clone(), 10_000).mirrored(true);
    let run = async |events: Vec<Value>| {
        let batch = persons.batch();
        for event in events {
            let mut e = event.as_object().unwrap().clone();
            e.insert("uuid".into(), json!(uuid::Uuid::now_v7().to_string()));
            let mut row = prepare::prepare(e, s.team, false, Utc::now());
            persons.process(&mut row, &batch).await.expect("persons step");
        }
        persons.flush(batch).await.unwrap()
    };
    let store: &dyn phs::store::PersonStore = s.store.as_ref();
    // Settled: nothing to copy again.
    let written = run(vec![pageview("settled", json!({"$set": {"n": 1}}))]).await;
    assert_eq!(written.marks.len(), 1, "the write was marked");
    persons.settle(&written.marks).await;
    let sink = Kept::default();
    assert_eq!(repair(store, &sink, std::time::Duration::ZERO).await.unwrap(), 0);

    // Stopped: the persons were created, then merged, and no row was written.
    let written = run(vec![
        pageview("anon", json!({"$set": {"a": 1}})),
        pageview("user", json!({"$set": {"b": 2}})),
        identify("user", "anon", json!({"$set": {"c": 3}})),
    ])
    .await;
    assert_eq!(written.marks.len(), 2, "the creations and the merge were marked");
    let merged_away = written.persons.iter().find(|r| r.is_deleted).expect("a merge happened").clone();
    // Not too young to be copied: with an age of an hour, the marks wait.
    assert_eq!(repair(store, &sink, std::time::Duration::from_secs(3600)).await.unwrap(), 0);
    assert!(repair(store, &sink, std::time::Duration::ZERO).await.unwrap() >= 2);
    let kept = sink.0.lock().unwrap().clone();
    let user = s.person("user").await;
    let live = kept.iter().flat_map(|b| &b.persons).rfind(|r| r.uuid == user.uuid && !r.is_deleted).unwrap();
    assert_eq!((live.version, &live.properties), (user.version, &user.properties), "the stored state");
    let deleted = kept.iter().flat_map(|b| &b.persons).find(|r| r.uuid == merged_away.uuid).unwrap();
    assert!(deleted.is_deleted && deleted.version == merged_away.version, "the merge's deletion: {deleted:?}");
    let mut ids: Vec<(String, uuid::Uuid)> =
        kept.iter().flat_map(|b| &b.distinct_ids).map(|d| (d.distinct_id.clone(), d.person_uuid)).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids, vec![("anon".to_string(), user.uuid), ("user".to_string(), user.uuid)]);
    assert_eq!(repair(store, &sink, std::time::Duration::ZERO).await.unwrap(), 0, "the marks were cleared");
}
