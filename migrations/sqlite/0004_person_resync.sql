-- The embedded twin of migrations/postgres/0004_person_resync.sql: persons
-- whose rows may not have reached ClickHouse yet. Keep the two in step.

CREATE TABLE IF NOT EXISTS phs_person_resync (
    id integer PRIMARY KEY AUTOINCREMENT,
    entries text NOT NULL,
    created_at_ms bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS phs_person_resync_age ON phs_person_resync (created_at_ms);
