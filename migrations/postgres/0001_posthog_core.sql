-- Tables phs shares with PostHog, under PostHog's names and key columns, so
-- phs can run beside an existing PostHog database. IF NOT EXISTS everywhere:
-- where Django already created a table, phs uses it as it is.

CREATE TABLE IF NOT EXISTS posthog_organization (
    id uuid PRIMARY KEY,
    name varchar(64) NOT NULL,
    plugins_access_level smallint NOT NULL DEFAULT 9,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS posthog_team (
    id serial PRIMARY KEY,
    uuid uuid NOT NULL UNIQUE,
    organization_id uuid NOT NULL REFERENCES posthog_organization (id),
    api_token varchar(200) NOT NULL UNIQUE,
    name varchar(200) NOT NULL,
    anonymize_ips boolean NOT NULL DEFAULT false,
    ingested_event boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS posthog_person (
    id bigserial PRIMARY KEY,
    uuid uuid NOT NULL,
    created_at timestamptz NOT NULL,
    team_id integer NOT NULL REFERENCES posthog_team (id),
    properties jsonb NOT NULL DEFAULT '{}',
    properties_last_updated_at jsonb NOT NULL DEFAULT '{}',
    properties_last_operation jsonb,
    is_user_id integer,
    is_identified boolean NOT NULL DEFAULT false,
    version bigint
);
CREATE UNIQUE INDEX IF NOT EXISTS posthog_person_team_uuid ON posthog_person (team_id, uuid);

CREATE TABLE IF NOT EXISTS posthog_persondistinctid (
    id bigserial PRIMARY KEY,
    distinct_id varchar(400) NOT NULL,
    person_id bigint NOT NULL REFERENCES posthog_person (id) ON DELETE CASCADE,
    team_id integer NOT NULL REFERENCES posthog_team (id),
    version bigint,
    CONSTRAINT unique_distinct_id UNIQUE (team_id, distinct_id)
);
CREATE INDEX IF NOT EXISTS posthog_persondistinctid_person ON posthog_persondistinctid (person_id);

CREATE TABLE IF NOT EXISTS posthog_grouptypemapping (
    id serial PRIMARY KEY,
    team_id integer NOT NULL REFERENCES posthog_team (id),
    group_type varchar(400) NOT NULL,
    group_type_index integer NOT NULL CHECK (group_type_index BETWEEN 0 AND 4),
    name_singular varchar(400),
    name_plural varchar(400),
    CONSTRAINT unique_group_types UNIQUE (team_id, group_type),
    CONSTRAINT unique_event_ordering UNIQUE (team_id, group_type_index)
);

CREATE TABLE IF NOT EXISTS posthog_group (
    id serial PRIMARY KEY,
    team_id integer NOT NULL REFERENCES posthog_team (id),
    group_key varchar(400) NOT NULL,
    group_type_index integer NOT NULL,
    group_properties jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    properties_last_updated_at jsonb NOT NULL DEFAULT '{}',
    properties_last_operation jsonb NOT NULL DEFAULT '{}',
    version bigint NOT NULL,
    CONSTRAINT unique_team_group_type_key UNIQUE (team_id, group_key, group_type_index)
);

CREATE TABLE IF NOT EXISTS posthog_plugin (
    id serial PRIMARY KEY,
    organization_id uuid REFERENCES posthog_organization (id),
    plugin_type varchar(200) NOT NULL DEFAULT 'source',
    is_global boolean NOT NULL DEFAULT false,
    is_preinstalled boolean NOT NULL DEFAULT false,
    name varchar(200) NOT NULL,
    description text,
    url text,
    config_schema jsonb NOT NULL DEFAULT '[]',
    tag varchar(200),
    archive bytea,
    source text,
    capabilities jsonb NOT NULL DEFAULT '{}',
    metrics jsonb DEFAULT '{}',
    public_jobs jsonb DEFAULT '{}',
    log_level integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS posthog_pluginsourcefile (
    id uuid PRIMARY KEY,
    plugin_id integer NOT NULL REFERENCES posthog_plugin (id) ON DELETE CASCADE,
    filename varchar(200) NOT NULL,
    source text,
    transpiled text,
    status varchar(20),
    error text,
    updated_at timestamptz,
    CONSTRAINT unique_filename_for_plugin UNIQUE (plugin_id, filename)
);

CREATE TABLE IF NOT EXISTS posthog_pluginconfig (
    id serial PRIMARY KEY,
    team_id integer REFERENCES posthog_team (id) ON DELETE CASCADE,
    plugin_id integer NOT NULL REFERENCES posthog_plugin (id) ON DELETE CASCADE,
    enabled boolean NOT NULL DEFAULT false,
    "order" integer NOT NULL DEFAULT 0,
    config jsonb NOT NULL DEFAULT '{}',
    error jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS posthog_pluginconfig_team ON posthog_pluginconfig (team_id, enabled);

CREATE TABLE IF NOT EXISTS posthog_pluginattachment (
    id serial PRIMARY KEY,
    team_id integer REFERENCES posthog_team (id) ON DELETE CASCADE,
    plugin_config_id integer REFERENCES posthog_pluginconfig (id) ON DELETE CASCADE,
    key varchar(200) NOT NULL,
    content_type varchar(200) NOT NULL,
    file_name varchar(200) NOT NULL,
    file_size integer NOT NULL,
    contents bytea NOT NULL
);

CREATE TABLE IF NOT EXISTS posthog_pluginstorage (
    id serial PRIMARY KEY,
    plugin_config_id integer NOT NULL REFERENCES posthog_pluginconfig (id) ON DELETE CASCADE,
    key varchar(200) NOT NULL,
    value text,
    CONSTRAINT posthog_unique_plugin_storage_key UNIQUE (plugin_config_id, key)
);

CREATE TABLE IF NOT EXISTS posthog_pluginlogentry (
    id uuid PRIMARY KEY,
    team_id integer NOT NULL REFERENCES posthog_team (id) ON DELETE CASCADE,
    plugin_id integer NOT NULL REFERENCES posthog_plugin (id) ON DELETE CASCADE,
    plugin_config_id integer NOT NULL REFERENCES posthog_pluginconfig (id) ON DELETE CASCADE,
    timestamp timestamptz NOT NULL DEFAULT now(),
    source varchar(20) NOT NULL,
    type varchar(20) NOT NULL,
    message text NOT NULL,
    instance_id uuid NOT NULL
);
CREATE INDEX IF NOT EXISTS posthog_pluginlogentry_config_time ON posthog_pluginlogentry (plugin_config_id, timestamp);

CREATE TABLE IF NOT EXISTS posthog_eventdefinition (
    id uuid PRIMARY KEY,
    team_id integer NOT NULL REFERENCES posthog_team (id) ON DELETE CASCADE,
    name varchar(400) NOT NULL,
    created_at timestamptz,
    last_seen_at timestamptz,
    CONSTRAINT posthog_eventdefinition_team_id_name_unique UNIQUE (team_id, name)
);

CREATE TABLE IF NOT EXISTS posthog_propertydefinition (
    id uuid PRIMARY KEY,
    team_id integer NOT NULL REFERENCES posthog_team (id) ON DELETE CASCADE,
    name varchar(400) NOT NULL,
    is_numerical boolean NOT NULL DEFAULT false,
    type smallint NOT NULL DEFAULT 1,
    group_type_index smallint
);
CREATE UNIQUE INDEX IF NOT EXISTS posthog_propertydefinition_uniq
    ON posthog_propertydefinition (team_id, name, type, coalesce(group_type_index, -1));
