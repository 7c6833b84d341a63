//! The one SQL implementation of the store traits, shared by Postgres and
//! SQLite.
//!
//! The queries are the same for both databases but for a few casts, so they
//! are written once here and instantiated per backend by
//! [`impl_sql_store!`], which each backend calls with its `dialect` module.
//! A dialect supplies:
//! - `DB`, the sqlx database;
//! - cast suffixes: `BIGINT`, `TEXT`, `JSONB`, `UUID`, `TIMESTAMPTZ`, `INT`,
//!   empty for SQLite, whose columns hold text;
//! - `NOW` and `SKIP_LOCKED` (the job queue's claim);
//! - `json_strings(param, column)`, a FROM item `ids` of the strings of a
//!   JSON array parameter;
//! - `json_records(param, columns)`, a FROM item of the objects of a JSON
//!   array parameter, for writing many rows in one statement;
//! - `begin_exclusive(pool, key)`, a transaction that holds a lock named by `key`.
//!
//! A macro rather than generics: sqlx's generic executor bounds would have to
//! be repeated on every method, and they hide the SQL that matters here.
//! Uuids are bound as text and cast with `UUID`, ids as i64, JSON as text
//! cast with `JSONB`.

macro_rules! impl_sql_store {
    ($store:ty, $backend:literal, $d:ident) => {
        const _: () = {
            use async_trait::async_trait;
            use chrono::{DateTime, Utc};
            use sqlx::AssertSqlSafe as Sql;
            use uuid::Uuid;

            use $crate::store::model::{
                DEFAULT_ORGANIZATION, NewPlugin, NewTeam, Plugin, PluginAttachment, PluginConfig, PluginConfigUpdate,
                PluginLog, Team,
            };
            use $crate::store::rows::{PluginConfigRow, PluginLogRow, PluginRow, TeamRow};
            use $crate::store::{PluginStorage, PluginStore, Result, Store, StoreError, TeamStore};

            fn team_columns() -> String {
                format!(
                    "id{b} AS id, uuid{t} AS uuid, organization_id{t} AS organization_id, name, api_token, \
                     anonymize_ips, created_at",
                    b = $d::BIGINT,
                    t = $d::TEXT
                )
            }

            fn plugin_columns() -> String {
                format!(
                    "id{b} AS id, name, description, url, config_schema{t} AS config_schema, \
                     capabilities{t} AS capabilities, updated_at",
                    b = $d::BIGINT,
                    t = $d::TEXT
                )
            }

            fn config_columns() -> String {
                format!(
                    "id{b} AS id, team_id{b} AS team_id, plugin_id{b} AS plugin_id, enabled, \
                     \"order\"{b} AS \"order\", config{t} AS config, error{t} AS error, updated_at",
                    b = $d::BIGINT,
                    t = $d::TEXT
                )
            }

            fn log_columns() -> String {
                format!(
                    "id{t} AS id, team_id{b} AS team_id, plugin_id{b} AS plugin_id, \
                     plugin_config_id{b} AS plugin_config_id, timestamp, source, type AS level, message, \
                     instance_id{t} AS instance_id",
                    b = $d::BIGINT,
                    t = $d::TEXT
                )
            }

            $crate::store::sql_persons::impl_sql_persons!($store, $d);
            $crate::store::sql_jobs::impl_sql_jobs!($store, $d);
            $crate::store::sql_locks::impl_sql_locks!($store);
            $crate::store::sql_definitions::impl_sql_definitions!($store, $d);

            #[async_trait]
            impl Store for $store {
                fn backend(&self) -> &'static str {
                    $backend
                }

                async fn ping(&self) -> Result<()> {
                    sqlx::query("SELECT 1").execute(&self.pool).await.map_err(StoreError::query("ping the database"))?;
                    Ok(())
                }
            }

            #[async_trait]
            impl TeamStore for $store {
                async fn create_team(&self, team: NewTeam) -> Result<Team> {
                    // The lock serialises the find-or-create of the default organization.
                    let mut tx = $d::begin_exclusive(&self.pool, "phs:default-organization").await?;
                    let org: Option<String> = sqlx::query_scalar(Sql(format!(
                        "SELECT id{t} FROM posthog_organization ORDER BY created_at, id LIMIT 1",
                        t = $d::TEXT
                    )))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(StoreError::query("find the default organization"))?;
                    let org = match org {
                        Some(id) => id,
                        None => {
                            let id = Uuid::now_v7().to_string();
                            sqlx::query(Sql(format!(
                                "INSERT INTO posthog_organization (id, name) VALUES ($1{u}, $2)",
                                u = $d::UUID
                            )))
                            .bind(&id)
                            .bind(DEFAULT_ORGANIZATION)
                            .execute(&mut *tx)
                            .await
                            .map_err(StoreError::query("create the default organization"))?;
                            id
                        }
                    };
                    let row: TeamRow = sqlx::query_as(Sql(format!(
                        "INSERT INTO posthog_team (uuid, organization_id, api_token, name, anonymize_ips) \
                         VALUES ($1{u}, $2{u}, $3, $4, $5) RETURNING {cols}",
                        u = $d::UUID,
                        cols = team_columns()
                    )))
                    .bind(Uuid::now_v7().to_string())
                    .bind(org)
                    .bind(team.token())
                    .bind(&team.name)
                    .bind(team.anonymize_ips)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(StoreError::query("insert the team"))?;
                    tx.commit().await.map_err(StoreError::query("commit team creation"))?;
                    row.try_into()
                }

                async fn list_teams(&self) -> Result<Vec<Team>> {
                    let rows: Vec<TeamRow> =
                        sqlx::query_as(Sql(format!("SELECT {} FROM posthog_team ORDER BY id", team_columns())))
                            .fetch_all(&self.pool)
                            .await
                            .map_err(StoreError::query("list teams"))?;
                    rows.into_iter().map(Team::try_from).collect()
                }

                async fn team_by_token(&self, api_token: &str) -> Result<Option<Team>> {
                    let row: Option<TeamRow> =
                        sqlx::query_as(Sql(format!("SELECT {} FROM posthog_team WHERE api_token = $1", team_columns())))
                            .bind(api_token)
                            .fetch_optional(&self.pool)
                            .await
                            .map_err(StoreError::query("find a team by token"))?;
                    row.map(Team::try_from).transpose()
                }

                async fn team_by_id(&self, id: i64) -> Result<Option<Team>> {
                    let row: Option<TeamRow> =
                        sqlx::query_as(Sql(format!("SELECT {} FROM posthog_team WHERE id = $1", team_columns())))
                            .bind(id)
                            .fetch_optional(&self.pool)
                            .await
                            .map_err(StoreError::query("find a team by id"))?;
                    row.map(Team::try_from).transpose()
                }
            }

            #[async_trait]
            impl PluginStore for $store {
                async fn install_plugin(&self, p: &NewPlugin) -> Result<Plugin> {
                    let mut tx = $d::begin_exclusive(&self.pool, "phs:plugin-install").await?;
                    let existing: Option<i64> = sqlx::query_scalar(Sql(format!(
                        "SELECT id{b} FROM posthog_plugin WHERE name = $1 ORDER BY id LIMIT 1",
                        b = $d::BIGINT
                    )))
                    .bind(&p.name)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(StoreError::query("find the plugin by name"))?;
                    let row: PluginRow = match existing {
                        Some(id) => sqlx::query_as(Sql(format!(
                            "UPDATE posthog_plugin SET description = $2, url = $3, config_schema = $4{j}, \
                             capabilities = $5{j}, updated_at = {now} WHERE id = $1 RETURNING {cols}",
                            j = $d::JSONB,
                            now = $d::NOW,
                            cols = plugin_columns()
                        )))
                        .bind(id),
                        None => sqlx::query_as(Sql(format!(
                            "INSERT INTO posthog_plugin (name, description, url, config_schema, capabilities) \
                             VALUES ($1, $2, $3, $4{j}, $5{j}) RETURNING {cols}",
                            j = $d::JSONB,
                            cols = plugin_columns()
                        )))
                        .bind(p.name.clone()),
                    }
                    .bind(&p.description)
                    .bind(&p.url)
                    .bind(p.config_schema.to_string())
                    .bind(p.capabilities.to_string())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(StoreError::query("write the plugin"))?;
                    let plugin_id = row.id();
                    sqlx::query("DELETE FROM posthog_pluginsourcefile WHERE plugin_id = $1")
                        .bind(plugin_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::query("replace the plugin's files"))?;
                    for (filename, source) in &p.files {
                        sqlx::query(Sql(format!(
                            "INSERT INTO posthog_pluginsourcefile (id, plugin_id, filename, source, status, updated_at) \
                             VALUES ($1{u}, $2, $3, $4, 'LOCKED', {now})",
                            u = $d::UUID,
                            now = $d::NOW
                        )))
                        .bind(Uuid::now_v7().to_string())
                        .bind(plugin_id)
                        .bind(filename)
                        .bind(source)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::query("write a plugin file"))?;
                    }
                    tx.commit().await.map_err(StoreError::query("commit plugin install"))?;
                    row.try_into()
                }

                async fn list_plugins(&self) -> Result<Vec<Plugin>> {
                    let rows: Vec<PluginRow> =
                        sqlx::query_as(Sql(format!("SELECT {} FROM posthog_plugin ORDER BY id", plugin_columns())))
                            .fetch_all(&self.pool)
                            .await
                            .map_err(StoreError::query("list plugins"))?;
                    rows.into_iter().map(Plugin::try_from).collect()
                }

                async fn plugin_files(&self, plugin_id: i64) -> Result<Vec<(String, String)>> {
                    sqlx::query_as(
                        "SELECT filename, coalesce(source, '') FROM posthog_pluginsourcefile \
                         WHERE plugin_id = $1 ORDER BY filename",
                    )
                    .bind(plugin_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::query("read the plugin's files"))
                }

                async fn remove_plugin(&self, plugin_id: i64) -> Result<bool> {
                    let done = sqlx::query("DELETE FROM posthog_plugin WHERE id = $1")
                        .bind(plugin_id)
                        .execute(&self.pool)
                        .await
                        .map_err(StoreError::query("remove the plugin"))?;
                    Ok(done.rows_affected() > 0)
                }

                async fn plugin_config(&self, team_id: i64, plugin_id: i64) -> Result<PluginConfig> {
                    // Locked so two callers cannot both create the team's config.
                    let mut tx = $d::begin_exclusive(&self.pool, "phs:pluginconfig").await?;
                    let found: Option<PluginConfigRow> = sqlx::query_as(Sql(format!(
                        "SELECT {} FROM posthog_pluginconfig WHERE team_id = $1 AND plugin_id = $2",
                        config_columns()
                    )))
                    .bind(team_id)
                    .bind(plugin_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(StoreError::query("find the plugin config"))?;
                    let row = match found {
                        Some(r) => r,
                        None => sqlx::query_as(Sql(format!(
                            "INSERT INTO posthog_pluginconfig (team_id, plugin_id, enabled, \"order\", config) \
                             VALUES ($1, $2, false, \
                               (SELECT coalesce(max(\"order\"), 0) + 1 FROM posthog_pluginconfig WHERE team_id = $1), \
                               '{{}}') \
                             RETURNING {}",
                            config_columns()
                        )))
                        .bind(team_id)
                        .bind(plugin_id)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(StoreError::query("create the plugin config"))?,
                    };
                    tx.commit().await.map_err(StoreError::query("commit plugin config"))?;
                    row.try_into()
                }

                async fn update_plugin_config(&self, id: i64, u: &PluginConfigUpdate) -> Result<PluginConfig> {
                    let row: Option<PluginConfigRow> = sqlx::query_as(Sql(format!(
                        "UPDATE posthog_pluginconfig SET \
                           enabled = coalesce($2, enabled), \
                           \"order\" = coalesce($3, \"order\"), \
                           config = coalesce($4{j}, config), \
                           error = CASE WHEN $5 THEN $6{j} ELSE error END, \
                           updated_at = CASE WHEN $7 THEN {now} ELSE updated_at END \
                         WHERE id = $1 RETURNING {cols}",
                        j = $d::JSONB,
                        now = $d::NOW,
                        cols = config_columns()
                    )))
                    .bind(id)
                    .bind(u.enabled)
                    .bind(u.order)
                    .bind(u.config.as_ref().map(|c| c.to_string()))
                    .bind(u.error.is_some())
                    .bind(u.error.clone().flatten().map(|e| e.to_string()))
                    // Only a change of what the plugin runs with is a new config: the runner
                    // rebuilds a state whose updated_at moved, so a stored error must not move it.
                    .bind(u.enabled.is_some() || u.order.is_some() || u.config.is_some())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::query("update the plugin config"))?;
                    row.ok_or_else(|| StoreError::Invalid(format!("no plugin config {id}")))?.try_into()
                }

                async fn list_plugin_configs(&self, team_id: Option<i64>) -> Result<Vec<PluginConfig>> {
                    let rows: Vec<PluginConfigRow> = sqlx::query_as(Sql(format!(
                        "SELECT {cols} FROM posthog_pluginconfig WHERE ($1{i} IS NULL OR team_id = $1) \
                         ORDER BY team_id, \"order\", id",
                        i = $d::BIGINT,
                        cols = config_columns()
                    )))
                    .bind(team_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::query("list plugin configs"))?;
                    rows.into_iter().map(PluginConfig::try_from).collect()
                }

                async fn set_plugin_attachment(&self, config: &PluginConfig, a: &PluginAttachment) -> Result<()> {
                    // No unique key on (config, key) in PostHog's table: replace in one transaction.
                    let mut tx = self.pool.begin().await.map_err(StoreError::query("begin plugin attachment"))?;
                    sqlx::query("DELETE FROM posthog_pluginattachment WHERE plugin_config_id = $1 AND key = $2")
                        .bind(config.id)
                        .bind(&a.key)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::query("replace a plugin attachment"))?;
                    sqlx::query(
                        "INSERT INTO posthog_pluginattachment \
                           (team_id, plugin_config_id, key, content_type, file_name, file_size, contents) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(config.team_id)
                    .bind(config.id)
                    .bind(&a.key)
                    .bind(&a.content_type)
                    .bind(&a.file_name)
                    .bind(a.contents.len() as i32)
                    .bind(&a.contents)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::query("write a plugin attachment"))?;
                    tx.commit().await.map_err(StoreError::query("commit plugin attachment"))
                }

                async fn plugin_attachments(&self, config_id: i64) -> Result<Vec<PluginAttachment>> {
                    let rows: Vec<(String, String, String, Vec<u8>)> = sqlx::query_as(
                        "SELECT key, content_type, file_name, contents FROM posthog_pluginattachment \
                         WHERE plugin_config_id = $1 ORDER BY key",
                    )
                    .bind(config_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::query("read plugin attachments"))?;
                    Ok(rows
                        .into_iter()
                        .map(|(key, content_type, file_name, contents)| PluginAttachment {
                            key,
                            content_type,
                            file_name,
                            contents,
                        })
                        .collect())
                }

                async fn append_plugin_logs(&self, entries: &[PluginLog]) -> Result<()> {
                    let mut tx = self.pool.begin().await.map_err(StoreError::query("begin plugin logs"))?;
                    for e in entries {
                        sqlx::query(Sql(format!(
                            "INSERT INTO posthog_pluginlogentry \
                               (id, team_id, plugin_id, plugin_config_id, timestamp, source, type, message, instance_id) \
                             VALUES ($1{u}, $2, $3, $4, $5, $6, $7, $8, $9{u})",
                            u = $d::UUID
                        )))
                        .bind(e.id.to_string())
                        .bind(e.team_id)
                        .bind(e.plugin_id)
                        .bind(e.plugin_config_id)
                        .bind(e.timestamp)
                        .bind(&e.source)
                        .bind(&e.level)
                        .bind(&e.message)
                        .bind(e.instance_id.to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::query("write plugin log entries"))?;
                    }
                    tx.commit().await.map_err(StoreError::query("commit plugin logs"))
                }

                async fn plugin_logs(
                    &self,
                    config_id: i64,
                    after: Option<DateTime<Utc>>,
                    limit: i64,
                ) -> Result<Vec<PluginLog>> {
                    let rows: Vec<PluginLogRow> = sqlx::query_as(Sql(format!(
                        "SELECT {cols} FROM posthog_pluginlogentry \
                         WHERE plugin_config_id = $1 AND ($2{ts} IS NULL OR timestamp > $2) \
                         ORDER BY timestamp, id LIMIT $3",
                        ts = $d::TIMESTAMPTZ,
                        cols = log_columns()
                    )))
                    .bind(config_id)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::query("read plugin log entries"))?;
                    rows.into_iter().map(PluginLog::try_from).collect()
                }
            }

            #[async_trait]
            impl PluginStorage for $store {
                async fn storage_get(&self, config_id: i64, key: &str) -> Result<Option<String>> {
                    let v: Option<Option<String>> = sqlx::query_scalar(
                        "SELECT value FROM posthog_pluginstorage WHERE plugin_config_id = $1 AND key = $2",
                    )
                    .bind(config_id)
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::query("read plugin storage"))?;
                    Ok(v.flatten())
                }

                async fn storage_set(&self, config_id: i64, key: &str, value: &str) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO posthog_pluginstorage (plugin_config_id, key, value) VALUES ($1, $2, $3) \
                         ON CONFLICT (plugin_config_id, key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(config_id)
                    .bind(key)
                    .bind(value)
                    .execute(&self.pool)
                    .await
                    .map_err(StoreError::query("write plugin storage"))?;
                    Ok(())
                }

                async fn storage_del(&self, config_id: i64, key: &str) -> Result<bool> {
                    let done = sqlx::query("DELETE FROM posthog_pluginstorage WHERE plugin_config_id = $1 AND key = $2")
                        .bind(config_id)
                        .bind(key)
                        .execute(&self.pool)
                        .await
                        .map_err(StoreError::query("delete from plugin storage"))?;
                    Ok(done.rows_affected() > 0)
                }

                async fn storage_set_if_absent(&self, config_id: i64, key: &str, value: &str) -> Result<bool> {
                    let done = sqlx::query(
                        "INSERT INTO posthog_pluginstorage (plugin_config_id, key, value) VALUES ($1, $2, $3) \
                         ON CONFLICT (plugin_config_id, key) DO NOTHING",
                    )
                    .bind(config_id)
                    .bind(key)
                    .bind(value)
                    .execute(&self.pool)
                    .await
                    .map_err(StoreError::query("initialise plugin storage"))?;
                    Ok(done.rows_affected() > 0)
                }

                async fn storage_incr(&self, config_id: i64, key: &str, by: i64) -> Result<i64> {
                    // One statement, so concurrent increments are atomic. The WHERE on
                    // the update skips a value that is not an integer (no row comes
                    // back); Postgres raises on the cast instead. Both become an error.
                    let v: Option<String> = sqlx::query_scalar(
                        "INSERT INTO posthog_pluginstorage (plugin_config_id, key, value) \
                           VALUES ($1, $2, CAST($3 AS text)) \
                         ON CONFLICT (plugin_config_id, key) DO UPDATE \
                           SET value = CAST(CAST(posthog_pluginstorage.value AS bigint) + $3 AS text) \
                           WHERE CAST(CAST(posthog_pluginstorage.value AS bigint) AS text) = posthog_pluginstorage.value \
                         RETURNING value",
                    )
                    .bind(config_id)
                    .bind(key)
                    .bind(by)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| match e {
                        sqlx::Error::Database(_) => {
                            StoreError::Invalid(format!("storage key `{key}` does not hold an integer"))
                        }
                        other => StoreError::Query { context: "increment plugin storage", source: other },
                    })?;
                    v.and_then(|v| v.parse().ok())
                        .ok_or_else(|| StoreError::Invalid(format!("storage key `{key}` does not hold an integer")))
                }
            }
        };
    };
}

pub(crate) use impl_sql_store;
