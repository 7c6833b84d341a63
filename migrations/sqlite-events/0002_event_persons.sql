-- Each event keeps its person, as ClickHouse's events table does; rows
-- written before have NULLs. SQLite cannot add a column only when it is
-- missing: a file made before migrations that already has these columns gets
-- this migration recorded as applied instead (src/migrate/files.rs).
ALTER TABLE events ADD COLUMN person_id TEXT;
ALTER TABLE events ADD COLUMN person_properties TEXT;
ALTER TABLE events ADD COLUMN person_created_at TEXT;
