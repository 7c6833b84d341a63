-- What phs writes beside PostHog while ingesting, besides events and persons:
-- the property type that PostHog's later versions detect, which events carry
-- which properties, and the two tables a person merge must repoint (cohort
-- memberships and feature-flag hash-key overrides). Column names are
-- PostHog's; IF NOT EXISTS keeps what Django already created.

ALTER TABLE posthog_propertydefinition ADD COLUMN IF NOT EXISTS property_type varchar(50);

CREATE TABLE IF NOT EXISTS posthog_eventproperty (
    id serial PRIMARY KEY,
    team_id integer NOT NULL REFERENCES posthog_team (id) ON DELETE CASCADE,
    event varchar(400) NOT NULL,
    property varchar(400) NOT NULL,
    CONSTRAINT posthog_event_property_unique_team_event_property UNIQUE (team_id, event, property)
);

CREATE TABLE IF NOT EXISTS posthog_cohort (
    id serial PRIMARY KEY,
    team_id integer NOT NULL REFERENCES posthog_team (id) ON DELETE CASCADE,
    name varchar(400),
    deleted boolean NOT NULL DEFAULT false,
    is_static boolean NOT NULL DEFAULT false,
    version integer,
    pending_version integer,
    created_at timestamptz DEFAULT now()
);

CREATE TABLE IF NOT EXISTS posthog_cohortpeople (
    id bigserial PRIMARY KEY,
    cohort_id integer NOT NULL REFERENCES posthog_cohort (id) ON DELETE CASCADE,
    person_id bigint NOT NULL REFERENCES posthog_person (id) ON DELETE CASCADE,
    version integer
);
CREATE INDEX IF NOT EXISTS posthog_cohortpeople_cohort_person ON posthog_cohortpeople (cohort_id, person_id);
CREATE INDEX IF NOT EXISTS posthog_cohortpeople_person ON posthog_cohortpeople (person_id);

CREATE TABLE IF NOT EXISTS posthog_featureflaghashkeyoverride (
    id serial PRIMARY KEY,
    team_id integer NOT NULL REFERENCES posthog_team (id) ON DELETE CASCADE,
    person_id bigint NOT NULL REFERENCES posthog_person (id) ON DELETE CASCADE,
    feature_flag_key varchar(400) NOT NULL,
    hash_key varchar(400) NOT NULL,
    CONSTRAINT unique_hash_key_for_person UNIQUE (team_id, person_id, feature_flag_key)
);
