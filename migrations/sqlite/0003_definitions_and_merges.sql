-- The embedded twin of migrations/postgres/0003: the same tables and columns,
-- with SQLite types. Keep the two in step: a test compares their names.

ALTER TABLE posthog_propertydefinition ADD COLUMN property_type text;

CREATE TABLE IF NOT EXISTS posthog_eventproperty (
    id integer PRIMARY KEY AUTOINCREMENT,
    team_id integer NOT NULL REFERENCES posthog_team (id) ON DELETE CASCADE,
    event text NOT NULL,
    property text NOT NULL,
    CONSTRAINT posthog_event_property_unique_team_event_property UNIQUE (team_id, event, property)
);

CREATE TABLE IF NOT EXISTS posthog_cohort (
    id integer PRIMARY KEY AUTOINCREMENT,
    team_id integer NOT NULL REFERENCES posthog_team (id) ON DELETE CASCADE,
    name text,
    deleted boolean NOT NULL DEFAULT false,
    is_static boolean NOT NULL DEFAULT false,
    version integer,
    pending_version integer,
    created_at text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS posthog_cohortpeople (
    id integer PRIMARY KEY AUTOINCREMENT,
    cohort_id integer NOT NULL REFERENCES posthog_cohort (id) ON DELETE CASCADE,
    person_id integer NOT NULL REFERENCES posthog_person (id) ON DELETE CASCADE,
    version integer
);
CREATE INDEX IF NOT EXISTS posthog_cohortpeople_cohort_person ON posthog_cohortpeople (cohort_id, person_id);
CREATE INDEX IF NOT EXISTS posthog_cohortpeople_person ON posthog_cohortpeople (person_id);

CREATE TABLE IF NOT EXISTS posthog_featureflaghashkeyoverride (
    id integer PRIMARY KEY AUTOINCREMENT,
    team_id integer NOT NULL REFERENCES posthog_team (id) ON DELETE CASCADE,
    person_id integer NOT NULL REFERENCES posthog_person (id) ON DELETE CASCADE,
    feature_flag_key text NOT NULL,
    hash_key text NOT NULL,
    CONSTRAINT unique_hash_key_for_person UNIQUE (team_id, person_id, feature_flag_key)
);
