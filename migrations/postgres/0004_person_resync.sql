-- Persons to copy again to ClickHouse: a row is written before a batch's
-- person writes and deleted once its rows are in ClickHouse, so a process
-- killed in between leaves it behind, and the resync task copies those
-- persons' stored state (or their deletion) later. `entries` is a JSON array
-- of {"team_id", "person", "deleted_version"}. Times are milliseconds since
-- the epoch. Keep in step with migrations/sqlite/0004_person_resync.sql.

CREATE TABLE IF NOT EXISTS phs_person_resync (
    id bigserial PRIMARY KEY,
    entries text NOT NULL,
    created_at_ms bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS phs_person_resync_age ON phs_person_resync (created_at_ms);
