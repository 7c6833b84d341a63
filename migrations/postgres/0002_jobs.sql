-- The durable queue of plugin jobs: jobs that plugins enqueue with
-- meta.jobs.<name>(payload):runNow()/runIn()/runAt(), the retries of
-- exportEvents, and the batches of written events that onEvent and
-- exportEvents handle after ingestion. Times are milliseconds since the
-- epoch, set by phs's clock, so both backends compare them the same way.
-- Keep in step with migrations/sqlite/0002_jobs.sql.

CREATE TABLE IF NOT EXISTS phs_plugin_job (
    id bigserial PRIMARY KEY,
    team_id integer NOT NULL REFERENCES posthog_team (id) ON DELETE CASCADE,
    plugin_config_id integer NOT NULL REFERENCES posthog_pluginconfig (id) ON DELETE CASCADE,
    name text NOT NULL,
    payload jsonb NOT NULL,
    attempt integer NOT NULL DEFAULT 0,
    run_at_ms bigint NOT NULL,
    -- A claimed job is hidden from other workers until this time; a worker
    -- that dies mid-job leaves it to be claimed again afterwards.
    locked_until_ms bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS phs_plugin_job_due ON phs_plugin_job (run_at_ms, id);
