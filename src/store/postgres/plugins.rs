//! Plugins, plugin configs, plugin storage and plugin logs in Postgres.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe as Sql;
use uuid::Uuid;

use super::PgStore;
use crate::store::model::{NewPlugin, Plugin, PluginConfig, PluginConfigUpdate, PluginLog};
use crate::store::rows::{PluginConfigRow, PluginLogRow, PluginRow};
use crate::store::{PluginStorage, PluginStore, Result, StoreError};

const PLUGIN: &str = "id::bigint AS id, name, description, url, config_schema::text AS config_schema, \
                      capabilities::text AS capabilities, updated_at";
const CONFIG: &str = "id::bigint AS id, team_id::bigint AS team_id, plugin_id::bigint AS plugin_id, enabled, \
                      \"order\"::bigint AS \"order\", config::text AS config, error::text AS error, updated_at";
const LOG: &str = "id::text AS id, team_id::bigint AS team_id, plugin_id::bigint AS plugin_id, \
                   plugin_config_id::bigint AS plugin_config_id, timestamp, source, type AS level, message, \
                   instance_id::text AS instance_id";

fn int(id: i64) -> Result<i32> {
    i32::try_from(id).map_err(|_| StoreError::Invalid(format!("id {id} is out of range")))
}

#[async_trait]
impl PluginStore for PgStore {
    async fn install_plugin(&self, p: &NewPlugin) -> Result<Plugin> {
        let mut tx = self.pool.begin().await.map_err(StoreError::query("begin plugin install"))?;
        let existing: Option<i32> =
            sqlx::query_scalar("SELECT id FROM posthog_plugin WHERE name = $1 ORDER BY id LIMIT 1 FOR UPDATE")
                .bind(&p.name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::query("find the plugin by name"))?;
        let schema = p.config_schema.to_string();
        let caps = p.capabilities.to_string();
        let row: PluginRow = match existing {
            Some(id) => sqlx::query_as(Sql(format!(
                "UPDATE posthog_plugin SET description = $2, url = $3, config_schema = $4::jsonb, \
                 capabilities = $5::jsonb, updated_at = now() WHERE id = $1 RETURNING {PLUGIN}"
            )))
            .bind(id),
            None => sqlx::query_as(Sql(format!(
                "INSERT INTO posthog_plugin (name, description, url, config_schema, capabilities) \
                 VALUES ($1, $2, $3, $4::jsonb, $5::jsonb) RETURNING {PLUGIN}"
            )))
            .bind(&p.name),
        }
        .bind(&p.description)
        .bind(&p.url)
        .bind(&schema)
        .bind(&caps)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::query("write the plugin"))?;
        sqlx::query("DELETE FROM posthog_pluginsourcefile WHERE plugin_id = $1")
            .bind(int(row.id())?)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("replace the plugin's files"))?;
        for (filename, source) in &p.files {
            sqlx::query(
                "INSERT INTO posthog_pluginsourcefile (id, plugin_id, filename, source, status, updated_at) \
                 VALUES ($1, $2, $3, $4, 'LOCKED', now())",
            )
            .bind(Uuid::now_v7())
            .bind(int(row.id())?)
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
        let rows: Vec<PluginRow> = sqlx::query_as(Sql(format!("SELECT {PLUGIN} FROM posthog_plugin ORDER BY id")))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("list plugins"))?;
        rows.into_iter().map(Plugin::try_from).collect()
    }

    async fn plugin_files(&self, plugin_id: i64) -> Result<Vec<(String, String)>> {
        sqlx::query_as("SELECT filename, coalesce(source, '') FROM posthog_pluginsourcefile WHERE plugin_id = $1 ORDER BY filename")
            .bind(int(plugin_id)?)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("read the plugin's files"))
    }

    async fn remove_plugin(&self, plugin_id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM posthog_plugin WHERE id = $1")
            .bind(int(plugin_id)?)
            .execute(&self.pool)
            .await
            .map_err(StoreError::query("remove the plugin"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn plugin_config(&self, team_id: i64, plugin_id: i64) -> Result<PluginConfig> {
        let mut tx = self.pool.begin().await.map_err(StoreError::query("begin plugin config"))?;
        // Serialises creation per team so two callers do not both create one.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('phs:pluginconfig'), $1)")
            .bind(int(team_id)?)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("lock the team's plugin configs"))?;
        let found: Option<PluginConfigRow> =
            sqlx::query_as(Sql(format!("SELECT {CONFIG} FROM posthog_pluginconfig WHERE team_id = $1 AND plugin_id = $2")))
                .bind(int(team_id)?)
                .bind(int(plugin_id)?)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::query("find the plugin config"))?;
        let row = match found {
            Some(r) => r,
            None => sqlx::query_as(Sql(format!(
                "INSERT INTO posthog_pluginconfig (team_id, plugin_id, enabled, \"order\", config) \
                 VALUES ($1, $2, false, (SELECT coalesce(max(\"order\"), 0) + 1 FROM posthog_pluginconfig WHERE team_id = $1), '{{}}') \
                 RETURNING {CONFIG}"
            )))
            .bind(int(team_id)?)
            .bind(int(plugin_id)?)
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
               config = coalesce($4::jsonb, config), \
               error = CASE WHEN $5 THEN $6::jsonb ELSE error END, \
               updated_at = now() \
             WHERE id = $1 RETURNING {CONFIG}"
        )))
        .bind(int(id)?)
        .bind(u.enabled)
        .bind(u.order.map(int).transpose()?)
        .bind(u.config.as_ref().map(|c| c.to_string()))
        .bind(u.error.is_some())
        .bind(u.error.clone().flatten().map(|e| e.to_string()))
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::query("update the plugin config"))?;
        row.ok_or_else(|| StoreError::Invalid(format!("no plugin config {id}")))?.try_into()
    }

    async fn list_plugin_configs(&self, team_id: Option<i64>) -> Result<Vec<PluginConfig>> {
        let rows: Vec<PluginConfigRow> = sqlx::query_as(Sql(format!(
            "SELECT {CONFIG} FROM posthog_pluginconfig WHERE ($1::int IS NULL OR team_id = $1) ORDER BY team_id, \"order\", id"
        )))
        .bind(team_id.map(int).transpose()?)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::query("list plugin configs"))?;
        rows.into_iter().map(PluginConfig::try_from).collect()
    }

    async fn append_plugin_logs(&self, entries: &[PluginLog]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(StoreError::query("begin plugin logs"))?;
        for e in entries {
            sqlx::query(
                "INSERT INTO posthog_pluginlogentry \
                   (id, team_id, plugin_id, plugin_config_id, timestamp, source, type, message, instance_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(e.id)
            .bind(int(e.team_id)?)
            .bind(int(e.plugin_id)?)
            .bind(int(e.plugin_config_id)?)
            .bind(e.timestamp)
            .bind(&e.source)
            .bind(&e.level)
            .bind(&e.message)
            .bind(e.instance_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("write plugin log entries"))?;
        }
        tx.commit().await.map_err(StoreError::query("commit plugin logs"))
    }

    async fn plugin_logs(&self, config_id: i64, after: Option<DateTime<Utc>>, limit: i64) -> Result<Vec<PluginLog>> {
        let rows: Vec<PluginLogRow> = sqlx::query_as(Sql(format!(
            "SELECT {LOG} FROM posthog_pluginlogentry WHERE plugin_config_id = $1 AND ($2::timestamptz IS NULL OR timestamp > $2) \
             ORDER BY timestamp, id LIMIT $3"
        )))
        .bind(int(config_id)?)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::query("read plugin log entries"))?;
        rows.into_iter().map(PluginLog::try_from).collect()
    }
}

