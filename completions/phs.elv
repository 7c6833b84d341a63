
use builtin;
use str;

set edit:completion:arg-completer[phs] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'phs'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'phs'= {
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Run the plugin server: ingestion, plugins, scheduled tasks, jobs and the admin listener'
            cand migrate 'Create or update tables (Postgres or SQLite, ClickHouse) and Kafka topics'
            cand healthcheck 'Query a running instance''s admin listener; exit 0 when healthy, 1 otherwise'
            cand replay 'Re-run past events from the ingestion log (Kafka or local) through plugins'
            cand plugins 'Manage Lua plugins and their per-team configs'
            cand top 'Watch running instances: consumer lag, worker load, plugins and their errors'
            cand teams 'Manage teams (projects): each has the API token SDKs send events with'
            cand events 'Look at stored events'
            cand persons 'Look at persons'
            cand completions 'Print a shell completion script (or the man page) on stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'phs;serve'= {
            cand --database-url 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR'
            cand --data-dir 'Directory of the embedded stores (SQLite database, local ingestion log)'
            cand --redis-url 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process'
            cand --kafka-hosts 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log'
            cand --kafka-consumption-topic 'Topic of incoming events, as produced by capture'
            cand --kafka-consumer-group 'Consumer group of the ingestion consumers; instances in one group share the partitions'
            cand --kafka-prefix 'Prefix put before every topic name (lets several deployments or tests share a broker)'
            cand --kafka-client-cert-b64 'Client certificate (PEM), base64-encoded; enables TLS'
            cand --kafka-client-cert-key-b64 'Client certificate key (PEM), base64-encoded'
            cand --kafka-trusted-cert-b64 'Trusted CA certificate (PEM), base64-encoded'
            cand --kafka-security-protocol 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given'
            cand --kafka-sasl-mechanism 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)'
            cand --kafka-sasl-user 'SASL user name'
            cand --kafka-sasl-password 'SASL password'
            cand --kafka-producer-max-queue-size 'Producer: most messages in one batch to a partition (librdkafka''s batch.num.messages). The original''s 20 would make producing many times slower'
            cand --kafka-flush-frequency-ms 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka''s linger.ms); every capture request waits up to this long. The original''s 500 would add half a second to each'
            cand --kafka-max-message-batch-size 'Producer: largest batch in bytes to a partition (librdkafka''s batch.size)'
            cand --clickhouse-host 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite'
            cand --clickhouse-database 'ClickHouse database'
            cand --clickhouse-user 'ClickHouse user name'
            cand --clickhouse-password 'ClickHouse password'
            cand --clickhouse-secure 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme'
            cand --clickhouse-ca 'CA certificate file (PEM) to trust for ClickHouse over https'
            cand --worker-concurrency 'Shards each batch is processed on, each a task with its own Lua states (the original''s worker threads); events are spread by (team, distinct_id), so one person''s stay in order. 0: one per core'
            cand --tasks-per-worker '(team, distinct_id) keys each shard processes at once: while one waits on a plugin''s cache, storage or fetch call, or on persons, the next runs'
            cand --on-event-concurrency 'onEvent calls of one plugin config run at once by the async side on Kafka, each on a Lua state of its own; one distinct id''s events stay in order. Embedded runs them one at a time'
            cand --plugin-server-mode 'Which parts of the server this instance runs. Unset: all of them'
            cand --schedule-lock-ttl 'Seconds the scheduler lock is held; one instance in the cluster runs scheduled tasks'
            cand --disable-mmdb 'Disable MaxMind GeoIP lookups for plugins (`meta.geoip`)'
            cand --mmdb-file-location 'MaxMind City database (.mmdb) behind plugins'' `meta.geoip.locate`. Unset: locate raises an error'
            cand --plugin-disable-error-rate 'Share of failed calls (0-1] within a window that disables a plugin config automatically'
            cand --plugin-disable-min-calls 'Calls a window must hold before the error rate can disable a plugin config'
            cand --plugin-disable-window-seconds 'Seconds of the window in which a plugin config''s error rate is counted'
            cand --plugin-fetch-allow-private 'Let plugins'' fetch() reach private, loopback and link-local addresses (off: only public ones)'
            cand --kafka-clickhouse-topics 'Also produce events, persons, distinct ids and groups to the Kafka topics PostHog''s ClickHouse consumes (clickhouse_events_json, clickhouse_person, ...), to stand in for the Node plugin server'
            cand --definitions 'Keep the event and property definitions PostHog''s UI lists (posthog_eventdefinition, posthog_propertydefinition, posthog_eventproperty) as events arrive. Turn off where a separate taxonomy service writes them; the team''s first-event flag (ingested_event) is set either way'
            cand --event-overflow-bucket-capacity 'Events one (token, distinct_id) may send in a burst; past it, its events go to the overflow topic (KAFKA_CONSUMPTION_TOPIC + `_overflow`, or the embedded overflow log), where a second pipeline ingests them, so one flooding person does not hold up everyone else''s batches. 0 turns it off'
            cand --slow-lane-ms 'Milliseconds a team''s processEvent calls may take for one event in the main pipeline. A call that runs longer (or computes for more than 10 ms of it; a state''s first setupPlugin counts too) is cut, and that event and the team''s next ones go to the overflow lane, where they run with the full plugin limits, until the team''s calls have been within this for a minute; so a slow or hostile plugin holds up other teams'' batches for this long once, not for its limits at every call. 0 turns it off'
            cand --log-retention-hours 'Hours a message of the embedded local logs (ingestion and overflow) is kept once every consumer has committed it; older ones are deleted. 0: no age limit'
            cand --log-retention-bytes 'Bytes each embedded local log file may hold; past it its oldest committed messages are deleted, whatever their age. 0: no size limit'
            cand --dead-letter-retention-count 'Dead letters each embedded local log keeps at most; past it the oldest are deleted (they also go with PHS_LOG_RETENTION_HOURS). 0: no count limit'
            cand --event-overflow-bucket-replenish-rate 'Events per second at which a (token, distinct_id)''s burst allowance refills'
            cand --distinct-id-lru-size 'Distinct ids whose persons a batch reads ahead in one query (no cache is kept across batches: it could serve a person that another instance has merged away)'
            cand --admin-addr 'Address of the admin HTTP listener (/_health, /_ready). Keep it on loopback or a private network. Port 0 lets the kernel pick a free port; PHS_READY_FILE and the log say which'
            cand --capture-addr 'Address of the capture endpoint that PostHog SDKs send to (/e, /capture, /batch, /i/v0/e). Port 0 lets the kernel pick a free port; PHS_READY_FILE and the log say which'
            cand --ready-file 'Once both listeners are open, write their bound addresses to this file as `ADMIN_ADDR=host:port` and `CAPTURE_ADDR=host:port` lines (a shell can source it); deleted at start and when phs stops. Its appearance means "listening", not "healthy"'
            cand --healthcheck-max-stale-seconds 'Seconds without ingesting anything, while events wait, before /_health fails'
            cand --health-max-batch-seconds 'Seconds one batch may be held, or keep failing (a dependency down and retried), before /_health fails; it passes again once the batch goes through'
            cand --shutdown-timeout-seconds 'Seconds SIGTERM waits for the batches in hand to be written and committed before phs exits anyway (with code 1); a second SIGTERM exits at once'
            cand --statsd-host 'StatsD host; unset disables StatsD export'
            cand --statsd-port 'StatsD port'
            cand --statsd-prefix 'Prefix of every StatsD metric'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;migrate'= {
            cand --database-url 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR'
            cand --data-dir 'Directory of the embedded stores (SQLite database, local ingestion log)'
            cand --redis-url 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process'
            cand --kafka-hosts 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log'
            cand --kafka-consumption-topic 'Topic of incoming events, as produced by capture'
            cand --kafka-consumer-group 'Consumer group of the ingestion consumers; instances in one group share the partitions'
            cand --kafka-prefix 'Prefix put before every topic name (lets several deployments or tests share a broker)'
            cand --kafka-client-cert-b64 'Client certificate (PEM), base64-encoded; enables TLS'
            cand --kafka-client-cert-key-b64 'Client certificate key (PEM), base64-encoded'
            cand --kafka-trusted-cert-b64 'Trusted CA certificate (PEM), base64-encoded'
            cand --kafka-security-protocol 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given'
            cand --kafka-sasl-mechanism 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)'
            cand --kafka-sasl-user 'SASL user name'
            cand --kafka-sasl-password 'SASL password'
            cand --kafka-producer-max-queue-size 'Producer: most messages in one batch to a partition (librdkafka''s batch.num.messages). The original''s 20 would make producing many times slower'
            cand --kafka-flush-frequency-ms 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka''s linger.ms); every capture request waits up to this long. The original''s 500 would add half a second to each'
            cand --kafka-max-message-batch-size 'Producer: largest batch in bytes to a partition (librdkafka''s batch.size)'
            cand --clickhouse-host 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite'
            cand --clickhouse-database 'ClickHouse database'
            cand --clickhouse-user 'ClickHouse user name'
            cand --clickhouse-password 'ClickHouse password'
            cand --clickhouse-secure 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme'
            cand --clickhouse-ca 'CA certificate file (PEM) to trust for ClickHouse over https'
            cand --kafka-partitions 'Partitions of topics created by this run'
            cand --kafka-replication-factor 'Replication factor of topics created by this run'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand --status 'Report what is applied and what is pending, change nothing; exit 1 when something is pending'
            cand --dry-run 'Show what would be applied, change nothing'
            cand --json 'Print the steps as JSON on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;healthcheck'= {
            cand --admin-addr 'Admin address of the instance to check'
            cand --peers 'With --all: the instances to check, one admin address or URL per line (`#` comments), for deployments without Redis'
            cand --timeout 'Seconds to wait for an answer'
            cand --database-url 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR'
            cand --data-dir 'Directory of the embedded stores (SQLite database, local ingestion log)'
            cand --redis-url 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process'
            cand --kafka-hosts 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log'
            cand --kafka-consumption-topic 'Topic of incoming events, as produced by capture'
            cand --kafka-consumer-group 'Consumer group of the ingestion consumers; instances in one group share the partitions'
            cand --kafka-prefix 'Prefix put before every topic name (lets several deployments or tests share a broker)'
            cand --kafka-client-cert-b64 'Client certificate (PEM), base64-encoded; enables TLS'
            cand --kafka-client-cert-key-b64 'Client certificate key (PEM), base64-encoded'
            cand --kafka-trusted-cert-b64 'Trusted CA certificate (PEM), base64-encoded'
            cand --kafka-security-protocol 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given'
            cand --kafka-sasl-mechanism 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)'
            cand --kafka-sasl-user 'SASL user name'
            cand --kafka-sasl-password 'SASL password'
            cand --kafka-producer-max-queue-size 'Producer: most messages in one batch to a partition (librdkafka''s batch.num.messages). The original''s 20 would make producing many times slower'
            cand --kafka-flush-frequency-ms 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka''s linger.ms); every capture request waits up to this long. The original''s 500 would add half a second to each'
            cand --kafka-max-message-batch-size 'Producer: largest batch in bytes to a partition (librdkafka''s batch.size)'
            cand --clickhouse-host 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite'
            cand --clickhouse-database 'ClickHouse database'
            cand --clickhouse-user 'ClickHouse user name'
            cand --clickhouse-password 'ClickHouse password'
            cand --clickhouse-secure 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme'
            cand --clickhouse-ca 'CA certificate file (PEM) to trust for ClickHouse over https'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand --ready 'Check readiness (every dependency reachable) instead of liveness'
            cand --all 'Check every instance with a heartbeat in Redis (REDIS_URL), or listed in --peers, instead of one'
            cand --deps 'Also check that Postgres, Redis, Kafka and ClickHouse (as configured) answer, with latencies'
            cand --json 'Print JSON on stdout: the instance''s report, or with --all/--deps every result'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;replay'= {
            cand --from-offset 'First offset to replay (inclusive; a dead letter''s id with --dead-letters)'
            cand --from-timestamp 'Replay from this time: RFC 3339 (2026-12-01T10:00:00Z) or relative (-2h, -30m, -7d)'
            cand --to-offset 'Last offset to replay (inclusive); default: the end of the log when replay starts'
            cand --until 'Stop at the first message after this time (RFC 3339 or relative)'
            cand --limit 'Stop after this many selected events'
            cand --partition 'Partition to read (repeatable); default: every partition'
            cand --topic 'Topic to read, before KAFKA_PREFIX (the overflow and dead-letter topics too); default: KAFKA_CONSUMPTION_TOPIC'
            cand --team 'Only events of this team (id, name or API token)'
            cand --distinct-id 'distinct-id'
            cand --event 'Only events with this name'
            cand --uuid 'uuid'
            cand --reason 'Only dead letters refused for this reason (e.g. invalid_uuid, store_refused)'
            cand --plugin-config 'Only run this plugin config (repeatable); default: all of the team''s plugins in order'
            cand --plugin-dir 'Run a plugin from a local folder instead of the installed plugin of the same name'
            cand --compare 'Run the installed plugin and this local version side by side; print the events whose output differs'
            cand --color 'color'
            cand --threads 'Tasks running plugins at once, each with its own plugin states; 0: one per core'
            cand --definitions 'With --reingest: write event and property definitions, as `phs serve` does with this set'
            cand --database-url 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR'
            cand --data-dir 'Directory of the embedded stores (SQLite database, local ingestion log)'
            cand --redis-url 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process'
            cand --kafka-hosts 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log'
            cand --kafka-consumption-topic 'Topic of incoming events, as produced by capture'
            cand --kafka-consumer-group 'Consumer group of the ingestion consumers; instances in one group share the partitions'
            cand --kafka-prefix 'Prefix put before every topic name (lets several deployments or tests share a broker)'
            cand --kafka-client-cert-b64 'Client certificate (PEM), base64-encoded; enables TLS'
            cand --kafka-client-cert-key-b64 'Client certificate key (PEM), base64-encoded'
            cand --kafka-trusted-cert-b64 'Trusted CA certificate (PEM), base64-encoded'
            cand --kafka-security-protocol 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given'
            cand --kafka-sasl-mechanism 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)'
            cand --kafka-sasl-user 'SASL user name'
            cand --kafka-sasl-password 'SASL password'
            cand --kafka-producer-max-queue-size 'Producer: most messages in one batch to a partition (librdkafka''s batch.num.messages). The original''s 20 would make producing many times slower'
            cand --kafka-flush-frequency-ms 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka''s linger.ms); every capture request waits up to this long. The original''s 500 would add half a second to each'
            cand --kafka-max-message-batch-size 'Producer: largest batch in bytes to a partition (librdkafka''s batch.size)'
            cand --clickhouse-host 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite'
            cand --clickhouse-database 'ClickHouse database'
            cand --clickhouse-user 'ClickHouse user name'
            cand --clickhouse-password 'ClickHouse password'
            cand --clickhouse-secure 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme'
            cand --clickhouse-ca 'CA certificate file (PEM) to trust for ClickHouse over https'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand --from-beginning 'Replay from the oldest retained message'
            cand --follow 'Keep reading new messages after the end, until Ctrl-C'
            cand --dead-letters 'Read the embedded dead-letter table instead of the log (with Kafka, use --topic <topic>_dlq)'
            cand --fetch-allow-private 'Let plugins'' fetch reach private and loopback addresses, as the server allows'
            cand --offline 'Send no request at all (by default GET and HEAD go out; other methods never do)'
            cand --persons 'Also run the persons stage and show the person writes it would make (properties, distinct ids, merges)'
            cand --all 'Print every event, also those no plugin changed'
            cand --side-effects 'List each event''s side effects (storage, cache, jobs, captures, requests)'
            cand -q 'Print only the summary'
            cand --quiet 'Print only the summary'
            cand --json 'One JSON object per event, then a summary object, on stdout'
            cand --reingest 'Ingest the selected events again instead of a dry run'
            cand -y 'With --reingest: do not ask for confirmation'
            cand --yes 'With --reingest: do not ask for confirmation'
            cand --kafka-clickhouse-topics 'With --reingest: also write the ClickHouse Kafka topics, as `phs serve` does with this set'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;plugins'= {
            cand --database-url 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR'
            cand --data-dir 'Directory of the embedded stores (SQLite database, local ingestion log)'
            cand --redis-url 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process'
            cand --kafka-hosts 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log'
            cand --kafka-consumption-topic 'Topic of incoming events, as produced by capture'
            cand --kafka-consumer-group 'Consumer group of the ingestion consumers; instances in one group share the partitions'
            cand --kafka-prefix 'Prefix put before every topic name (lets several deployments or tests share a broker)'
            cand --kafka-client-cert-b64 'Client certificate (PEM), base64-encoded; enables TLS'
            cand --kafka-client-cert-key-b64 'Client certificate key (PEM), base64-encoded'
            cand --kafka-trusted-cert-b64 'Trusted CA certificate (PEM), base64-encoded'
            cand --kafka-security-protocol 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given'
            cand --kafka-sasl-mechanism 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)'
            cand --kafka-sasl-user 'SASL user name'
            cand --kafka-sasl-password 'SASL password'
            cand --kafka-producer-max-queue-size 'Producer: most messages in one batch to a partition (librdkafka''s batch.num.messages). The original''s 20 would make producing many times slower'
            cand --kafka-flush-frequency-ms 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka''s linger.ms); every capture request waits up to this long. The original''s 500 would add half a second to each'
            cand --kafka-max-message-batch-size 'Producer: largest batch in bytes to a partition (librdkafka''s batch.size)'
            cand --clickhouse-host 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite'
            cand --clickhouse-database 'ClickHouse database'
            cand --clickhouse-user 'ClickHouse user name'
            cand --clickhouse-password 'ClickHouse password'
            cand --clickhouse-secure 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme'
            cand --clickhouse-ca 'CA certificate file (PEM) to trust for ClickHouse over https'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand new 'Scaffold a plugin folder: plugin.json, index.lua and tests/ fixtures'
            cand test 'Run a plugin''s fixtures, or the given events, through setupPlugin and processEvent'
            cand install 'Install a plugin from a folder or a .zip/.tar.gz archive into the database'
            cand list 'List installed plugins and their configs'
            cand enable 'Enable a plugin for a team (also clears an automatic disable)'
            cand disable 'Disable a plugin for a team'
            cand config 'Show or set a plugin''s config for a team (validated; secrets masked)'
            cand order 'Show or set the order in which a team''s plugins run'
            cand logs 'Show a plugin config''s log entries'
            cand reload 'Ask every running instance to reload plugins'
            cand remove 'Remove an installed plugin and its configs'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'phs;plugins;new'= {
            cand --dir 'Where to create it; default: ./NAME'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;plugins;test'= {
            cand --event 'An event as JSON, or @FILE (repeatable); the events go through one plugin state in order, and each result is printed as one JSON line'
            cand --config 'A config value for the plugin (repeatable); overrides a fixture''s config'
            cand --geoip-db 'MaxMind City database (.mmdb) behind `meta.geoip`; a fixture''s own `geoip` map wins'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand --json 'One JSON line per fixture on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;plugins;install'= {
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;plugins;list'= {
            cand --team 'team'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand --json 'json'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;plugins;enable'= {
            cand --team 'team'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;plugins;disable'= {
            cand --team 'team'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;plugins;config'= {
            cand --team 'team'
            cand --set 'KEY=VALUE to set (repeatable); KEY=@PATH for an attachment field. None shows the config'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;plugins;order'= {
            cand --team 'team'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;plugins;logs'= {
            cand --level 'Lowest level shown: debug, log, info, warn or error'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand --follow 'follow'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;plugins;reload'= {
            cand --channel 'channel'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;plugins;remove'= {
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;plugins;help'= {
            cand new 'Scaffold a plugin folder: plugin.json, index.lua and tests/ fixtures'
            cand test 'Run a plugin''s fixtures, or the given events, through setupPlugin and processEvent'
            cand install 'Install a plugin from a folder or a .zip/.tar.gz archive into the database'
            cand list 'List installed plugins and their configs'
            cand enable 'Enable a plugin for a team (also clears an automatic disable)'
            cand disable 'Disable a plugin for a team'
            cand config 'Show or set a plugin''s config for a team (validated; secrets masked)'
            cand order 'Show or set the order in which a team''s plugins run'
            cand logs 'Show a plugin config''s log entries'
            cand reload 'Ask every running instance to reload plugins'
            cand remove 'Remove an installed plugin and its configs'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'phs;plugins;help;new'= {
        }
        &'phs;plugins;help;test'= {
        }
        &'phs;plugins;help;install'= {
        }
        &'phs;plugins;help;list'= {
        }
        &'phs;plugins;help;enable'= {
        }
        &'phs;plugins;help;disable'= {
        }
        &'phs;plugins;help;config'= {
        }
        &'phs;plugins;help;order'= {
        }
        &'phs;plugins;help;logs'= {
        }
        &'phs;plugins;help;reload'= {
        }
        &'phs;plugins;help;remove'= {
        }
        &'phs;plugins;help;help'= {
        }
        &'phs;top'= {
            cand --server 'Admin address or URL of an instance (repeatable); default: the instances of --peers, else every instance in the heartbeats (with REDIS_URL), else the local one'
            cand --peers 'A file listing the instances to watch, one admin address or URL per line (`#` comments); re-read every 10 s, for deployments without Redis'
            cand --interval 'Seconds between polls (the screen redraws on keys and new data, independently)'
            cand --color 'When to use colours; `auto` colours a terminal unless NO_COLOR is set'
            cand --redis-url 'Where heartbeats are read to discover instances'
            cand --admin-addr 'The local instance, used when no --server is given and REDIS_URL is unset'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand --once 'Print one snapshot and exit: a text rendering, or JSON with --json'
            cand --json 'With --once: print the snapshot as JSON for scripts'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;teams'= {
            cand --database-url 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR'
            cand --data-dir 'Directory of the embedded stores (SQLite database, local ingestion log)'
            cand --redis-url 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process'
            cand --kafka-hosts 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log'
            cand --kafka-consumption-topic 'Topic of incoming events, as produced by capture'
            cand --kafka-consumer-group 'Consumer group of the ingestion consumers; instances in one group share the partitions'
            cand --kafka-prefix 'Prefix put before every topic name (lets several deployments or tests share a broker)'
            cand --kafka-client-cert-b64 'Client certificate (PEM), base64-encoded; enables TLS'
            cand --kafka-client-cert-key-b64 'Client certificate key (PEM), base64-encoded'
            cand --kafka-trusted-cert-b64 'Trusted CA certificate (PEM), base64-encoded'
            cand --kafka-security-protocol 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given'
            cand --kafka-sasl-mechanism 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)'
            cand --kafka-sasl-user 'SASL user name'
            cand --kafka-sasl-password 'SASL password'
            cand --kafka-producer-max-queue-size 'Producer: most messages in one batch to a partition (librdkafka''s batch.num.messages). The original''s 20 would make producing many times slower'
            cand --kafka-flush-frequency-ms 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka''s linger.ms); every capture request waits up to this long. The original''s 500 would add half a second to each'
            cand --kafka-max-message-batch-size 'Producer: largest batch in bytes to a partition (librdkafka''s batch.size)'
            cand --clickhouse-host 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite'
            cand --clickhouse-database 'ClickHouse database'
            cand --clickhouse-user 'ClickHouse user name'
            cand --clickhouse-password 'ClickHouse password'
            cand --clickhouse-secure 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme'
            cand --clickhouse-ca 'CA certificate file (PEM) to trust for ClickHouse over https'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand create 'Create a team and print its project API token on stdout'
            cand list 'List teams'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'phs;teams;create'= {
            cand --token 'Use this API token instead of a generated one (to mirror an existing PostHog project)'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand --anonymize-ips 'Drop the IP address of every event of this team'
            cand --json 'Print the whole team as JSON instead of the token alone'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;teams;list'= {
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand --json 'Print JSON on stdout'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;teams;help'= {
            cand create 'Create a team and print its project API token on stdout'
            cand list 'List teams'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'phs;teams;help;create'= {
        }
        &'phs;teams;help;list'= {
        }
        &'phs;teams;help;help'= {
        }
        &'phs;events'= {
            cand --database-url 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR'
            cand --data-dir 'Directory of the embedded stores (SQLite database, local ingestion log)'
            cand --redis-url 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process'
            cand --kafka-hosts 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log'
            cand --kafka-consumption-topic 'Topic of incoming events, as produced by capture'
            cand --kafka-consumer-group 'Consumer group of the ingestion consumers; instances in one group share the partitions'
            cand --kafka-prefix 'Prefix put before every topic name (lets several deployments or tests share a broker)'
            cand --kafka-client-cert-b64 'Client certificate (PEM), base64-encoded; enables TLS'
            cand --kafka-client-cert-key-b64 'Client certificate key (PEM), base64-encoded'
            cand --kafka-trusted-cert-b64 'Trusted CA certificate (PEM), base64-encoded'
            cand --kafka-security-protocol 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given'
            cand --kafka-sasl-mechanism 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)'
            cand --kafka-sasl-user 'SASL user name'
            cand --kafka-sasl-password 'SASL password'
            cand --kafka-producer-max-queue-size 'Producer: most messages in one batch to a partition (librdkafka''s batch.num.messages). The original''s 20 would make producing many times slower'
            cand --kafka-flush-frequency-ms 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka''s linger.ms); every capture request waits up to this long. The original''s 500 would add half a second to each'
            cand --kafka-max-message-batch-size 'Producer: largest batch in bytes to a partition (librdkafka''s batch.size)'
            cand --clickhouse-host 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite'
            cand --clickhouse-database 'ClickHouse database'
            cand --clickhouse-user 'ClickHouse user name'
            cand --clickhouse-password 'ClickHouse password'
            cand --clickhouse-secure 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme'
            cand --clickhouse-ca 'CA certificate file (PEM) to trust for ClickHouse over https'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'The latest events, newest first'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'phs;events;list'= {
            cand --team 'Only this team (id)'
            cand --distinct-id 'distinct-id'
            cand --event 'Only events with this name'
            cand --limit 'limit'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand --json 'One JSON object per line'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;events;help'= {
            cand list 'The latest events, newest first'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'phs;events;help;list'= {
        }
        &'phs;events;help;help'= {
        }
        &'phs;persons'= {
            cand --database-url 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR'
            cand --data-dir 'Directory of the embedded stores (SQLite database, local ingestion log)'
            cand --redis-url 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process'
            cand --kafka-hosts 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log'
            cand --kafka-consumption-topic 'Topic of incoming events, as produced by capture'
            cand --kafka-consumer-group 'Consumer group of the ingestion consumers; instances in one group share the partitions'
            cand --kafka-prefix 'Prefix put before every topic name (lets several deployments or tests share a broker)'
            cand --kafka-client-cert-b64 'Client certificate (PEM), base64-encoded; enables TLS'
            cand --kafka-client-cert-key-b64 'Client certificate key (PEM), base64-encoded'
            cand --kafka-trusted-cert-b64 'Trusted CA certificate (PEM), base64-encoded'
            cand --kafka-security-protocol 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given'
            cand --kafka-sasl-mechanism 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)'
            cand --kafka-sasl-user 'SASL user name'
            cand --kafka-sasl-password 'SASL password'
            cand --kafka-producer-max-queue-size 'Producer: most messages in one batch to a partition (librdkafka''s batch.num.messages). The original''s 20 would make producing many times slower'
            cand --kafka-flush-frequency-ms 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka''s linger.ms); every capture request waits up to this long. The original''s 500 would add half a second to each'
            cand --kafka-max-message-batch-size 'Producer: largest batch in bytes to a partition (librdkafka''s batch.size)'
            cand --clickhouse-host 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite'
            cand --clickhouse-database 'ClickHouse database'
            cand --clickhouse-user 'ClickHouse user name'
            cand --clickhouse-password 'ClickHouse password'
            cand --clickhouse-secure 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme'
            cand --clickhouse-ca 'CA certificate file (PEM) to trust for ClickHouse over https'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand show 'The person behind a distinct id; exits 1 when there is none'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'phs;persons;show'= {
            cand --team 'The team: id, API token or name'
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand --json 'Print JSON on stdout'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;persons;help'= {
            cand show 'The person behind a distinct id; exits 1 when there is none'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'phs;persons;help;show'= {
        }
        &'phs;persons;help;help'= {
        }
        &'phs;completions'= {
            cand --log-level 'Minimum log level (`log` is an alias of `info`, as in the original)'
            cand --log-format 'Log format on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'phs;help'= {
            cand serve 'Run the plugin server: ingestion, plugins, scheduled tasks, jobs and the admin listener'
            cand migrate 'Create or update tables (Postgres or SQLite, ClickHouse) and Kafka topics'
            cand healthcheck 'Query a running instance''s admin listener; exit 0 when healthy, 1 otherwise'
            cand replay 'Re-run past events from the ingestion log (Kafka or local) through plugins'
            cand plugins 'Manage Lua plugins and their per-team configs'
            cand top 'Watch running instances: consumer lag, worker load, plugins and their errors'
            cand teams 'Manage teams (projects): each has the API token SDKs send events with'
            cand events 'Look at stored events'
            cand persons 'Look at persons'
            cand completions 'Print a shell completion script (or the man page) on stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'phs;help;serve'= {
        }
        &'phs;help;migrate'= {
        }
        &'phs;help;healthcheck'= {
        }
        &'phs;help;replay'= {
        }
        &'phs;help;plugins'= {
            cand new 'Scaffold a plugin folder: plugin.json, index.lua and tests/ fixtures'
            cand test 'Run a plugin''s fixtures, or the given events, through setupPlugin and processEvent'
            cand install 'Install a plugin from a folder or a .zip/.tar.gz archive into the database'
            cand list 'List installed plugins and their configs'
            cand enable 'Enable a plugin for a team (also clears an automatic disable)'
            cand disable 'Disable a plugin for a team'
            cand config 'Show or set a plugin''s config for a team (validated; secrets masked)'
            cand order 'Show or set the order in which a team''s plugins run'
            cand logs 'Show a plugin config''s log entries'
            cand reload 'Ask every running instance to reload plugins'
            cand remove 'Remove an installed plugin and its configs'
        }
        &'phs;help;plugins;new'= {
        }
        &'phs;help;plugins;test'= {
        }
        &'phs;help;plugins;install'= {
        }
        &'phs;help;plugins;list'= {
        }
        &'phs;help;plugins;enable'= {
        }
        &'phs;help;plugins;disable'= {
        }
        &'phs;help;plugins;config'= {
        }
        &'phs;help;plugins;order'= {
        }
        &'phs;help;plugins;logs'= {
        }
        &'phs;help;plugins;reload'= {
        }
        &'phs;help;plugins;remove'= {
        }
        &'phs;help;top'= {
        }
        &'phs;help;teams'= {
            cand create 'Create a team and print its project API token on stdout'
            cand list 'List teams'
        }
        &'phs;help;teams;create'= {
        }
        &'phs;help;teams;list'= {
        }
        &'phs;help;events'= {
            cand list 'The latest events, newest first'
        }
        &'phs;help;events;list'= {
        }
        &'phs;help;persons'= {
            cand show 'The person behind a distinct id; exits 1 when there is none'
        }
        &'phs;help;persons;show'= {
        }
        &'phs;help;completions'= {
        }
        &'phs;help;help'= {
        }
    ]
    $completions[$command]
}
