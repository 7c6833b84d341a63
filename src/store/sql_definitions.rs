//! The SQL of [`DefinitionStore`](crate::store::DefinitionStore), shared by
//! Postgres and SQLite through the dialect of [`super::sql`].
//!
//! Inserts name no conflict target: `ON CONFLICT DO NOTHING` then holds
//! whichever unique index the table has, phs's own or the one of the Django
//! version that created it, which have differed over PostHog's history.
//! The follow-up updates match rows by their columns for the same reason.
//! Rows are sorted, so two instances writing overlapping sets take their
//! row locks in the same order instead of deadlocking.

macro_rules! impl_sql_definitions {
    ($store:ty, $d:ident) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::AssertSqlSafe as Sql;

            use $crate::store::definitions::{DefinitionStore, NewDefinitions};
            use $crate::store::{Result, StoreError};

            fn records<T: Ord>(mut rows: Vec<T>, row: impl Fn(&T) -> serde_json::Value) -> String {
                rows.sort_unstable();
                serde_json::Value::Array(rows.iter().map(row).collect()).to_string()
            }

            #[async_trait]
            impl DefinitionStore for $store {
                async fn write_definitions(&self, d: &NewDefinitions) -> Result<()> {
                    if d.is_empty() {
                        return Ok(());
                    }
                    let mut tx = self.pool.begin().await.map_err(StoreError::query("begin writing definitions"))?;
                    if !d.events.is_empty() {
                        let rows = records(d.events.iter().collect(), |(team, name)| {
                            serde_json::json!({"id": uuid::Uuid::now_v7(), "team_id": team, "name": name})
                        });
                        let v = $d::json_records("$1", &[("id", "uuid"), ("team_id", "bigint"), ("name", "text")]);
                        sqlx::query(Sql(format!(
                            "INSERT INTO posthog_eventdefinition (id, team_id, name, created_at, last_seen_at) \
                             SELECT v.id, v.team_id, v.name, $2, $2 FROM {v} WHERE true ON CONFLICT DO NOTHING"
                        )))
                        .bind(&rows)
                        .bind(d.seen_at)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::query("insert event definitions"))?;
                        sqlx::query(Sql(format!(
                            "UPDATE posthog_eventdefinition AS e SET last_seen_at = $2 FROM {v} \
                             WHERE e.team_id = v.team_id AND e.name = v.name \
                               AND (e.last_seen_at IS NULL OR e.last_seen_at < $2)"
                        )))
                        .bind(&rows)
                        .bind(d.seen_at)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::query("update when events were last seen"))?;
                    }
                    if !d.properties.is_empty() {
                        let rows = records(
                            d.properties
                                .iter()
                                .map(|p| (p.team_id, &p.name, p.kind as i16, p.group_type_index, p.property_type))
                                .collect(),
                            |(team, name, kind, group, ty)| {
                                serde_json::json!({
                                    "id": uuid::Uuid::now_v7(), "team_id": team, "name": name, "type": kind,
                                    "group_type_index": group, "property_type": ty,
                                    "is_numerical": *ty == Some("Numeric"),
                                })
                            },
                        );
                        let v = $d::json_records(
                            "$1",
                            &[
                                ("id", "uuid"),
                                ("team_id", "bigint"),
                                ("name", "text"),
                                ("type", "smallint"),
                                ("group_type_index", "smallint"),
                                ("property_type", "text"),
                                ("is_numerical", "boolean"),
                            ],
                        );
                        sqlx::query(Sql(format!(
                            "INSERT INTO posthog_propertydefinition \
                               (id, team_id, name, type, group_type_index, property_type, is_numerical) \
                             SELECT v.id, v.team_id, v.name, v.type, v.group_type_index, v.property_type, \
                               v.is_numerical FROM {v} WHERE true ON CONFLICT DO NOTHING"
                        )))
                        .bind(&rows)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::query("insert property definitions"))?;
                        // A definition made without a type (by the UI, or from a null) takes the first one detected.
                        sqlx::query(Sql(format!(
                            "UPDATE posthog_propertydefinition AS p \
                               SET property_type = v.property_type, is_numerical = v.is_numerical FROM {v} \
                             WHERE p.team_id = v.team_id AND p.name = v.name AND p.type = v.type \
                               AND coalesce(p.group_type_index, -1) = coalesce(v.group_type_index, -1) \
                               AND p.property_type IS NULL AND v.property_type IS NOT NULL"
                        )))
                        .bind(&rows)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::query("fill in property types"))?;
                    }
                    if !d.event_properties.is_empty() {
                        let rows = records(d.event_properties.iter().collect(), |(team, event, property)| {
                            serde_json::json!({"team_id": team, "event": event, "property": property})
                        });
                        sqlx::query(Sql(format!(
                            "INSERT INTO posthog_eventproperty (team_id, event, property) \
                             SELECT v.team_id, v.event, v.property FROM {v} WHERE true ON CONFLICT DO NOTHING",
                            v = $d::json_records("$1", &[("team_id", "bigint"), ("event", "text"), ("property", "text")])
                        )))
                        .bind(rows)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::query("insert event properties"))?;
                    }
                    if !d.ingested_teams.is_empty() {
                        let rows = records(d.ingested_teams.clone(), |id| serde_json::json!({"id": id}));
                        sqlx::query(Sql(format!(
                            "UPDATE posthog_team AS t SET ingested_event = true FROM {v} \
                             WHERE t.id = v.id AND NOT t.ingested_event",
                            v = $d::json_records("$1", &[("id", "bigint")])
                        )))
                        .bind(rows)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::query("mark teams as having ingested an event"))?;
                    }
                    tx.commit().await.map_err(StoreError::query("commit definitions"))
                }
            }
        };
    };
}

pub(crate) use impl_sql_definitions;
