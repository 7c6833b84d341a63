
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'phs' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'phs'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'phs' {
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the plugin server: ingestion, plugins, scheduled tasks, jobs and the admin listener')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Create or update tables (Postgres or SQLite, ClickHouse) and Kafka topics')
            [CompletionResult]::new('healthcheck', 'healthcheck', [CompletionResultType]::ParameterValue, 'Query a running instance''s admin listener; exit 0 when healthy, 1 otherwise')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Re-run past events from the ingestion log (Kafka or local) through plugins')
            [CompletionResult]::new('plugins', 'plugins', [CompletionResultType]::ParameterValue, 'Manage Lua plugins and their per-team configs')
            [CompletionResult]::new('top', 'top', [CompletionResultType]::ParameterValue, 'Watch running instances: consumer lag, worker load, plugins and their errors')
            [CompletionResult]::new('teams', 'teams', [CompletionResultType]::ParameterValue, 'Manage teams (projects): each has the API token SDKs send events with')
            [CompletionResult]::new('events', 'events', [CompletionResultType]::ParameterValue, 'Look at stored events')
            [CompletionResult]::new('persons', 'persons', [CompletionResultType]::ParameterValue, 'Look at persons')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (or the man page) on stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'phs;serve' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Directory of the embedded stores (SQLite database, local ingestion log)')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process')
            [CompletionResult]::new('--kafka-hosts', '--kafka-hosts', [CompletionResultType]::ParameterName, 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log')
            [CompletionResult]::new('--kafka-consumption-topic', '--kafka-consumption-topic', [CompletionResultType]::ParameterName, 'Topic of incoming events, as produced by capture')
            [CompletionResult]::new('--kafka-consumer-group', '--kafka-consumer-group', [CompletionResultType]::ParameterName, 'Consumer group of the ingestion consumers; instances in one group share the partitions')
            [CompletionResult]::new('--kafka-prefix', '--kafka-prefix', [CompletionResultType]::ParameterName, 'Prefix put before every topic name (lets several deployments or tests share a broker)')
            [CompletionResult]::new('--kafka-client-cert-b64', '--kafka-client-cert-b64', [CompletionResultType]::ParameterName, 'Client certificate (PEM), base64-encoded; enables TLS')
            [CompletionResult]::new('--kafka-client-cert-key-b64', '--kafka-client-cert-key-b64', [CompletionResultType]::ParameterName, 'Client certificate key (PEM), base64-encoded')
            [CompletionResult]::new('--kafka-trusted-cert-b64', '--kafka-trusted-cert-b64', [CompletionResultType]::ParameterName, 'Trusted CA certificate (PEM), base64-encoded')
            [CompletionResult]::new('--kafka-security-protocol', '--kafka-security-protocol', [CompletionResultType]::ParameterName, 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given')
            [CompletionResult]::new('--kafka-sasl-mechanism', '--kafka-sasl-mechanism', [CompletionResultType]::ParameterName, 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)')
            [CompletionResult]::new('--kafka-sasl-user', '--kafka-sasl-user', [CompletionResultType]::ParameterName, 'SASL user name')
            [CompletionResult]::new('--kafka-sasl-password', '--kafka-sasl-password', [CompletionResultType]::ParameterName, 'SASL password')
            [CompletionResult]::new('--kafka-producer-max-queue-size', '--kafka-producer-max-queue-size', [CompletionResultType]::ParameterName, 'Producer: most messages in one batch to a partition (librdkafka''s batch.num.messages). The original''s 20 would make producing many times slower')
            [CompletionResult]::new('--kafka-flush-frequency-ms', '--kafka-flush-frequency-ms', [CompletionResultType]::ParameterName, 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka''s linger.ms); every capture request waits up to this long. The original''s 500 would add half a second to each')
            [CompletionResult]::new('--kafka-max-message-batch-size', '--kafka-max-message-batch-size', [CompletionResultType]::ParameterName, 'Producer: largest batch in bytes to a partition (librdkafka''s batch.size)')
            [CompletionResult]::new('--clickhouse-host', '--clickhouse-host', [CompletionResultType]::ParameterName, 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite')
            [CompletionResult]::new('--clickhouse-database', '--clickhouse-database', [CompletionResultType]::ParameterName, 'ClickHouse database')
            [CompletionResult]::new('--clickhouse-user', '--clickhouse-user', [CompletionResultType]::ParameterName, 'ClickHouse user name')
            [CompletionResult]::new('--clickhouse-password', '--clickhouse-password', [CompletionResultType]::ParameterName, 'ClickHouse password')
            [CompletionResult]::new('--clickhouse-secure', '--clickhouse-secure', [CompletionResultType]::ParameterName, 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme')
            [CompletionResult]::new('--clickhouse-ca', '--clickhouse-ca', [CompletionResultType]::ParameterName, 'CA certificate file (PEM) to trust for ClickHouse over https')
            [CompletionResult]::new('--worker-concurrency', '--worker-concurrency', [CompletionResultType]::ParameterName, 'Shards each batch is processed on, each a task with its own Lua states (the original''s worker threads); events are spread by (team, distinct_id), so one person''s stay in order. 0: one per core')
            [CompletionResult]::new('--tasks-per-worker', '--tasks-per-worker', [CompletionResultType]::ParameterName, '(team, distinct_id) keys each shard processes at once: while one waits on a plugin''s cache, storage or fetch call, or on persons, the next runs')
            [CompletionResult]::new('--on-event-concurrency', '--on-event-concurrency', [CompletionResultType]::ParameterName, 'onEvent calls of one plugin config run at once by the async side on Kafka, each on a Lua state of its own; one distinct id''s events stay in order. Embedded runs them one at a time')
            [CompletionResult]::new('--plugin-server-mode', '--plugin-server-mode', [CompletionResultType]::ParameterName, 'Which parts of the server this instance runs. Unset: all of them')
            [CompletionResult]::new('--schedule-lock-ttl', '--schedule-lock-ttl', [CompletionResultType]::ParameterName, 'Seconds the scheduler lock is held; one instance in the cluster runs scheduled tasks')
            [CompletionResult]::new('--disable-mmdb', '--disable-mmdb', [CompletionResultType]::ParameterName, 'Disable MaxMind GeoIP lookups for plugins (`meta.geoip`)')
            [CompletionResult]::new('--mmdb-file-location', '--mmdb-file-location', [CompletionResultType]::ParameterName, 'MaxMind City database (.mmdb) behind plugins'' `meta.geoip.locate`. Unset: locate raises an error')
            [CompletionResult]::new('--plugin-disable-error-rate', '--plugin-disable-error-rate', [CompletionResultType]::ParameterName, 'Share of failed calls (0-1] within a window that disables a plugin config automatically')
            [CompletionResult]::new('--plugin-disable-min-calls', '--plugin-disable-min-calls', [CompletionResultType]::ParameterName, 'Calls a window must hold before the error rate can disable a plugin config')
            [CompletionResult]::new('--plugin-disable-window-seconds', '--plugin-disable-window-seconds', [CompletionResultType]::ParameterName, 'Seconds of the window in which a plugin config''s error rate is counted')
            [CompletionResult]::new('--plugin-fetch-allow-private', '--plugin-fetch-allow-private', [CompletionResultType]::ParameterName, 'Let plugins'' fetch() reach private, loopback and link-local addresses (off: only public ones)')
            [CompletionResult]::new('--kafka-clickhouse-topics', '--kafka-clickhouse-topics', [CompletionResultType]::ParameterName, 'Also produce events, persons, distinct ids and groups to the Kafka topics PostHog''s ClickHouse consumes (clickhouse_events_json, clickhouse_person, ...), to stand in for the Node plugin server')
            [CompletionResult]::new('--definitions', '--definitions', [CompletionResultType]::ParameterName, 'Keep the event and property definitions PostHog''s UI lists (posthog_eventdefinition, posthog_propertydefinition, posthog_eventproperty) as events arrive. Turn off where a separate taxonomy service writes them; the team''s first-event flag (ingested_event) is set either way')
            [CompletionResult]::new('--event-overflow-bucket-capacity', '--event-overflow-bucket-capacity', [CompletionResultType]::ParameterName, 'Events one (token, distinct_id) may send in a burst; past it, its events go to the overflow topic (KAFKA_CONSUMPTION_TOPIC + `_overflow`, or the embedded overflow log), where a second pipeline ingests them, so one flooding person does not hold up everyone else''s batches. 0 turns it off')
            [CompletionResult]::new('--slow-lane-ms', '--slow-lane-ms', [CompletionResultType]::ParameterName, 'Milliseconds a team''s processEvent calls may take for one event in the main pipeline. A call that runs longer (or computes for more than 10 ms of it; a state''s first setupPlugin counts too) is cut, and that event and the team''s next ones go to the overflow lane, where they run with the full plugin limits, until the team''s calls have been within this for a minute; so a slow or hostile plugin holds up other teams'' batches for this long once, not for its limits at every call. 0 turns it off')
            [CompletionResult]::new('--log-retention-hours', '--log-retention-hours', [CompletionResultType]::ParameterName, 'Hours a message of the embedded local logs (ingestion and overflow) is kept once every consumer has committed it; older ones are deleted. 0: no age limit')
            [CompletionResult]::new('--log-retention-bytes', '--log-retention-bytes', [CompletionResultType]::ParameterName, 'Bytes each embedded local log file may hold; past it its oldest committed messages are deleted, whatever their age. 0: no size limit')
            [CompletionResult]::new('--dead-letter-retention-count', '--dead-letter-retention-count', [CompletionResultType]::ParameterName, 'Dead letters each embedded local log keeps at most; past it the oldest are deleted (they also go with PHS_LOG_RETENTION_HOURS). 0: no count limit')
            [CompletionResult]::new('--event-overflow-bucket-replenish-rate', '--event-overflow-bucket-replenish-rate', [CompletionResultType]::ParameterName, 'Events per second at which a (token, distinct_id)''s burst allowance refills')
            [CompletionResult]::new('--distinct-id-lru-size', '--distinct-id-lru-size', [CompletionResultType]::ParameterName, 'Distinct ids whose persons a batch reads ahead in one query (no cache is kept across batches: it could serve a person that another instance has merged away)')
            [CompletionResult]::new('--admin-addr', '--admin-addr', [CompletionResultType]::ParameterName, 'Address of the admin HTTP listener (/_health, /_ready). Keep it on loopback or a private network. Port 0 lets the kernel pick a free port; PHS_READY_FILE and the log say which')
            [CompletionResult]::new('--capture-addr', '--capture-addr', [CompletionResultType]::ParameterName, 'Address of the capture endpoint that PostHog SDKs send to (/e, /capture, /batch, /i/v0/e). Port 0 lets the kernel pick a free port; PHS_READY_FILE and the log say which')
            [CompletionResult]::new('--ready-file', '--ready-file', [CompletionResultType]::ParameterName, 'Once both listeners are open, write their bound addresses to this file as `ADMIN_ADDR=host:port` and `CAPTURE_ADDR=host:port` lines (a shell can source it); deleted at start and when phs stops. Its appearance means "listening", not "healthy"')
            [CompletionResult]::new('--healthcheck-max-stale-seconds', '--healthcheck-max-stale-seconds', [CompletionResultType]::ParameterName, 'Seconds without ingesting anything, while events wait, before /_health fails')
            [CompletionResult]::new('--health-max-batch-seconds', '--health-max-batch-seconds', [CompletionResultType]::ParameterName, 'Seconds one batch may be held, or keep failing (a dependency down and retried), before /_health fails; it passes again once the batch goes through')
            [CompletionResult]::new('--shutdown-timeout-seconds', '--shutdown-timeout-seconds', [CompletionResultType]::ParameterName, 'Seconds SIGTERM waits for the batches in hand to be written and committed before phs exits anyway (with code 1); a second SIGTERM exits at once')
            [CompletionResult]::new('--statsd-host', '--statsd-host', [CompletionResultType]::ParameterName, 'StatsD host; unset disables StatsD export')
            [CompletionResult]::new('--statsd-port', '--statsd-port', [CompletionResultType]::ParameterName, 'StatsD port')
            [CompletionResult]::new('--statsd-prefix', '--statsd-prefix', [CompletionResultType]::ParameterName, 'Prefix of every StatsD metric')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;migrate' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Directory of the embedded stores (SQLite database, local ingestion log)')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process')
            [CompletionResult]::new('--kafka-hosts', '--kafka-hosts', [CompletionResultType]::ParameterName, 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log')
            [CompletionResult]::new('--kafka-consumption-topic', '--kafka-consumption-topic', [CompletionResultType]::ParameterName, 'Topic of incoming events, as produced by capture')
            [CompletionResult]::new('--kafka-consumer-group', '--kafka-consumer-group', [CompletionResultType]::ParameterName, 'Consumer group of the ingestion consumers; instances in one group share the partitions')
            [CompletionResult]::new('--kafka-prefix', '--kafka-prefix', [CompletionResultType]::ParameterName, 'Prefix put before every topic name (lets several deployments or tests share a broker)')
            [CompletionResult]::new('--kafka-client-cert-b64', '--kafka-client-cert-b64', [CompletionResultType]::ParameterName, 'Client certificate (PEM), base64-encoded; enables TLS')
            [CompletionResult]::new('--kafka-client-cert-key-b64', '--kafka-client-cert-key-b64', [CompletionResultType]::ParameterName, 'Client certificate key (PEM), base64-encoded')
            [CompletionResult]::new('--kafka-trusted-cert-b64', '--kafka-trusted-cert-b64', [CompletionResultType]::ParameterName, 'Trusted CA certificate (PEM), base64-encoded')
            [CompletionResult]::new('--kafka-security-protocol', '--kafka-security-protocol', [CompletionResultType]::ParameterName, 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given')
            [CompletionResult]::new('--kafka-sasl-mechanism', '--kafka-sasl-mechanism', [CompletionResultType]::ParameterName, 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)')
            [CompletionResult]::new('--kafka-sasl-user', '--kafka-sasl-user', [CompletionResultType]::ParameterName, 'SASL user name')
            [CompletionResult]::new('--kafka-sasl-password', '--kafka-sasl-password', [CompletionResultType]::ParameterName, 'SASL password')
            [CompletionResult]::new('--kafka-producer-max-queue-size', '--kafka-producer-max-queue-size', [CompletionResultType]::ParameterName, 'Producer: most messages in one batch to a partition (librdkafka''s batch.num.messages). The original''s 20 would make producing many times slower')
            [CompletionResult]::new('--kafka-flush-frequency-ms', '--kafka-flush-frequency-ms', [CompletionResultType]::ParameterName, 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka''s linger.ms); every capture request waits up to this long. The original''s 500 would add half a second to each')
            [CompletionResult]::new('--kafka-max-message-batch-size', '--kafka-max-message-batch-size', [CompletionResultType]::ParameterName, 'Producer: largest batch in bytes to a partition (librdkafka''s batch.size)')
            [CompletionResult]::new('--clickhouse-host', '--clickhouse-host', [CompletionResultType]::ParameterName, 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite')
            [CompletionResult]::new('--clickhouse-database', '--clickhouse-database', [CompletionResultType]::ParameterName, 'ClickHouse database')
            [CompletionResult]::new('--clickhouse-user', '--clickhouse-user', [CompletionResultType]::ParameterName, 'ClickHouse user name')
            [CompletionResult]::new('--clickhouse-password', '--clickhouse-password', [CompletionResultType]::ParameterName, 'ClickHouse password')
            [CompletionResult]::new('--clickhouse-secure', '--clickhouse-secure', [CompletionResultType]::ParameterName, 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme')
            [CompletionResult]::new('--clickhouse-ca', '--clickhouse-ca', [CompletionResultType]::ParameterName, 'CA certificate file (PEM) to trust for ClickHouse over https')
            [CompletionResult]::new('--kafka-partitions', '--kafka-partitions', [CompletionResultType]::ParameterName, 'Partitions of topics created by this run')
            [CompletionResult]::new('--kafka-replication-factor', '--kafka-replication-factor', [CompletionResultType]::ParameterName, 'Replication factor of topics created by this run')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Report what is applied and what is pending, change nothing; exit 1 when something is pending')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be applied, change nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the steps as JSON on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;healthcheck' {
            [CompletionResult]::new('--admin-addr', '--admin-addr', [CompletionResultType]::ParameterName, 'Admin address of the instance to check')
            [CompletionResult]::new('--peers', '--peers', [CompletionResultType]::ParameterName, 'With --all: the instances to check, one admin address or URL per line (`#` comments), for deployments without Redis')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for an answer')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Directory of the embedded stores (SQLite database, local ingestion log)')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process')
            [CompletionResult]::new('--kafka-hosts', '--kafka-hosts', [CompletionResultType]::ParameterName, 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log')
            [CompletionResult]::new('--kafka-consumption-topic', '--kafka-consumption-topic', [CompletionResultType]::ParameterName, 'Topic of incoming events, as produced by capture')
            [CompletionResult]::new('--kafka-consumer-group', '--kafka-consumer-group', [CompletionResultType]::ParameterName, 'Consumer group of the ingestion consumers; instances in one group share the partitions')
            [CompletionResult]::new('--kafka-prefix', '--kafka-prefix', [CompletionResultType]::ParameterName, 'Prefix put before every topic name (lets several deployments or tests share a broker)')
            [CompletionResult]::new('--kafka-client-cert-b64', '--kafka-client-cert-b64', [CompletionResultType]::ParameterName, 'Client certificate (PEM), base64-encoded; enables TLS')
            [CompletionResult]::new('--kafka-client-cert-key-b64', '--kafka-client-cert-key-b64', [CompletionResultType]::ParameterName, 'Client certificate key (PEM), base64-encoded')
            [CompletionResult]::new('--kafka-trusted-cert-b64', '--kafka-trusted-cert-b64', [CompletionResultType]::ParameterName, 'Trusted CA certificate (PEM), base64-encoded')
            [CompletionResult]::new('--kafka-security-protocol', '--kafka-security-protocol', [CompletionResultType]::ParameterName, 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given')
            [CompletionResult]::new('--kafka-sasl-mechanism', '--kafka-sasl-mechanism', [CompletionResultType]::ParameterName, 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)')
            [CompletionResult]::new('--kafka-sasl-user', '--kafka-sasl-user', [CompletionResultType]::ParameterName, 'SASL user name')
            [CompletionResult]::new('--kafka-sasl-password', '--kafka-sasl-password', [CompletionResultType]::ParameterName, 'SASL password')
            [CompletionResult]::new('--kafka-producer-max-queue-size', '--kafka-producer-max-queue-size', [CompletionResultType]::ParameterName, 'Producer: most messages in one batch to a partition (librdkafka''s batch.num.messages). The original''s 20 would make producing many times slower')
            [CompletionResult]::new('--kafka-flush-frequency-ms', '--kafka-flush-frequency-ms', [CompletionResultType]::ParameterName, 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka''s linger.ms); every capture request waits up to this long. The original''s 500 would add half a second to each')
            [CompletionResult]::new('--kafka-max-message-batch-size', '--kafka-max-message-batch-size', [CompletionResultType]::ParameterName, 'Producer: largest batch in bytes to a partition (librdkafka''s batch.size)')
            [CompletionResult]::new('--clickhouse-host', '--clickhouse-host', [CompletionResultType]::ParameterName, 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite')
            [CompletionResult]::new('--clickhouse-database', '--clickhouse-database', [CompletionResultType]::ParameterName, 'ClickHouse database')
            [CompletionResult]::new('--clickhouse-user', '--clickhouse-user', [CompletionResultType]::ParameterName, 'ClickHouse user name')
            [CompletionResult]::new('--clickhouse-password', '--clickhouse-password', [CompletionResultType]::ParameterName, 'ClickHouse password')
            [CompletionResult]::new('--clickhouse-secure', '--clickhouse-secure', [CompletionResultType]::ParameterName, 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme')
            [CompletionResult]::new('--clickhouse-ca', '--clickhouse-ca', [CompletionResultType]::ParameterName, 'CA certificate file (PEM) to trust for ClickHouse over https')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('--ready', '--ready', [CompletionResultType]::ParameterName, 'Check readiness (every dependency reachable) instead of liveness')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Check every instance with a heartbeat in Redis (REDIS_URL), or listed in --peers, instead of one')
            [CompletionResult]::new('--deps', '--deps', [CompletionResultType]::ParameterName, 'Also check that Postgres, Redis, Kafka and ClickHouse (as configured) answer, with latencies')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON on stdout: the instance''s report, or with --all/--deps every result')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;replay' {
            [CompletionResult]::new('--from-offset', '--from-offset', [CompletionResultType]::ParameterName, 'First offset to replay (inclusive; a dead letter''s id with --dead-letters)')
            [CompletionResult]::new('--from-timestamp', '--from-timestamp', [CompletionResultType]::ParameterName, 'Replay from this time: RFC 3339 (2026-12-01T10:00:00Z) or relative (-2h, -30m, -7d)')
            [CompletionResult]::new('--to-offset', '--to-offset', [CompletionResultType]::ParameterName, 'Last offset to replay (inclusive); default: the end of the log when replay starts')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'Stop at the first message after this time (RFC 3339 or relative)')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Stop after this many selected events')
            [CompletionResult]::new('--partition', '--partition', [CompletionResultType]::ParameterName, 'Partition to read (repeatable); default: every partition')
            [CompletionResult]::new('--topic', '--topic', [CompletionResultType]::ParameterName, 'Topic to read, before KAFKA_PREFIX (the overflow and dead-letter topics too); default: KAFKA_CONSUMPTION_TOPIC')
            [CompletionResult]::new('--team', '--team', [CompletionResultType]::ParameterName, 'Only events of this team (id, name or API token)')
            [CompletionResult]::new('--distinct-id', '--distinct-id', [CompletionResultType]::ParameterName, 'distinct-id')
            [CompletionResult]::new('--event', '--event', [CompletionResultType]::ParameterName, 'Only events with this name')
            [CompletionResult]::new('--uuid', '--uuid', [CompletionResultType]::ParameterName, 'uuid')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Only dead letters refused for this reason (e.g. invalid_uuid, store_refused)')
            [CompletionResult]::new('--plugin-config', '--plugin-config', [CompletionResultType]::ParameterName, 'Only run this plugin config (repeatable); default: all of the team''s plugins in order')
            [CompletionResult]::new('--plugin-dir', '--plugin-dir', [CompletionResultType]::ParameterName, 'Run a plugin from a local folder instead of the installed plugin of the same name')
            [CompletionResult]::new('--compare', '--compare', [CompletionResultType]::ParameterName, 'Run the installed plugin and this local version side by side; print the events whose output differs')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'color')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'Tasks running plugins at once, each with its own plugin states; 0: one per core')
            [CompletionResult]::new('--definitions', '--definitions', [CompletionResultType]::ParameterName, 'With --reingest: write event and property definitions, as `phs serve` does with this set')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Directory of the embedded stores (SQLite database, local ingestion log)')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process')
            [CompletionResult]::new('--kafka-hosts', '--kafka-hosts', [CompletionResultType]::ParameterName, 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log')
            [CompletionResult]::new('--kafka-consumption-topic', '--kafka-consumption-topic', [CompletionResultType]::ParameterName, 'Topic of incoming events, as produced by capture')
            [CompletionResult]::new('--kafka-consumer-group', '--kafka-consumer-group', [CompletionResultType]::ParameterName, 'Consumer group of the ingestion consumers; instances in one group share the partitions')
            [CompletionResult]::new('--kafka-prefix', '--kafka-prefix', [CompletionResultType]::ParameterName, 'Prefix put before every topic name (lets several deployments or tests share a broker)')
            [CompletionResult]::new('--kafka-client-cert-b64', '--kafka-client-cert-b64', [CompletionResultType]::ParameterName, 'Client certificate (PEM), base64-encoded; enables TLS')
            [CompletionResult]::new('--kafka-client-cert-key-b64', '--kafka-client-cert-key-b64', [CompletionResultType]::ParameterName, 'Client certificate key (PEM), base64-encoded')
            [CompletionResult]::new('--kafka-trusted-cert-b64', '--kafka-trusted-cert-b64', [CompletionResultType]::ParameterName, 'Trusted CA certificate (PEM), base64-encoded')
            [CompletionResult]::new('--kafka-security-protocol', '--kafka-security-protocol', [CompletionResultType]::ParameterName, 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given')
            [CompletionResult]::new('--kafka-sasl-mechanism', '--kafka-sasl-mechanism', [CompletionResultType]::ParameterName, 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)')
            [CompletionResult]::new('--kafka-sasl-user', '--kafka-sasl-user', [CompletionResultType]::ParameterName, 'SASL user name')
            [CompletionResult]::new('--kafka-sasl-password', '--kafka-sasl-password', [CompletionResultType]::ParameterName, 'SASL password')
            [CompletionResult]::new('--kafka-producer-max-queue-size', '--kafka-producer-max-queue-size', [CompletionResultType]::ParameterName, 'Producer: most messages in one batch to a partition (librdkafka''s batch.num.messages). The original''s 20 would make producing many times slower')
            [CompletionResult]::new('--kafka-flush-frequency-ms', '--kafka-flush-frequency-ms', [CompletionResultType]::ParameterName, 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka''s linger.ms); every capture request waits up to this long. The original''s 500 would add half a second to each')
            [CompletionResult]::new('--kafka-max-message-batch-size', '--kafka-max-message-batch-size', [CompletionResultType]::ParameterName, 'Producer: largest batch in bytes to a partition (librdkafka''s batch.size)')
            [CompletionResult]::new('--clickhouse-host', '--clickhouse-host', [CompletionResultType]::ParameterName, 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite')
            [CompletionResult]::new('--clickhouse-database', '--clickhouse-database', [CompletionResultType]::ParameterName, 'ClickHouse database')
            [CompletionResult]::new('--clickhouse-user', '--clickhouse-user', [CompletionResultType]::ParameterName, 'ClickHouse user name')
            [CompletionResult]::new('--clickhouse-password', '--clickhouse-password', [CompletionResultType]::ParameterName, 'ClickHouse password')
            [CompletionResult]::new('--clickhouse-secure', '--clickhouse-secure', [CompletionResultType]::ParameterName, 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme')
            [CompletionResult]::new('--clickhouse-ca', '--clickhouse-ca', [CompletionResultType]::ParameterName, 'CA certificate file (PEM) to trust for ClickHouse over https')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('--from-beginning', '--from-beginning', [CompletionResultType]::ParameterName, 'Replay from the oldest retained message')
            [CompletionResult]::new('--follow', '--follow', [CompletionResultType]::ParameterName, 'Keep reading new messages after the end, until Ctrl-C')
            [CompletionResult]::new('--dead-letters', '--dead-letters', [CompletionResultType]::ParameterName, 'Read the embedded dead-letter table instead of the log (with Kafka, use --topic <topic>_dlq)')
            [CompletionResult]::new('--fetch-allow-private', '--fetch-allow-private', [CompletionResultType]::ParameterName, 'Let plugins'' fetch reach private and loopback addresses, as the server allows')
            [CompletionResult]::new('--offline', '--offline', [CompletionResultType]::ParameterName, 'Send no request at all (by default GET and HEAD go out; other methods never do)')
            [CompletionResult]::new('--persons', '--persons', [CompletionResultType]::ParameterName, 'Also run the persons stage and show the person writes it would make (properties, distinct ids, merges)')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Print every event, also those no plugin changed')
            [CompletionResult]::new('--side-effects', '--side-effects', [CompletionResultType]::ParameterName, 'List each event''s side effects (storage, cache, jobs, captures, requests)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the summary')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON object per event, then a summary object, on stdout')
            [CompletionResult]::new('--reingest', '--reingest', [CompletionResultType]::ParameterName, 'Ingest the selected events again instead of a dry run')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'With --reingest: do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'With --reingest: do not ask for confirmation')
            [CompletionResult]::new('--kafka-clickhouse-topics', '--kafka-clickhouse-topics', [CompletionResultType]::ParameterName, 'With --reingest: also write the ClickHouse Kafka topics, as `phs serve` does with this set')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;plugins' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Directory of the embedded stores (SQLite database, local ingestion log)')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process')
            [CompletionResult]::new('--kafka-hosts', '--kafka-hosts', [CompletionResultType]::ParameterName, 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log')
            [CompletionResult]::new('--kafka-consumption-topic', '--kafka-consumption-topic', [CompletionResultType]::ParameterName, 'Topic of incoming events, as produced by capture')
            [CompletionResult]::new('--kafka-consumer-group', '--kafka-consumer-group', [CompletionResultType]::ParameterName, 'Consumer group of the ingestion consumers; instances in one group share the partitions')
            [CompletionResult]::new('--kafka-prefix', '--kafka-prefix', [CompletionResultType]::ParameterName, 'Prefix put before every topic name (lets several deployments or tests share a broker)')
            [CompletionResult]::new('--kafka-client-cert-b64', '--kafka-client-cert-b64', [CompletionResultType]::ParameterName, 'Client certificate (PEM), base64-encoded; enables TLS')
            [CompletionResult]::new('--kafka-client-cert-key-b64', '--kafka-client-cert-key-b64', [CompletionResultType]::ParameterName, 'Client certificate key (PEM), base64-encoded')
            [CompletionResult]::new('--kafka-trusted-cert-b64', '--kafka-trusted-cert-b64', [CompletionResultType]::ParameterName, 'Trusted CA certificate (PEM), base64-encoded')
            [CompletionResult]::new('--kafka-security-protocol', '--kafka-security-protocol', [CompletionResultType]::ParameterName, 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given')
            [CompletionResult]::new('--kafka-sasl-mechanism', '--kafka-sasl-mechanism', [CompletionResultType]::ParameterName, 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)')
            [CompletionResult]::new('--kafka-sasl-user', '--kafka-sasl-user', [CompletionResultType]::ParameterName, 'SASL user name')
            [CompletionResult]::new('--kafka-sasl-password', '--kafka-sasl-password', [CompletionResultType]::ParameterName, 'SASL password')
            [CompletionResult]::new('--kafka-producer-max-queue-size', '--kafka-producer-max-queue-size', [CompletionResultType]::ParameterName, 'Producer: most messages in one batch to a partition (librdkafka''s batch.num.messages). The original''s 20 would make producing many times slower')
            [CompletionResult]::new('--kafka-flush-frequency-ms', '--kafka-flush-frequency-ms', [CompletionResultType]::ParameterName, 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka''s linger.ms); every capture request waits up to this long. The original''s 500 would add half a second to each')
            [CompletionResult]::new('--kafka-max-message-batch-size', '--kafka-max-message-batch-size', [CompletionResultType]::ParameterName, 'Producer: largest batch in bytes to a partition (librdkafka''s batch.size)')
            [CompletionResult]::new('--clickhouse-host', '--clickhouse-host', [CompletionResultType]::ParameterName, 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite')
            [CompletionResult]::new('--clickhouse-database', '--clickhouse-database', [CompletionResultType]::ParameterName, 'ClickHouse database')
            [CompletionResult]::new('--clickhouse-user', '--clickhouse-user', [CompletionResultType]::ParameterName, 'ClickHouse user name')
            [CompletionResult]::new('--clickhouse-password', '--clickhouse-password', [CompletionResultType]::ParameterName, 'ClickHouse password')
            [CompletionResult]::new('--clickhouse-secure', '--clickhouse-secure', [CompletionResultType]::ParameterName, 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme')
            [CompletionResult]::new('--clickhouse-ca', '--clickhouse-ca', [CompletionResultType]::ParameterName, 'CA certificate file (PEM) to trust for ClickHouse over https')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('new', 'new', [CompletionResultType]::ParameterValue, 'Scaffold a plugin folder: plugin.json, index.lua and tests/ fixtures')
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Run a plugin''s fixtures, or the given events, through setupPlugin and processEvent')
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Install a plugin from a folder or a .zip/.tar.gz archive into the database')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List installed plugins and their configs')
            [CompletionResult]::new('enable', 'enable', [CompletionResultType]::ParameterValue, 'Enable a plugin for a team (also clears an automatic disable)')
            [CompletionResult]::new('disable', 'disable', [CompletionResultType]::ParameterValue, 'Disable a plugin for a team')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Show or set a plugin''s config for a team (validated; secrets masked)')
            [CompletionResult]::new('order', 'order', [CompletionResultType]::ParameterValue, 'Show or set the order in which a team''s plugins run')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Show a plugin config''s log entries')
            [CompletionResult]::new('reload', 'reload', [CompletionResultType]::ParameterValue, 'Ask every running instance to reload plugins')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove an installed plugin and its configs')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'phs;plugins;new' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Where to create it; default: ./NAME')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;plugins;test' {
            [CompletionResult]::new('--event', '--event', [CompletionResultType]::ParameterName, 'An event as JSON, or @FILE (repeatable); the events go through one plugin state in order, and each result is printed as one JSON line')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A config value for the plugin (repeatable); overrides a fixture''s config')
            [CompletionResult]::new('--geoip-db', '--geoip-db', [CompletionResultType]::ParameterName, 'MaxMind City database (.mmdb) behind `meta.geoip`; a fixture''s own `geoip` map wins')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON line per fixture on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;plugins;install' {
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;plugins;list' {
            [CompletionResult]::new('--team', '--team', [CompletionResultType]::ParameterName, 'team')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'json')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;plugins;enable' {
            [CompletionResult]::new('--team', '--team', [CompletionResultType]::ParameterName, 'team')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;plugins;disable' {
            [CompletionResult]::new('--team', '--team', [CompletionResultType]::ParameterName, 'team')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;plugins;config' {
            [CompletionResult]::new('--team', '--team', [CompletionResultType]::ParameterName, 'team')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'KEY=VALUE to set (repeatable); KEY=@PATH for an attachment field. None shows the config')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;plugins;order' {
            [CompletionResult]::new('--team', '--team', [CompletionResultType]::ParameterName, 'team')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;plugins;logs' {
            [CompletionResult]::new('--level', '--level', [CompletionResultType]::ParameterName, 'Lowest level shown: debug, log, info, warn or error')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('--follow', '--follow', [CompletionResultType]::ParameterName, 'follow')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;plugins;reload' {
            [CompletionResult]::new('--channel', '--channel', [CompletionResultType]::ParameterName, 'channel')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;plugins;remove' {
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;plugins;help' {
            [CompletionResult]::new('new', 'new', [CompletionResultType]::ParameterValue, 'Scaffold a plugin folder: plugin.json, index.lua and tests/ fixtures')
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Run a plugin''s fixtures, or the given events, through setupPlugin and processEvent')
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Install a plugin from a folder or a .zip/.tar.gz archive into the database')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List installed plugins and their configs')
            [CompletionResult]::new('enable', 'enable', [CompletionResultType]::ParameterValue, 'Enable a plugin for a team (also clears an automatic disable)')
            [CompletionResult]::new('disable', 'disable', [CompletionResultType]::ParameterValue, 'Disable a plugin for a team')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Show or set a plugin''s config for a team (validated; secrets masked)')
            [CompletionResult]::new('order', 'order', [CompletionResultType]::ParameterValue, 'Show or set the order in which a team''s plugins run')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Show a plugin config''s log entries')
            [CompletionResult]::new('reload', 'reload', [CompletionResultType]::ParameterValue, 'Ask every running instance to reload plugins')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove an installed plugin and its configs')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'phs;plugins;help;new' {
            break
        }
        'phs;plugins;help;test' {
            break
        }
        'phs;plugins;help;install' {
            break
        }
        'phs;plugins;help;list' {
            break
        }
        'phs;plugins;help;enable' {
            break
        }
        'phs;plugins;help;disable' {
            break
        }
        'phs;plugins;help;config' {
            break
        }
        'phs;plugins;help;order' {
            break
        }
        'phs;plugins;help;logs' {
            break
        }
        'phs;plugins;help;reload' {
            break
        }
        'phs;plugins;help;remove' {
            break
        }
        'phs;plugins;help;help' {
            break
        }
        'phs;top' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Admin address or URL of an instance (repeatable); default: the instances of --peers, else every instance in the heartbeats (with REDIS_URL), else the local one')
            [CompletionResult]::new('--peers', '--peers', [CompletionResultType]::ParameterName, 'A file listing the instances to watch, one admin address or URL per line (`#` comments); re-read every 10 s, for deployments without Redis')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Seconds between polls (the screen redraws on keys and new data, independently)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours; `auto` colours a terminal unless NO_COLOR is set')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Where heartbeats are read to discover instances')
            [CompletionResult]::new('--admin-addr', '--admin-addr', [CompletionResultType]::ParameterName, 'The local instance, used when no --server is given and REDIS_URL is unset')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('--once', '--once', [CompletionResultType]::ParameterName, 'Print one snapshot and exit: a text rendering, or JSON with --json')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'With --once: print the snapshot as JSON for scripts')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;teams' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Directory of the embedded stores (SQLite database, local ingestion log)')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process')
            [CompletionResult]::new('--kafka-hosts', '--kafka-hosts', [CompletionResultType]::ParameterName, 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log')
            [CompletionResult]::new('--kafka-consumption-topic', '--kafka-consumption-topic', [CompletionResultType]::ParameterName, 'Topic of incoming events, as produced by capture')
            [CompletionResult]::new('--kafka-consumer-group', '--kafka-consumer-group', [CompletionResultType]::ParameterName, 'Consumer group of the ingestion consumers; instances in one group share the partitions')
            [CompletionResult]::new('--kafka-prefix', '--kafka-prefix', [CompletionResultType]::ParameterName, 'Prefix put before every topic name (lets several deployments or tests share a broker)')
            [CompletionResult]::new('--kafka-client-cert-b64', '--kafka-client-cert-b64', [CompletionResultType]::ParameterName, 'Client certificate (PEM), base64-encoded; enables TLS')
            [CompletionResult]::new('--kafka-client-cert-key-b64', '--kafka-client-cert-key-b64', [CompletionResultType]::ParameterName, 'Client certificate key (PEM), base64-encoded')
            [CompletionResult]::new('--kafka-trusted-cert-b64', '--kafka-trusted-cert-b64', [CompletionResultType]::ParameterName, 'Trusted CA certificate (PEM), base64-encoded')
            [CompletionResult]::new('--kafka-security-protocol', '--kafka-security-protocol', [CompletionResultType]::ParameterName, 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given')
            [CompletionResult]::new('--kafka-sasl-mechanism', '--kafka-sasl-mechanism', [CompletionResultType]::ParameterName, 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)')
            [CompletionResult]::new('--kafka-sasl-user', '--kafka-sasl-user', [CompletionResultType]::ParameterName, 'SASL user name')
            [CompletionResult]::new('--kafka-sasl-password', '--kafka-sasl-password', [CompletionResultType]::ParameterName, 'SASL password')
            [CompletionResult]::new('--kafka-producer-max-queue-size', '--kafka-producer-max-queue-size', [CompletionResultType]::ParameterName, 'Producer: most messages in one batch to a partition (librdkafka''s batch.num.messages). The original''s 20 would make producing many times slower')
            [CompletionResult]::new('--kafka-flush-frequency-ms', '--kafka-flush-frequency-ms', [CompletionResultType]::ParameterName, 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka''s linger.ms); every capture request waits up to this long. The original''s 500 would add half a second to each')
            [CompletionResult]::new('--kafka-max-message-batch-size', '--kafka-max-message-batch-size', [CompletionResultType]::ParameterName, 'Producer: largest batch in bytes to a partition (librdkafka''s batch.size)')
            [CompletionResult]::new('--clickhouse-host', '--clickhouse-host', [CompletionResultType]::ParameterName, 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite')
            [CompletionResult]::new('--clickhouse-database', '--clickhouse-database', [CompletionResultType]::ParameterName, 'ClickHouse database')
            [CompletionResult]::new('--clickhouse-user', '--clickhouse-user', [CompletionResultType]::ParameterName, 'ClickHouse user name')
            [CompletionResult]::new('--clickhouse-password', '--clickhouse-password', [CompletionResultType]::ParameterName, 'ClickHouse password')
            [CompletionResult]::new('--clickhouse-secure', '--clickhouse-secure', [CompletionResultType]::ParameterName, 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme')
            [CompletionResult]::new('--clickhouse-ca', '--clickhouse-ca', [CompletionResultType]::ParameterName, 'CA certificate file (PEM) to trust for ClickHouse over https')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a team and print its project API token on stdout')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List teams')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'phs;teams;create' {
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Use this API token instead of a generated one (to mirror an existing PostHog project)')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('--anonymize-ips', '--anonymize-ips', [CompletionResultType]::ParameterName, 'Drop the IP address of every event of this team')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the whole team as JSON instead of the token alone')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;teams;list' {
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;teams;help' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a team and print its project API token on stdout')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List teams')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'phs;teams;help;create' {
            break
        }
        'phs;teams;help;list' {
            break
        }
        'phs;teams;help;help' {
            break
        }
        'phs;events' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Directory of the embedded stores (SQLite database, local ingestion log)')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process')
            [CompletionResult]::new('--kafka-hosts', '--kafka-hosts', [CompletionResultType]::ParameterName, 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log')
            [CompletionResult]::new('--kafka-consumption-topic', '--kafka-consumption-topic', [CompletionResultType]::ParameterName, 'Topic of incoming events, as produced by capture')
            [CompletionResult]::new('--kafka-consumer-group', '--kafka-consumer-group', [CompletionResultType]::ParameterName, 'Consumer group of the ingestion consumers; instances in one group share the partitions')
            [CompletionResult]::new('--kafka-prefix', '--kafka-prefix', [CompletionResultType]::ParameterName, 'Prefix put before every topic name (lets several deployments or tests share a broker)')
            [CompletionResult]::new('--kafka-client-cert-b64', '--kafka-client-cert-b64', [CompletionResultType]::ParameterName, 'Client certificate (PEM), base64-encoded; enables TLS')
            [CompletionResult]::new('--kafka-client-cert-key-b64', '--kafka-client-cert-key-b64', [CompletionResultType]::ParameterName, 'Client certificate key (PEM), base64-encoded')
            [CompletionResult]::new('--kafka-trusted-cert-b64', '--kafka-trusted-cert-b64', [CompletionResultType]::ParameterName, 'Trusted CA certificate (PEM), base64-encoded')
            [CompletionResult]::new('--kafka-security-protocol', '--kafka-security-protocol', [CompletionResultType]::ParameterName, 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given')
            [CompletionResult]::new('--kafka-sasl-mechanism', '--kafka-sasl-mechanism', [CompletionResultType]::ParameterName, 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)')
            [CompletionResult]::new('--kafka-sasl-user', '--kafka-sasl-user', [CompletionResultType]::ParameterName, 'SASL user name')
            [CompletionResult]::new('--kafka-sasl-password', '--kafka-sasl-password', [CompletionResultType]::ParameterName, 'SASL password')
            [CompletionResult]::new('--kafka-producer-max-queue-size', '--kafka-producer-max-queue-size', [CompletionResultType]::ParameterName, 'Producer: most messages in one batch to a partition (librdkafka''s batch.num.messages). The original''s 20 would make producing many times slower')
            [CompletionResult]::new('--kafka-flush-frequency-ms', '--kafka-flush-frequency-ms', [CompletionResultType]::ParameterName, 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka''s linger.ms); every capture request waits up to this long. The original''s 500 would add half a second to each')
            [CompletionResult]::new('--kafka-max-message-batch-size', '--kafka-max-message-batch-size', [CompletionResultType]::ParameterName, 'Producer: largest batch in bytes to a partition (librdkafka''s batch.size)')
            [CompletionResult]::new('--clickhouse-host', '--clickhouse-host', [CompletionResultType]::ParameterName, 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite')
            [CompletionResult]::new('--clickhouse-database', '--clickhouse-database', [CompletionResultType]::ParameterName, 'ClickHouse database')
            [CompletionResult]::new('--clickhouse-user', '--clickhouse-user', [CompletionResultType]::ParameterName, 'ClickHouse user name')
            [CompletionResult]::new('--clickhouse-password', '--clickhouse-password', [CompletionResultType]::ParameterName, 'ClickHouse password')
            [CompletionResult]::new('--clickhouse-secure', '--clickhouse-secure', [CompletionResultType]::ParameterName, 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme')
            [CompletionResult]::new('--clickhouse-ca', '--clickhouse-ca', [CompletionResultType]::ParameterName, 'CA certificate file (PEM) to trust for ClickHouse over https')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'The latest events, newest first')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'phs;events;list' {
            [CompletionResult]::new('--team', '--team', [CompletionResultType]::ParameterName, 'Only this team (id)')
            [CompletionResult]::new('--distinct-id', '--distinct-id', [CompletionResultType]::ParameterName, 'distinct-id')
            [CompletionResult]::new('--event', '--event', [CompletionResultType]::ParameterName, 'Only events with this name')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'limit')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON object per line')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;events;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'The latest events, newest first')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'phs;events;help;list' {
            break
        }
        'phs;events;help;help' {
            break
        }
        'phs;persons' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Directory of the embedded stores (SQLite database, local ingestion log)')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process')
            [CompletionResult]::new('--kafka-hosts', '--kafka-hosts', [CompletionResultType]::ParameterName, 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log')
            [CompletionResult]::new('--kafka-consumption-topic', '--kafka-consumption-topic', [CompletionResultType]::ParameterName, 'Topic of incoming events, as produced by capture')
            [CompletionResult]::new('--kafka-consumer-group', '--kafka-consumer-group', [CompletionResultType]::ParameterName, 'Consumer group of the ingestion consumers; instances in one group share the partitions')
            [CompletionResult]::new('--kafka-prefix', '--kafka-prefix', [CompletionResultType]::ParameterName, 'Prefix put before every topic name (lets several deployments or tests share a broker)')
            [CompletionResult]::new('--kafka-client-cert-b64', '--kafka-client-cert-b64', [CompletionResultType]::ParameterName, 'Client certificate (PEM), base64-encoded; enables TLS')
            [CompletionResult]::new('--kafka-client-cert-key-b64', '--kafka-client-cert-key-b64', [CompletionResultType]::ParameterName, 'Client certificate key (PEM), base64-encoded')
            [CompletionResult]::new('--kafka-trusted-cert-b64', '--kafka-trusted-cert-b64', [CompletionResultType]::ParameterName, 'Trusted CA certificate (PEM), base64-encoded')
            [CompletionResult]::new('--kafka-security-protocol', '--kafka-security-protocol', [CompletionResultType]::ParameterName, 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given')
            [CompletionResult]::new('--kafka-sasl-mechanism', '--kafka-sasl-mechanism', [CompletionResultType]::ParameterName, 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)')
            [CompletionResult]::new('--kafka-sasl-user', '--kafka-sasl-user', [CompletionResultType]::ParameterName, 'SASL user name')
            [CompletionResult]::new('--kafka-sasl-password', '--kafka-sasl-password', [CompletionResultType]::ParameterName, 'SASL password')
            [CompletionResult]::new('--kafka-producer-max-queue-size', '--kafka-producer-max-queue-size', [CompletionResultType]::ParameterName, 'Producer: most messages in one batch to a partition (librdkafka''s batch.num.messages). The original''s 20 would make producing many times slower')
            [CompletionResult]::new('--kafka-flush-frequency-ms', '--kafka-flush-frequency-ms', [CompletionResultType]::ParameterName, 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka''s linger.ms); every capture request waits up to this long. The original''s 500 would add half a second to each')
            [CompletionResult]::new('--kafka-max-message-batch-size', '--kafka-max-message-batch-size', [CompletionResultType]::ParameterName, 'Producer: largest batch in bytes to a partition (librdkafka''s batch.size)')
            [CompletionResult]::new('--clickhouse-host', '--clickhouse-host', [CompletionResultType]::ParameterName, 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite')
            [CompletionResult]::new('--clickhouse-database', '--clickhouse-database', [CompletionResultType]::ParameterName, 'ClickHouse database')
            [CompletionResult]::new('--clickhouse-user', '--clickhouse-user', [CompletionResultType]::ParameterName, 'ClickHouse user name')
            [CompletionResult]::new('--clickhouse-password', '--clickhouse-password', [CompletionResultType]::ParameterName, 'ClickHouse password')
            [CompletionResult]::new('--clickhouse-secure', '--clickhouse-secure', [CompletionResultType]::ParameterName, 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme')
            [CompletionResult]::new('--clickhouse-ca', '--clickhouse-ca', [CompletionResultType]::ParameterName, 'CA certificate file (PEM) to trust for ClickHouse over https')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'The person behind a distinct id; exits 1 when there is none')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'phs;persons;show' {
            [CompletionResult]::new('--team', '--team', [CompletionResultType]::ParameterName, 'The team: id, API token or name')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;persons;help' {
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'The person behind a distinct id; exits 1 when there is none')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'phs;persons;help;show' {
            break
        }
        'phs;persons;help;help' {
            break
        }
        'phs;completions' {
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Minimum log level (`log` is an alias of `info`, as in the original)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'phs;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the plugin server: ingestion, plugins, scheduled tasks, jobs and the admin listener')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Create or update tables (Postgres or SQLite, ClickHouse) and Kafka topics')
            [CompletionResult]::new('healthcheck', 'healthcheck', [CompletionResultType]::ParameterValue, 'Query a running instance''s admin listener; exit 0 when healthy, 1 otherwise')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Re-run past events from the ingestion log (Kafka or local) through plugins')
            [CompletionResult]::new('plugins', 'plugins', [CompletionResultType]::ParameterValue, 'Manage Lua plugins and their per-team configs')
            [CompletionResult]::new('top', 'top', [CompletionResultType]::ParameterValue, 'Watch running instances: consumer lag, worker load, plugins and their errors')
            [CompletionResult]::new('teams', 'teams', [CompletionResultType]::ParameterValue, 'Manage teams (projects): each has the API token SDKs send events with')
            [CompletionResult]::new('events', 'events', [CompletionResultType]::ParameterValue, 'Look at stored events')
            [CompletionResult]::new('persons', 'persons', [CompletionResultType]::ParameterValue, 'Look at persons')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (or the man page) on stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'phs;help;serve' {
            break
        }
        'phs;help;migrate' {
            break
        }
        'phs;help;healthcheck' {
            break
        }
        'phs;help;replay' {
            break
        }
        'phs;help;plugins' {
            [CompletionResult]::new('new', 'new', [CompletionResultType]::ParameterValue, 'Scaffold a plugin folder: plugin.json, index.lua and tests/ fixtures')
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Run a plugin''s fixtures, or the given events, through setupPlugin and processEvent')
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Install a plugin from a folder or a .zip/.tar.gz archive into the database')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List installed plugins and their configs')
            [CompletionResult]::new('enable', 'enable', [CompletionResultType]::ParameterValue, 'Enable a plugin for a team (also clears an automatic disable)')
            [CompletionResult]::new('disable', 'disable', [CompletionResultType]::ParameterValue, 'Disable a plugin for a team')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Show or set a plugin''s config for a team (validated; secrets masked)')
            [CompletionResult]::new('order', 'order', [CompletionResultType]::ParameterValue, 'Show or set the order in which a team''s plugins run')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Show a plugin config''s log entries')
            [CompletionResult]::new('reload', 'reload', [CompletionResultType]::ParameterValue, 'Ask every running instance to reload plugins')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove an installed plugin and its configs')
            break
        }
        'phs;help;plugins;new' {
            break
        }
        'phs;help;plugins;test' {
            break
        }
        'phs;help;plugins;install' {
            break
        }
        'phs;help;plugins;list' {
            break
        }
        'phs;help;plugins;enable' {
            break
        }
        'phs;help;plugins;disable' {
            break
        }
        'phs;help;plugins;config' {
            break
        }
        'phs;help;plugins;order' {
            break
        }
        'phs;help;plugins;logs' {
            break
        }
        'phs;help;plugins;reload' {
            break
        }
        'phs;help;plugins;remove' {
            break
        }
        'phs;help;top' {
            break
        }
        'phs;help;teams' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a team and print its project API token on stdout')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List teams')
            break
        }
        'phs;help;teams;create' {
            break
        }
        'phs;help;teams;list' {
            break
        }
        'phs;help;events' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'The latest events, newest first')
            break
        }
        'phs;help;events;list' {
            break
        }
        'phs;help;persons' {
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'The person behind a distinct id; exits 1 when there is none')
            break
        }
        'phs;help;persons;show' {
            break
        }
        'phs;help;completions' {
            break
        }
        'phs;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
