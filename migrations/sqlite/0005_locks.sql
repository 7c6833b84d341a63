-- Locks with an owner and an expiry, for the schedule lock when the
-- deployment has no Redis: every instance shares the database, so the one
-- that holds the row runs the scheduled tasks. Times are milliseconds since
-- the epoch. Keep in step with migrations/postgres/0005_locks.sql.

CREATE TABLE IF NOT EXISTS phs_lock (
    key text PRIMARY KEY,
    owner text NOT NULL,
    expires_ms bigint NOT NULL
);
