//! The SQL of [`PersonStore`](crate::store::PersonStore), shared by Postgres
//! and SQLite like the rest of [`crate::store::sql`], which invokes this
//! macro with the same dialect module.
//!
//! Every write that changes an existing row carries the version it read in
//! its WHERE clause; no row affected means someone else wrote first, which
//! becomes [`StoreError::Conflict`]. A unique-key violation (a distinct id or
//! person uuid taken meanwhile) is a conflict too.

macro_rules! impl_sql_persons {
    ($store:ty, $d:ident) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::AssertSqlSafe as Sql;

            use $crate::store::model::{Group, MergedPerson, Person, PersonWrites, ResyncEntry};
            use $crate::store::rows::{GroupRow, PersonByIdRow, PersonRow};
            use $crate::store::{PersonStore, Result, StoreError};

            /// `p` is the table's alias in joins, empty in RETURNING (which SQLite keeps unqualified).
            fn person_columns(p: &str) -> String {
                format!(
                    "{p}id{b} AS id, {p}uuid{t} AS uuid, {p}team_id{b} AS team_id, {p}properties{t} AS properties, \
                     {p}created_at, {p}is_identified, coalesce({p}version, 0){b} AS version",
                    b = $d::BIGINT,
                    t = $d::TEXT
                )
            }

            fn group_columns() -> String {
                format!(
                    "team_id{b} AS team_id, group_type_index{b} AS group_type_index, group_key, \
                     group_properties{t} AS properties, created_at, version{b} AS version",
                    b = $d::BIGINT,
                    t = $d::TEXT
                )
            }

            /// A unique-key violation means another writer took the key first.
            fn conflict_or(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
                move |e| match &e {
                    sqlx::Error::Database(db) if db.is_unique_violation() => {
                        StoreError::Conflict(format!("{context}: {db}"))
                    }
                    _ => StoreError::Query { context, source: e },
                }
            }

            async fn update_checked<'c, E>(
                exec: E,
                person: &Person,
                properties: &serde_json::Value,
                is_identified: bool,
                created_at: chrono::DateTime<chrono::Utc>,
            ) -> Result<Person>
            where
                E: sqlx::Executor<'c, Database = $d::DB>,
            {
                let row: Option<PersonRow> = sqlx::query_as(Sql(format!(
                    "UPDATE posthog_person SET properties = $1{j}, is_identified = $2, created_at = $3, \
                       version = coalesce(version, 0) + 1 \
                     WHERE id = $4 AND coalesce(version, 0) = $5 RETURNING {cols}",
                    j = $d::JSONB,
                    cols = person_columns("")
                )))
                .bind(properties.to_string())
                .bind(is_identified)
                .bind(created_at)
                .bind(person.id)
                .bind(person.version)
                .fetch_optional(exec)
                .await
                .map_err(StoreError::query("update a person"))?;
                row.ok_or_else(|| StoreError::Conflict(format!("person {} changed or was merged away", person.uuid)))?
                    .try_into()
            }

            /// Repoints what PostHog keys by person id from `source` to
            /// `target` within a merge: cohort memberships and feature-flag
            /// hash-key overrides. Without this, deleting `source` would drop
            /// the person from its cohorts and change its flag rollouts.
            async fn move_person_rows(
                tx: &mut sqlx::Transaction<'static, $d::DB>,
                target: &Person,
                source: &Person,
            ) -> Result<()> {
                // Where both were in a cohort the newer calculation's row stays (the
                // lower id on a tie), so the survivor is in each cohort once.
                sqlx::query(
                    "DELETE FROM posthog_cohortpeople WHERE person_id IN ($1, $2) AND id IN (\
                       SELECT c.id FROM posthog_cohortpeople AS c JOIN posthog_cohortpeople AS o \
                         ON o.cohort_id = c.cohort_id AND o.person_id IN ($1, $2) AND o.id <> c.id \
                       WHERE c.person_id IN ($1, $2) AND (coalesce(o.version, -1) > coalesce(c.version, -1) \
                         OR (coalesce(o.version, -1) = coalesce(c.version, -1) AND o.id < c.id)))",
                )
                .bind(target.id)
                .bind(source.id)
                .execute(&mut **tx)
                .await
                .map_err(StoreError::query("drop cohort memberships both merged persons had"))?;
                sqlx::query("UPDATE posthog_cohortpeople SET person_id = $1 WHERE person_id = $2")
                    .bind(target.id)
                    .bind(source.id)
                    .execute(&mut **tx)
                    .await
                    .map_err(StoreError::query("move cohort memberships to the merged person"))?;
                // The survivor's own override of a flag wins, as in the original.
                sqlx::query(
                    "INSERT INTO posthog_featureflaghashkeyoverride (team_id, person_id, feature_flag_key, hash_key) \
                     SELECT team_id, $1, feature_flag_key, hash_key FROM posthog_featureflaghashkeyoverride \
                     WHERE team_id = $3 AND person_id = $2 ON CONFLICT DO NOTHING",
                )
                .bind(target.id)
                .bind(source.id)
                .bind(source.team_id)
                .execute(&mut **tx)
                .await
                .map_err(StoreError::query("copy feature-flag hash keys to the merged person"))?;
                sqlx::query("DELETE FROM posthog_featureflaghashkeyoverride WHERE team_id = $2 AND person_id = $1")
                    .bind(source.id)
                    .bind(source.team_id)
                    .execute(&mut **tx)
                    .await
                    .map_err(StoreError::query("drop the merged-away person's hash keys"))?;
                Ok(())
            }

            /// Rows for a `json_records` parameter.
            fn json_array<T>(items: &[T], row: impl Fn(&T) -> serde_json::Value) -> String {
                serde_json::Value::Array(items.iter().map(row).collect()).to_string()
            }

            #[async_trait]
            impl PersonStore for $store {
                async fn person_by_distinct_id(&self, team_id: i64, distinct_id: &str) -> Result<Option<Person>> {
                    let row: Option<PersonRow> = sqlx::query_as(Sql(format!(
                        "SELECT {cols} FROM posthog_persondistinctid AS d \
                         JOIN posthog_person AS p ON p.id = d.person_id \
                         WHERE d.team_id = $1 AND d.distinct_id = $2",
                        cols = person_columns("p.")
                    )))
                    .bind(team_id)
                    .bind(distinct_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::query("find a person by distinct id"))?;
                    row.map(Person::try_from).transpose()
                }

                async fn persons_by_distinct_ids(
                    &self,
                    ids: &[(i64, &str)],
                ) -> Result<std::collections::HashMap<(i64, String), Person>> {
                    if ids.is_empty() {
                        return Ok(Default::default());
                    }
                    let pairs: Vec<serde_json::Value> =
                        ids.iter().map(|(t, d)| serde_json::json!({"team_id": t, "distinct_id": d})).collect();
                    let rows: Vec<PersonByIdRow> = sqlx::query_as(Sql(format!(
                        "SELECT d.distinct_id, {cols} FROM {ids} \
                         JOIN posthog_persondistinctid AS d ON d.team_id = v.team_id AND d.distinct_id = v.distinct_id \
                         JOIN posthog_person AS p ON p.id = d.person_id",
                        cols = person_columns("p."),
                        ids = $d::json_records("$1", &[("team_id", "bigint"), ("distinct_id", "text")])
                    )))
                    .bind(serde_json::Value::Array(pairs).to_string())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::query("find persons by distinct ids"))?;
                    rows.into_iter()
                        .map(|r| {
                            let person = Person::try_from(r.person)?;
                            Ok(((person.team_id, r.distinct_id), person))
                        })
                        .collect()
                }

                async fn person_by_uuid(&self, team_id: i64, uuid: uuid::Uuid) -> Result<Option<Person>> {
                    let row: Option<PersonRow> = sqlx::query_as(Sql(format!(
                        "SELECT {cols} FROM posthog_person AS p WHERE p.team_id = $1 AND p.uuid = $2{u}",
                        cols = person_columns("p."),
                        u = $d::UUID
                    )))
                    .bind(team_id)
                    .bind(uuid.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::query("find a person by uuid"))?;
                    row.map(Person::try_from).transpose()
                }

                async fn mark_resync(&self, entries: &[ResyncEntry]) -> Result<i64> {
                    sqlx::query_scalar(Sql(format!(
                        "INSERT INTO phs_person_resync (entries, created_at_ms) VALUES ($1, $2) RETURNING id{b}",
                        b = $d::BIGINT
                    )))
                    .bind(serde_json::to_string(entries).expect("resync entries serialize"))
                    .bind(chrono::Utc::now().timestamp_millis())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(StoreError::query("mark persons to copy to ClickHouse"))
                }

                async fn clear_resyncs(&self, marks: &[i64]) -> Result<()> {
                    if marks.is_empty() {
                        return Ok(());
                    }
                    sqlx::query(Sql(format!(
                        "DELETE FROM phs_person_resync WHERE id IN (SELECT CAST(ids.m AS BIGINT) FROM {ids})",
                        ids = $d::json_strings("$1", "m")
                    )))
                    .bind(serde_json::to_string(&marks.iter().map(i64::to_string).collect::<Vec<_>>()).expect("ids serialize"))
                    .execute(&self.pool)
                    .await
                    .map_err(StoreError::query("clear persons copied to ClickHouse"))?;
                    Ok(())
                }

                async fn stale_resyncs(&self, before_ms: i64, limit: i64) -> Result<Vec<(i64, Vec<ResyncEntry>)>> {
                    let rows: Vec<(i64, String)> = sqlx::query_as(Sql(format!(
                        "SELECT id{b}, entries FROM phs_person_resync WHERE created_at_ms < $1 ORDER BY id LIMIT $2",
                        b = $d::BIGINT
                    )))
                    .bind(before_ms)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::query("find persons left to copy to ClickHouse"))?;
                    rows.into_iter()
                        .map(|(id, entries)| {
                            let entries = serde_json::from_str(&entries).map_err(|e| {
                                StoreError::Invalid(format!("phs_person_resync {id}: entries are not valid: {e}"))
                            })?;
                            Ok((id, entries))
                        })
                        .collect()
                }

                async fn distinct_ids_of(&self, person_id: i64) -> Result<Vec<(String, i64)>> {
                    sqlx::query_as(Sql(format!(
                        "SELECT distinct_id, coalesce(version, 0){b} FROM posthog_persondistinctid \
                         WHERE person_id = $1 ORDER BY id",
                        b = $d::BIGINT
                    )))
                    .bind(person_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::query("list a person's distinct ids"))
                }

                async fn write_persons(&self, w: &PersonWrites) -> Result<Vec<Person>> {
                    if w.is_empty() {
                        return Ok(Vec::new());
                    }
                    // Each kind of write is one statement over a JSON array of rows, so a
                    // batch costs three round trips whatever its size.
                    let mut tx = self.pool.begin().await.map_err(StoreError::query("begin writing persons"))?;
                    let mut created = Vec::with_capacity(w.creates.len());
                    if !w.creates.is_empty() {
                        let rows = json_array(&w.creates, |p| serde_json::json!({
                                    "uuid": p.uuid, "team_id": p.team_id, "properties": p.properties,
                                    // The text sqlx itself stores for a timestamp in SQLite.
                                    "created_at": p.created_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
                                    "is_identified": p.is_identified,
                                }));
                        let rows: Vec<PersonRow> = sqlx::query_as(Sql(format!(
                            "INSERT INTO posthog_person (uuid, team_id, properties, created_at, is_identified, version) \
                             SELECT v.uuid, v.team_id, v.properties, v.created_at, v.is_identified, 0 FROM {v} \
                             RETURNING {cols}",
                            v = $d::json_records(
                                "$1",
                                &[
                                    ("uuid", "uuid"),
                                    ("team_id", "bigint"),
                                    ("properties", "jsonb"),
                                    ("created_at", "timestamptz"),
                                    ("is_identified", "boolean")
                                ]
                            ),
                            cols = person_columns("")
                        )))
                        .bind(rows)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(conflict_or("create persons"))?;
                        for row in rows {
                            created.push(Person::try_from(row)?);
                        }
                    }
                    if !w.updates.is_empty() {
                        let rows = json_array(&w.updates, |u| serde_json::json!({
                                    "id": u.id, "version": u.version, "properties": u.properties,
                                    "is_identified": u.is_identified,
                                }));
                        let done = sqlx::query(Sql(format!(
                            "UPDATE posthog_person AS p SET properties = v.properties, \
                               is_identified = v.is_identified, version = coalesce(p.version, 0) + 1 \
                             FROM {v} WHERE p.id = v.id AND coalesce(p.version, 0) = v.version",
                            v = $d::json_records(
                                "$1",
                                &[("id", "bigint"), ("version", "bigint"), ("properties", "jsonb"), ("is_identified", "boolean")]
                            )
                        )))
                        .bind(rows)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::query("update persons"))?;
                        if done.rows_affected() != w.updates.len() as u64 {
                            return Err(StoreError::Conflict(format!(
                                "{} of {} persons changed or were merged away meanwhile",
                                w.updates.len() as u64 - done.rows_affected(),
                                w.updates.len()
                            )));
                        }
                    }
                    if !w.distinct_ids.is_empty() {
                        let rows = json_array(&w.distinct_ids, |d| serde_json::json!({
                                    "team_id": d.team_id, "person_uuid": d.person_uuid, "distinct_id": d.distinct_id,
                                }));
                        // Joined with the person, so an id is only added while its person still exists.
                        let done = sqlx::query(Sql(format!(
                            "INSERT INTO posthog_persondistinctid (distinct_id, person_id, team_id, version) \
                             SELECT v.distinct_id, p.id, p.team_id, 0 FROM {v} \
                             JOIN posthog_person AS p ON p.team_id = v.team_id AND p.uuid = v.person_uuid",
                            v = $d::json_records(
                                "$1",
                                &[("team_id", "bigint"), ("person_uuid", "uuid"), ("distinct_id", "text")]
                            )
                        )))
                        .bind(rows)
                        .execute(&mut *tx)
                        .await
                        .map_err(conflict_or("add distinct ids"))?;
                        if done.rows_affected() != w.distinct_ids.len() as u64 {
                            return Err(StoreError::Conflict("a person was merged away before its new distinct id was added".into()));
                        }
                    }
                    tx.commit().await.map_err(conflict_or("commit person writes"))?;
                    Ok(created)
                }

                async fn merge_persons(
                    &self,
                    target: &Person,
                    source: &Person,
                    merged: &MergedPerson,
                ) -> Result<(Person, Vec<(String, i64)>)> {
                    let mut tx = self.pool.begin().await.map_err(StoreError::query("begin a person merge"))?;
                    let person =
                        update_checked(&mut *tx, target, &merged.properties, merged.is_identified, merged.created_at)
                            .await?;
                    let moved: Vec<(String, i64)> = sqlx::query_as(Sql(format!(
                        "UPDATE posthog_persondistinctid SET person_id = $1, version = coalesce(version, 0) + 1 \
                         WHERE person_id = $2 RETURNING distinct_id, version{b}",
                        b = $d::BIGINT
                    )))
                    .bind(target.id)
                    .bind(source.id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(StoreError::query("move distinct ids to the merged person"))?;
                    move_person_rows(&mut tx, target, source).await?;
                    let deleted = sqlx::query("DELETE FROM posthog_person WHERE id = $1 AND coalesce(version, 0) = $2")
                        .bind(source.id)
                        .bind(source.version)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::query("delete the merged-away person"))?;
                    if deleted.rows_affected() == 0 {
                        return Err(StoreError::Conflict(format!("person {} changed during a merge", source.uuid)));
                    }
                    tx.commit().await.map_err(conflict_or("commit a person merge"))?;
                    Ok((person, moved))
                }

                async fn group_type_index(&self, team_id: i64, group_type: &str) -> Result<Option<i32>> {
                    let find = || {
                        sqlx::query_scalar::<_, i64>(Sql(format!(
                            "SELECT group_type_index{b} FROM posthog_grouptypemapping \
                             WHERE team_id = $1 AND group_type = $2",
                            b = $d::BIGINT
                        )))
                        .bind(team_id)
                        .bind(group_type)
                    };
                    if let Some(i) =
                        find().fetch_optional(&self.pool).await.map_err(StoreError::query("find a group type"))?
                    {
                        return Ok(Some(i as i32));
                    }
                    // The lowest free index; the lock keeps two writers from picking the same one.
                    let mut tx = $d::begin_exclusive(&self.pool, "phs:grouptypemapping").await?;
                    sqlx::query(
                        "INSERT INTO posthog_grouptypemapping (team_id, group_type, group_type_index) \
                         SELECT $1, $2, i FROM (SELECT 0 AS i UNION ALL SELECT 1 UNION ALL SELECT 2 \
                           UNION ALL SELECT 3 UNION ALL SELECT 4) AS free \
                         WHERE i NOT IN (SELECT group_type_index FROM posthog_grouptypemapping WHERE team_id = $1) \
                         ORDER BY i LIMIT 1 \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(team_id)
                    .bind(group_type)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::query("add a group type"))?;
                    let index =
                        find().fetch_optional(&mut *tx).await.map_err(StoreError::query("find a group type"))?;
                    tx.commit().await.map_err(StoreError::query("commit a group type"))?;
                    Ok(index.map(|i| i as i32))
                }

                async fn group(&self, team_id: i64, index: i32, key: &str) -> Result<Option<Group>> {
                    let row: Option<GroupRow> = sqlx::query_as(Sql(format!(
                        "SELECT {cols} FROM posthog_group \
                         WHERE team_id = $1 AND group_type_index = $2 AND group_key = $3",
                        cols = group_columns()
                    )))
                    .bind(team_id)
                    .bind(index)
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::query("find a group"))?;
                    row.map(Group::try_from).transpose()
                }

                async fn write_group(&self, g: &Group, expected_version: Option<i64>) -> Result<Group> {
                    let query = match expected_version {
                        None => format!(
                            "INSERT INTO posthog_group (team_id, group_type_index, group_key, group_properties, \
                               created_at, version) SELECT $1, $2, $3, $4{j}, $5, $6 WHERE $7{b} IS NULL \
                             RETURNING {cols}",
                            j = $d::JSONB,
                            b = $d::BIGINT,
                            cols = group_columns()
                        ),
                        Some(_) => format!(
                            "UPDATE posthog_group SET group_properties = $4{j}, created_at = $5, version = $6 \
                             WHERE team_id = $1 AND group_type_index = $2 AND group_key = $3 AND version = $7 \
                             RETURNING {cols}",
                            j = $d::JSONB,
                            cols = group_columns()
                        ),
                    };
                    let row: Option<GroupRow> = sqlx::query_as(Sql(query))
                        .bind(g.team_id)
                        .bind(g.group_type_index)
                        .bind(&g.group_key)
                        .bind(g.properties.to_string())
                        .bind(g.created_at)
                        .bind(g.version)
                        .bind(expected_version)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(conflict_or("write a group"))?;
                    row.ok_or_else(|| StoreError::Conflict(format!("group {} changed", g.group_key)))?.try_into()
                }
            }
        };
    };
}

pub(crate) use impl_sql_persons;
