-- The embedded events store, PHS_DATA_DIR/events.sqlite3 (when CLICKHOUSE_HOST
-- is unset). Keyed by uuid so a redelivered event replaces its first copy.
-- Times are fixed-width RFC 3339 text, so text order is time order.
-- IF NOT EXISTS: files made before this schema moved into migrations/ have
-- the table already and no record of it.
CREATE TABLE IF NOT EXISTS events (
    uuid TEXT PRIMARY KEY,
    team_id INTEGER NOT NULL,
    event TEXT NOT NULL,
    distinct_id TEXT NOT NULL,
    properties TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    created_at TEXT NOT NULL,
    elements_chain TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_team_time ON events (team_id, timestamp);
