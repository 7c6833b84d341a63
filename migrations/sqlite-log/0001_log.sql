-- The embedded ingestion log (PHS_DATA_DIR/ingestion-log.sqlite3) and
-- overflow log (overflow-log.sqlite3), standing in for the Kafka topics when
-- KAFKA_HOSTS is unset: the messages with their offsets, the dead letters,
-- and each consumer's committed offset.
-- IF NOT EXISTS: files made before this schema moved into migrations/ have
-- the tables already and no record of them.
CREATE TABLE IF NOT EXISTS log (
    offset INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    payload BLOB NOT NULL,
    appended_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_offset INTEGER NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    stage TEXT NOT NULL,
    team_id INTEGER,
    payload BLOB NOT NULL,
    failed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS consumer_offsets (
    consumer TEXT PRIMARY KEY,
    committed INTEGER NOT NULL
);
