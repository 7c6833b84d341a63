-- The embedded (SQLite) twin of migrations/postgres/0001: the same tables and
-- columns, with SQLite types: uuids, times and JSON as text, bytea as blob.
-- Keep the two in step: a test compares their table and column names.

CREATE TABLE IF NOT EXISTS posthog_organization (
    id text PRIMARY KEY,
    name text NOT NULL,
    plugins_access_level smallint NOT NULL DEFAULT 9,
    created_at text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS posthog_team (
    id integer PRIMARY KEY AUTOINCREMENT,
    uuid text NOT NULL UNIQUE,
    organization_id text NOT NULL REFERENCES posthog_organization (id),
    api_token text NOT NULL UNIQUE,
    name text NOT NULL,
    anonymize_ips boolean NOT NULL DEFAULT false,
    ingested_event boolean NOT NULL DEFAULT false,
    created_at text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS posthog_person (
    id integer PRIMARY KEY AUTOINCREMENT,
    uuid text NOT NULL,
    created_at text NOT NULL,
    team_id integer NOT NULL REFERENCES posthog_team (id),
    properties text NOT NULL DEFAULT '{}',
    properties_last_updated_at text NOT NULL DEFAULT '{}',
    properties_last_operation text,
    is_user_id integer,
    is_identified boolean NOT NULL DEFAULT false,
    version bigint
);
CREATE UNIQUE INDEX IF NOT EXISTS posthog_person_team_uuid ON posthog_person (team_id, uuid);

CREATE TABLE IF NOT EXISTS posthog_persondistinctid (
    id integer PRIMARY KEY AUTOINCREMENT,
    distinct_id text NOT NULL,
    person_id bigint NOT NULL REFERENCES posthog_person (id) ON DELETE CASCADE,
    team_id integer NOT NULL REFERENCES posthog_team (id),
    version bigint,
    CONSTRAINT unique_distinct_id UNIQUE (team_id, distinct_id)
);
CREATE INDEX IF NOT EXISTS posthog_persondistinctid_person ON posthog_persondistinctid (person_id);

CREATE TABLE IF NOT EXISTS posthog_grouptypemapping (
    id integer PRIMARY KEY AUTOINCREMENT,
    team_id integer NOT NULL REFERENCES posthog_team (id),
    group_type text NOT NULL,
    group_type_index integer NOT NULL CHECK (group_type_index BETWEEN 0 AND 4),
    name_singular text,
    name_plural text,
    CONSTRAINT unique_group_types UNIQUE (team_id, group_type),
    CONSTRAINT unique_event_ordering UNIQUE (team_id, group_type_index)
);

CREATE TABLE IF NOT EXISTS posthog_group (
    id integer PRIMARY KEY AUTOINCREMENT,
    team_id integer NOT NULL REFERENCES posthog_team (id),
    group_key text NOT NULL,
    group_type_index integer NOT NULL,
    group_properties text NOT NULL DEFAULT '{}',
    created_at text NOT NULL,
    properties_last_updated_at text NOT NULL DEFAULT '{}',
    properties_last_operation text NOT NULL DEFAULT '{}',
    version bigint NOT NULL,
    CONSTRAINT unique_team_group_type_key UNIQUE (team_id, group_key, group_type_index)
);

CREATE TABLE IF NOT EXISTS posthog_plugin (
    id integer PRIMARY KEY AUTOINCREMENT,
    organization_id text REFERENCES posthog_organization (id),
    plugin_type text NOT NULL DEFAULT 'source',
    is_global boolean NOT NULL DEFAULT false,
    is_preinstalled boolean NOT NULL DEFAULT false,
    name text NOT NULL,
    description text,
    url text,
    config_schema text NOT NULL DEFAULT '[]',
    tag text,
    archive blob,
    source text,
    capabilities text NOT NULL DEFAULT '{}',
    metrics text DEFAULT '{}',
    public_jobs text DEFAULT '{}',
    log_level integer,
    created_at text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS posthog_pluginsourcefile (
    id text PRIMARY KEY,
    plugin_id integer NOT NULL REFERENCES posthog_plugin (id) ON DELETE CASCADE,
    filename text NOT NULL,
    source text,
    transpiled text,
    status text,
    error text,
    updated_at text,
    CONSTRAINT unique_filename_for_plugin UNIQUE (plugin_id, filename)
);

CREATE TABLE IF NOT EXISTS posthog_pluginconfig (
    id integer PRIMARY KEY AUTOINCREMENT,
    team_id integer REFERENCES posthog_team (id) ON DELETE CASCADE,
    plugin_id integer NOT NULL REFERENCES posthog_plugin (id) ON DELETE CASCADE,
    enabled boolean NOT NULL DEFAULT false,
    "order" integer NOT NULL DEFAULT 0,
    config text NOT NULL DEFAULT '{}',
    error text,
    created_at text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS posthog_pluginconfig_team ON posthog_pluginconfig (team_id, enabled);

CREATE TABLE IF NOT EXISTS posthog_pluginattachment (
    id integer PRIMARY KEY AUTOINCREMENT,
    team_id integer REFERENCES posthog_team (id) ON DELETE CASCADE,
    plugin_config_id integer REFERENCES posthog_pluginconfig (id) ON DELETE CASCADE,
    key text NOT NULL,
    content_type text NOT NULL,
    file_name text NOT NULL,
    file_size integer NOT NULL,
    contents blob NOT NULL
);

CREATE TABLE IF NOT EXISTS posthog_pluginstorage (
    id integer PRIMARY KEY AUTOINCREMENT,
    plugin_config_id integer NOT NULL REFERENCES posthog_pluginconfig (id) ON DELETE CASCADE,
    key text NOT NULL,
    value text,
    CONSTRAINT posthog_unique_plugin_storage_key UNIQUE (plugin_config_id, key)
);

CREATE TABLE IF NOT EXISTS posthog_pluginlogentry (
    id text PRIMARY KEY,
    team_id integer NOT NULL REFERENCES posthog_team (id) ON DELETE CASCADE,
    plugin_id integer NOT NULL REFERENCES posthog_plugin (id) ON DELETE CASCADE,
    plugin_config_id integer NOT NULL REFERENCES posthog_pluginconfig (id) ON DELETE CASCADE,
    timestamp text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    source text NOT NULL,
    type text NOT NULL,
    message text NOT NULL,
    instance_id text NOT NULL
);
CREATE INDEX IF NOT EXISTS posthog_pluginlogentry_config_time ON posthog_pluginlogentry (plugin_config_id, timestamp);

CREATE TABLE IF NOT EXISTS posthog_eventdefinition (
    id text PRIMARY KEY,
    team_id integer NOT NULL REFERENCES posthog_team (id) ON DELETE CASCADE,
    name text NOT NULL,
    created_at text,
    last_seen_at text,
    CONSTRAINT posthog_eventdefinition_team_id_name_unique UNIQUE (team_id, name)
);

CREATE TABLE IF NOT EXISTS posthog_propertydefinition (
    id text PRIMARY KEY,
    team_id integer NOT NULL REFERENCES posthog_team (id) ON DELETE CASCADE,
    name text NOT NULL,
    is_numerical boolean NOT NULL DEFAULT false,
    type smallint NOT NULL DEFAULT 1,
    group_type_index smallint
);
CREATE UNIQUE INDEX IF NOT EXISTS posthog_propertydefinition_uniq
    ON posthog_propertydefinition (team_id, name, type, coalesce(group_type_index, -1));
