-- The embedded twin of migrations/postgres/0002_jobs.sql: the durable queue
-- of plugin jobs, exportEvents retries and onEvent/exportEvents batches.
-- Times are milliseconds since the epoch. Keep the two in step.

CREATE TABLE IF NOT EXISTS phs_plugin_job (
    id integer PRIMARY KEY AUTOINCREMENT,
    team_id integer NOT NULL REFERENCES posthog_team (id) ON DELETE CASCADE,
    plugin_config_id integer NOT NULL REFERENCES posthog_pluginconfig (id) ON DELETE CASCADE,
    name text NOT NULL,
    payload text NOT NULL,
    attempt integer NOT NULL DEFAULT 0,
    run_at_ms bigint NOT NULL,
    locked_until_ms bigint NOT NULL DEFAULT 0,
    created_at text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS phs_plugin_job_due ON phs_plugin_job (run_at_ms, id);
