//! What a crash loop must leave behind, checked against the stores and
//! the receiver of the plugin's async hooks.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::Value;

use super::load::{Receiver, event};
use crate::util::eventually::eventually;
use crate::util::production::Deployment;

/// How long the stores may go without progress while they catch up: a
/// backlog drains at whatever rate the machine allows, and a stall fails.
const STALL: Duration = Duration::from_secs(120);

/// Polls `check` every second until it reports done. `check` returns
/// (done, progress, what it saw): the wait fails once `progress` has not
/// grown for [`STALL`].
async fn catch_up(what: &str, mut check: impl AsyncFnMut() -> (bool, u64, String)) {
    let (mut best, mut since) = (0, std::time::Instant::now());
    loop {
        let (done, progress, seen) = check().await;
        if done {
            return;
        }
        if progress > best {
            (best, since) = (progress, std::time::Instant::now());
        }
        assert!(since.elapsed() < STALL, "no progress for {} s waiting for {what}; last seen: {seen}", STALL.as_secs());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn expected_uuids(n: usize) -> HashSet<String> {
    (0..n).map(|i| event(i, n)["uuid"].as_str().unwrap().to_string()).collect()
}

pub struct Stored {
    /// Rows in the events table before ClickHouse merged duplicates away.
    pub rows: u64,
}

/// Waits until ClickHouse holds every event (and nothing else), each
/// processed by the plugin.
pub async fn clickhouse_events(d: &Deployment, n: usize) -> Stored {
    let client = phs::clickhouse::client(&d.settings.clickhouse).unwrap();
    let what = format!("all {n} events in ClickHouse");
    let count = async || -> (u64, u64) {
        client.query("SELECT uniqExact(uuid), count() FROM events").fetch_one().await.unwrap()
    };
    catch_up(&what, async || {
        let (uniq, rows) = count().await;
        (uniq >= n as u64, uniq, format!("{uniq} distinct uuids, {rows} rows"))
    })
    .await;
    let (uniq, rows) = count().await;
    assert_eq!(uniq, n as u64, "ClickHouse holds events nobody sent");
    let stored: HashSet<String> = client
        .query("SELECT uuid FROM events GROUP BY uuid")
        .fetch_all::<String>()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert!(stored == expected_uuids(n), "the stored uuids are not the sent ones");
    let unprocessed: u64 = client
        .query("SELECT count() FROM events WHERE NOT visitParamExtractBool(properties, 'processed')")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(unprocessed, 0, "events stored without passing through processEvent");
    Stored { rows }
}

/// Waits until the embedded events store holds every event, once.
pub async fn sqlite_events(dir: &std::path::Path, n: usize) {
    let url = format!("sqlite://{}?mode=ro", dir.join("events.sqlite3").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let what = format!("all {n} events in events.sqlite3");
    catch_up(&what, async || {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap();
        (count >= n as i64, count as u64, format!("{count} events"))
    })
    .await;
    let stored: HashSet<String> =
        sqlx::query_scalar("SELECT uuid FROM events").fetch_all(&pool).await.unwrap().into_iter().collect();
    assert!(stored == expected_uuids(n), "the stored uuids are not the sent ones ({} stored)", stored.len());
    let unprocessed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE json_extract(properties, '$.processed') IS NOT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(unprocessed, 0, "events stored without passing through processEvent");
}

/// Every person and distinct id in Postgres is in ClickHouse with the same
/// properties, and ClickHouse has no live person or id that Postgres has not.
pub async fn persons_agree(d: &Deployment, token: &str) {
    let pg = sqlx::PgPool::connect(d.settings.database_url.as_ref().unwrap().as_str()).await.unwrap();
    let team_id: i32 = sqlx::query_scalar("SELECT id FROM posthog_team WHERE api_token = $1")
        .bind(token)
        .fetch_one(&pg)
        .await
        .unwrap();
    let persons: Vec<(String, String)> =
        sqlx::query_as("SELECT uuid::text, properties::text FROM posthog_person WHERE team_id = $1")
            .bind(team_id)
            .fetch_all(&pg)
            .await
            .unwrap();
    let want_persons: BTreeMap<String, Value> =
        persons.into_iter().map(|(u, p)| (u, serde_json::from_str(&p).unwrap())).collect();
    let ids: Vec<(String, String)> = sqlx::query_as(
        "SELECT d.distinct_id, p.uuid::text FROM posthog_persondistinctid d JOIN posthog_person p ON p.id = d.person_id \
         WHERE d.team_id = $1",
    )
    .bind(team_id)
    .fetch_all(&pg)
    .await
    .unwrap();
    let want_ids: BTreeMap<String, String> = ids.into_iter().collect();
    assert!(want_persons.len() >= 50, "only {} persons: the load should make many", want_persons.len());

    let client = phs::clickhouse::client(&d.settings.clickhouse).unwrap();
    let team = team_id as i64;
    // Up to 40 s for the resync of a stopped batch (its marks are stale after 30 s, looked for every 10 s).
    eventually(Duration::from_secs(120), "ClickHouse's persons to agree with Postgres", async || {
        let rows: Vec<(String, String)> = client
            .query("SELECT id, properties FROM person FINAL WHERE team_id = ? AND is_deleted = 0")
            .bind(team)
            .fetch_all()
            .await
            .unwrap();
        let got_persons: BTreeMap<String, Value> =
            rows.into_iter().map(|(u, p)| (u, serde_json::from_str(&p).unwrap_or(Value::Null))).collect();
        let rows: Vec<(String, String)> = client
            .query("SELECT distinct_id, person_id FROM person_distinct_id2 FINAL WHERE team_id = ? AND is_deleted = 0")
            .bind(team)
            .fetch_all()
            .await
            .unwrap();
        let got_ids: BTreeMap<String, String> = rows.into_iter().collect();
        let differ = |a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>| {
            a.iter().filter(|(k, v)| b.get(*k) != Some(v)).map(|(k, _)| k.clone()).take(3).collect::<Vec<_>>()
        };
        let (missing, extra) = (differ(&want_persons, &got_persons), differ(&got_persons, &want_persons));
        let bad_ids: Vec<_> = want_ids.iter().filter(|(k, v)| got_ids.get(*k) != Some(v)).take(3).collect();
        let extra_ids: Vec<_> = got_ids.keys().filter(|k| !want_ids.contains_key(*k)).take(3).collect();
        if missing.is_empty() && extra.is_empty() && bad_ids.is_empty() && extra_ids.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{} persons in Postgres, {} live in ClickHouse; differing or missing in ClickHouse: {missing:?}; \
             live in ClickHouse only or differing: {extra:?}; distinct ids wrong in ClickHouse: {bad_ids:?}; \
             live only in ClickHouse: {extra_ids:?}",
            want_persons.len(),
            got_persons.len()
        ))
    })
    .await;
}

/// onEvent reported every watched event, a job ran for every job event, and
/// exportEvents got every event.
pub async fn hooks_saw_everything(r: &Receiver, n: usize) {
    let field = |name: &str| -> HashSet<String> {
        (0..n)
            .map(|i| event(i, n))
            .filter(|e| e["properties"][name] == true)
            .map(|e| e["uuid"].as_str().unwrap().to_string())
            .collect()
    };
    let (watched, jobs, all) = (field("watch"), field("job"), expected_uuids(n));
    // A killed worker's jobs come back after their 30 s lease; exports wait up to 2 s in the buffer.
    catch_up("onEvent, jobs and exportEvents to see every event", async || {
        let (seen, ran, exported) =
            (r.on_event.lock().unwrap().clone(), r.jobs.lock().unwrap().clone(), r.exported.lock().unwrap().clone());
        let lacking = [
            ("onEvent", watched.difference(&seen).count()),
            ("jobs", jobs.difference(&ran).count()),
            ("exportEvents", all.difference(&exported).count()),
        ];
        let missing: usize = lacking.iter().map(|(_, m)| m).sum();
        (missing == 0, (seen.len() + ran.len() + exported.len()) as u64, format!("events not seen yet: {lacking:?}"))
    })
    .await;
    let stray = r.exported.lock().unwrap().difference(&all).count();
    assert_eq!(stray, 0, "exportEvents got events nobody sent");
}