#[async_trait]
impl PluginStorage for PgStore {
    async fn storage_get(&self, config_id: i64, key: &str) -> Result<Option<String>> {
        let v: Option<Option<String>> =
            sqlx::query_scalar("SELECT value FROM posthog_pluginstorage WHERE plugin_config_id = $1 AND key = $2")
                .bind(int(config_id)?)
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
        .bind(int(config_id)?)
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(StoreError::query("write plugin storage"))?;
        Ok(())
    }

    async fn storage_del(&self, config_id: i64, key: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM posthog_pluginstorage WHERE plugin_config_id = $1 AND key = $2")
            .bind(int(config_id)?)
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
        .bind(int(config_id)?)
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(StoreError::query("initialise plugin storage"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn storage_incr(&self, config_id: i64, key: &str, by: i64) -> Result<i64> {
        let v: String = sqlx::query_scalar(
            "INSERT INTO posthog_pluginstorage (plugin_config_id, key, value) VALUES ($1, $2, $3::text) \
             ON CONFLICT (plugin_config_id, key) DO UPDATE \
               SET value = (coalesce(posthog_pluginstorage.value, '0')::bigint + $3)::text \
             RETURNING value",
        )
        .bind(int(config_id)?)
        .bind(key)
        .bind(by)
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::query("increment plugin storage (is the value an integer?)"))?;
        v.parse().map_err(|_| StoreError::Invalid(format!("storage key `{key}` does not hold an integer")))
    }
}
