-- Events, persons and groups as phs writes them to ClickHouse.
--
-- Written for ClickHouse 18.16 and current versions alike: 18.16 has no
-- DateTime64, so times are kept as Int64 microseconds since the epoch
-- (`*_us`, full precision) with a DateTime column derived from them for
-- partitioning, sorting and human queries. `{database}` is replaced by
-- CLICKHOUSE_DATABASE; statements are separated by lines holding only `;`.

CREATE TABLE IF NOT EXISTS {database}.events (
    uuid String,
    event String,
    properties String,
    timestamp_us Int64,
    timestamp DateTime MATERIALIZED toDateTime(intDiv(timestamp_us, 1000000)),
    team_id Int64,
    distinct_id String,
    elements_chain String,
    created_at_us Int64,
    person_id String,
    person_created_at_us Int64,
    person_properties String,
    group0_properties String,
    group1_properties String,
    group2_properties String,
    group3_properties String,
    group4_properties String,
    person_mode String,
    _timestamp DateTime,
    _offset UInt64
) ENGINE = ReplacingMergeTree(_timestamp)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (team_id, toDate(timestamp), event, cityHash64(distinct_id), cityHash64(uuid))
;
CREATE TABLE IF NOT EXISTS {database}.person (
    id String,
    created_at_us Int64,
    team_id Int64,
    properties String,
    is_identified UInt8,
    is_deleted UInt8,
    version UInt64,
    _timestamp DateTime
) ENGINE = ReplacingMergeTree(version)
ORDER BY (team_id, id)
;
CREATE TABLE IF NOT EXISTS {database}.person_distinct_id2 (
    team_id Int64,
    distinct_id String,
    person_id String,
    is_deleted UInt8,
    version UInt64,
    _timestamp DateTime
) ENGINE = ReplacingMergeTree(version)
ORDER BY (team_id, distinct_id)
;
CREATE TABLE IF NOT EXISTS {database}.groups (
    group_type_index UInt8,
    group_key String,
    created_at_us Int64,
    team_id Int64,
    group_properties String,
    version UInt64,
    _timestamp DateTime
) ENGINE = ReplacingMergeTree(version)
ORDER BY (team_id, group_type_index, group_key)
;
CREATE TABLE IF NOT EXISTS {database}.plugin_log_entries (
    id String,
    team_id Int64,
    plugin_id Int64,
    plugin_config_id Int64,
    timestamp_us Int64,
    timestamp DateTime MATERIALIZED toDateTime(intDiv(timestamp_us, 1000000)),
    source String,
    type String,
    message String,
    instance_id String,
    _timestamp DateTime
) ENGINE = ReplacingMergeTree(_timestamp)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (team_id, plugin_id, plugin_config_id, timestamp, id)
