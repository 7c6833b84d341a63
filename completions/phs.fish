# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_phs_global_optspecs
    string join \n log-level= log-format= h/help V/version
end

function __fish_phs_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_phs_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_phs_using_subcommand
    set -l cmd (__fish_phs_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c phs -n "__fish_phs_needs_command" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_needs_command" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c phs -n "__fish_phs_needs_command" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_needs_command" -f -a "serve" -d 'Run the plugin server: ingestion, plugins, scheduled tasks, jobs and the admin listener'
complete -c phs -n "__fish_phs_needs_command" -f -a "migrate" -d 'Create or update tables (Postgres or SQLite, ClickHouse) and Kafka topics'
complete -c phs -n "__fish_phs_needs_command" -f -a "healthcheck" -d 'Query a running instance\'s admin listener; exit 0 when healthy, 1 otherwise'
complete -c phs -n "__fish_phs_needs_command" -f -a "replay" -d 'Re-run past events from the ingestion log (Kafka or local) through plugins'
complete -c phs -n "__fish_phs_needs_command" -f -a "plugins" -d 'Manage Lua plugins and their per-team configs'
complete -c phs -n "__fish_phs_needs_command" -f -a "top" -d 'Watch running instances: consumer lag, worker load, plugins and their errors'
complete -c phs -n "__fish_phs_needs_command" -f -a "teams" -d 'Manage teams (projects): each has the API token SDKs send events with'
complete -c phs -n "__fish_phs_needs_command" -f -a "events" -d 'Look at stored events'
complete -c phs -n "__fish_phs_needs_command" -f -a "persons" -d 'Look at persons'
complete -c phs -n "__fish_phs_needs_command" -f -a "completions" -d 'Print a shell completion script (or the man page) on stdout'
complete -c phs -n "__fish_phs_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c phs -n "__fish_phs_using_subcommand serve" -l database-url -d 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l data-dir -d 'Directory of the embedded stores (SQLite database, local ingestion log)' -r -F
complete -c phs -n "__fish_phs_using_subcommand serve" -l redis-url -d 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l kafka-hosts -d 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l kafka-consumption-topic -d 'Topic of incoming events, as produced by capture' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l kafka-consumer-group -d 'Consumer group of the ingestion consumers; instances in one group share the partitions' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l kafka-prefix -d 'Prefix put before every topic name (lets several deployments or tests share a broker)' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l kafka-client-cert-b64 -d 'Client certificate (PEM), base64-encoded; enables TLS' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l kafka-client-cert-key-b64 -d 'Client certificate key (PEM), base64-encoded' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l kafka-trusted-cert-b64 -d 'Trusted CA certificate (PEM), base64-encoded' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l kafka-security-protocol -d 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given' -r -f -a "plaintext\t''
ssl\t''
sasl-plaintext\t''
sasl-ssl\t''"
complete -c phs -n "__fish_phs_using_subcommand serve" -l kafka-sasl-mechanism -d 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l kafka-sasl-user -d 'SASL user name' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l kafka-sasl-password -d 'SASL password' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l kafka-producer-max-queue-size -d 'Producer: most messages in one batch to a partition (librdkafka\'s batch.num.messages). The original\'s 20 would make producing many times slower' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l kafka-flush-frequency-ms -d 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka\'s linger.ms); every capture request waits up to this long. The original\'s 500 would add half a second to each' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l kafka-max-message-batch-size -d 'Producer: largest batch in bytes to a partition (librdkafka\'s batch.size)' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l clickhouse-host -d 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l clickhouse-database -d 'ClickHouse database' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l clickhouse-user -d 'ClickHouse user name' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l clickhouse-password -d 'ClickHouse password' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l clickhouse-secure -d 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme' -r -f -a "true\t''
false\t''"
complete -c phs -n "__fish_phs_using_subcommand serve" -l clickhouse-ca -d 'CA certificate file (PEM) to trust for ClickHouse over https' -r -F
complete -c phs -n "__fish_phs_using_subcommand serve" -l worker-concurrency -d 'Shards each batch is processed on, each a task with its own Lua states (the original\'s worker threads); events are spread by (team, distinct_id), so one person\'s stay in order. 0: one per core' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l tasks-per-worker -d '(team, distinct_id) keys each shard processes at once: while one waits on a plugin\'s cache, storage or fetch call, or on persons, the next runs' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l on-event-concurrency -d 'onEvent calls of one plugin config run at once by the async side on Kafka, each on a Lua state of its own; one distinct id\'s events stay in order. Embedded runs them one at a time' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l plugin-server-mode -d 'Which parts of the server this instance runs. Unset: all of them' -r -f -a "ingestion\t'Only ingestion: source -> plugins\' processEvent -> persons -> sinks'
async\t'Only async work: onEvent/exportEvents, scheduled tasks and jobs'
async-onevent\t'Only onEvent, from the stored-events topic in a consumer group of its own (needs Kafka)'
async-exports\t'Only exportEvents, from the stored-events topic in a consumer group of its own (needs Kafka)'
jobs\t'Only the job worker: plugin jobs and exportEvents retries'
scheduler\t'Only runEveryMinute/Hour/Day (one instance of the cluster runs them at a time)'"
complete -c phs -n "__fish_phs_using_subcommand serve" -l schedule-lock-ttl -d 'Seconds the scheduler lock is held; one instance in the cluster runs scheduled tasks' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l disable-mmdb -d 'Disable MaxMind GeoIP lookups for plugins (`meta.geoip`)' -r -f -a "true\t''
false\t''"
complete -c phs -n "__fish_phs_using_subcommand serve" -l mmdb-file-location -d 'MaxMind City database (.mmdb) behind plugins\' `meta.geoip.locate`. Unset: locate raises an error' -r -F
complete -c phs -n "__fish_phs_using_subcommand serve" -l plugin-disable-error-rate -d 'Share of failed calls (0-1] within a window that disables a plugin config automatically' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l plugin-disable-min-calls -d 'Calls a window must hold before the error rate can disable a plugin config' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l plugin-disable-window-seconds -d 'Seconds of the window in which a plugin config\'s error rate is counted' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l plugin-fetch-allow-private -d 'Let plugins\' fetch() reach private, loopback and link-local addresses (off: only public ones)' -r -f -a "true\t''
false\t''"
complete -c phs -n "__fish_phs_using_subcommand serve" -l kafka-clickhouse-topics -d 'Also produce events, persons, distinct ids and groups to the Kafka topics PostHog\'s ClickHouse consumes (clickhouse_events_json, clickhouse_person, ...), to stand in for the Node plugin server' -r -f -a "true\t''
false\t''"
complete -c phs -n "__fish_phs_using_subcommand serve" -l definitions -d 'Keep the event and property definitions PostHog\'s UI lists (posthog_eventdefinition, posthog_propertydefinition, posthog_eventproperty) as events arrive. Turn off where a separate taxonomy service writes them; the team\'s first-event flag (ingested_event) is set either way' -r -f -a "true\t''
false\t''"
complete -c phs -n "__fish_phs_using_subcommand serve" -l event-overflow-bucket-capacity -d 'Events one (token, distinct_id) may send in a burst; past it, its events go to the overflow topic (KAFKA_CONSUMPTION_TOPIC + `_overflow`, or the embedded overflow log), where a second pipeline ingests them, so one flooding person does not hold up everyone else\'s batches. 0 turns it off' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l slow-lane-ms -d 'Milliseconds a team\'s processEvent calls may take for one event in the main pipeline. A call that runs longer (or computes for more than 10 ms of it; a state\'s first setupPlugin counts too) is cut, and that event and the team\'s next ones go to the overflow lane, where they run with the full plugin limits, until the team\'s calls have been within this for a minute; so a slow or hostile plugin holds up other teams\' batches for this long once, not for its limits at every call. 0 turns it off' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l log-retention-hours -d 'Hours a message of the embedded local logs (ingestion and overflow) is kept once every consumer has committed it; older ones are deleted. 0: no age limit' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l log-retention-bytes -d 'Bytes each embedded local log file may hold; past it its oldest committed messages are deleted, whatever their age. 0: no size limit' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l dead-letter-retention-count -d 'Dead letters each embedded local log keeps at most; past it the oldest are deleted (they also go with PHS_LOG_RETENTION_HOURS). 0: no count limit' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l event-overflow-bucket-replenish-rate -d 'Events per second at which a (token, distinct_id)\'s burst allowance refills' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l distinct-id-lru-size -d 'Distinct ids whose persons a batch reads ahead in one query (no cache is kept across batches: it could serve a person that another instance has merged away)' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l admin-addr -d 'Address of the admin HTTP listener (/_health, /_ready). Keep it on loopback or a private network. Port 0 lets the kernel pick a free port; PHS_READY_FILE and the log say which' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l capture-addr -d 'Address of the capture endpoint that PostHog SDKs send to (/e, /capture, /batch, /i/v0/e). Port 0 lets the kernel pick a free port; PHS_READY_FILE and the log say which' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l ready-file -d 'Once both listeners are open, write their bound addresses to this file as `ADMIN_ADDR=host:port` and `CAPTURE_ADDR=host:port` lines (a shell can source it); deleted at start and when phs stops. Its appearance means "listening", not "healthy"' -r -F
complete -c phs -n "__fish_phs_using_subcommand serve" -l healthcheck-max-stale-seconds -d 'Seconds without ingesting anything, while events wait, before /_health fails' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l health-max-batch-seconds -d 'Seconds one batch may be held, or keep failing (a dependency down and retried), before /_health fails; it passes again once the batch goes through' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l shutdown-timeout-seconds -d 'Seconds SIGTERM waits for the batches in hand to be written and committed before phs exits anyway (with code 1); a second SIGTERM exits at once' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l statsd-host -d 'StatsD host; unset disables StatsD export' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l statsd-port -d 'StatsD port' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l statsd-prefix -d 'Prefix of every StatsD metric' -r
complete -c phs -n "__fish_phs_using_subcommand serve" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand serve" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c phs -n "__fish_phs_using_subcommand serve" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand migrate" -l database-url -d 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l data-dir -d 'Directory of the embedded stores (SQLite database, local ingestion log)' -r -F
complete -c phs -n "__fish_phs_using_subcommand migrate" -l redis-url -d 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l kafka-hosts -d 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l kafka-consumption-topic -d 'Topic of incoming events, as produced by capture' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l kafka-consumer-group -d 'Consumer group of the ingestion consumers; instances in one group share the partitions' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l kafka-prefix -d 'Prefix put before every topic name (lets several deployments or tests share a broker)' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l kafka-client-cert-b64 -d 'Client certificate (PEM), base64-encoded; enables TLS' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l kafka-client-cert-key-b64 -d 'Client certificate key (PEM), base64-encoded' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l kafka-trusted-cert-b64 -d 'Trusted CA certificate (PEM), base64-encoded' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l kafka-security-protocol -d 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given' -r -f -a "plaintext\t''
ssl\t''
sasl-plaintext\t''
sasl-ssl\t''"
complete -c phs -n "__fish_phs_using_subcommand migrate" -l kafka-sasl-mechanism -d 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l kafka-sasl-user -d 'SASL user name' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l kafka-sasl-password -d 'SASL password' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l kafka-producer-max-queue-size -d 'Producer: most messages in one batch to a partition (librdkafka\'s batch.num.messages). The original\'s 20 would make producing many times slower' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l kafka-flush-frequency-ms -d 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka\'s linger.ms); every capture request waits up to this long. The original\'s 500 would add half a second to each' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l kafka-max-message-batch-size -d 'Producer: largest batch in bytes to a partition (librdkafka\'s batch.size)' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l clickhouse-host -d 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l clickhouse-database -d 'ClickHouse database' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l clickhouse-user -d 'ClickHouse user name' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l clickhouse-password -d 'ClickHouse password' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l clickhouse-secure -d 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme' -r -f -a "true\t''
false\t''"
complete -c phs -n "__fish_phs_using_subcommand migrate" -l clickhouse-ca -d 'CA certificate file (PEM) to trust for ClickHouse over https' -r -F
complete -c phs -n "__fish_phs_using_subcommand migrate" -l kafka-partitions -d 'Partitions of topics created by this run' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l kafka-replication-factor -d 'Replication factor of topics created by this run' -r
complete -c phs -n "__fish_phs_using_subcommand migrate" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand migrate" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand migrate" -l status -d 'Report what is applied and what is pending, change nothing; exit 1 when something is pending'
complete -c phs -n "__fish_phs_using_subcommand migrate" -l dry-run -d 'Show what would be applied, change nothing'
complete -c phs -n "__fish_phs_using_subcommand migrate" -l json -d 'Print the steps as JSON on stdout'
complete -c phs -n "__fish_phs_using_subcommand migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c phs -n "__fish_phs_using_subcommand migrate" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l admin-addr -d 'Admin address of the instance to check' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l peers -d 'With --all: the instances to check, one admin address or URL per line (`#` comments), for deployments without Redis' -r -F
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l timeout -d 'Seconds to wait for an answer' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l database-url -d 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l data-dir -d 'Directory of the embedded stores (SQLite database, local ingestion log)' -r -F
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l redis-url -d 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l kafka-hosts -d 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l kafka-consumption-topic -d 'Topic of incoming events, as produced by capture' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l kafka-consumer-group -d 'Consumer group of the ingestion consumers; instances in one group share the partitions' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l kafka-prefix -d 'Prefix put before every topic name (lets several deployments or tests share a broker)' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l kafka-client-cert-b64 -d 'Client certificate (PEM), base64-encoded; enables TLS' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l kafka-client-cert-key-b64 -d 'Client certificate key (PEM), base64-encoded' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l kafka-trusted-cert-b64 -d 'Trusted CA certificate (PEM), base64-encoded' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l kafka-security-protocol -d 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given' -r -f -a "plaintext\t''
ssl\t''
sasl-plaintext\t''
sasl-ssl\t''"
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l kafka-sasl-mechanism -d 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l kafka-sasl-user -d 'SASL user name' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l kafka-sasl-password -d 'SASL password' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l kafka-producer-max-queue-size -d 'Producer: most messages in one batch to a partition (librdkafka\'s batch.num.messages). The original\'s 20 would make producing many times slower' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l kafka-flush-frequency-ms -d 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka\'s linger.ms); every capture request waits up to this long. The original\'s 500 would add half a second to each' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l kafka-max-message-batch-size -d 'Producer: largest batch in bytes to a partition (librdkafka\'s batch.size)' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l clickhouse-host -d 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l clickhouse-database -d 'ClickHouse database' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l clickhouse-user -d 'ClickHouse user name' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l clickhouse-password -d 'ClickHouse password' -r
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l clickhouse-secure -d 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme' -r -f -a "true\t''
false\t''"
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l clickhouse-ca -d 'CA certificate file (PEM) to trust for ClickHouse over https' -r -F
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l ready -d 'Check readiness (every dependency reachable) instead of liveness'
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l all -d 'Check every instance with a heartbeat in Redis (REDIS_URL), or listed in --peers, instead of one'
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l deps -d 'Also check that Postgres, Redis, Kafka and ClickHouse (as configured) answer, with latencies'
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -l json -d 'Print JSON on stdout: the instance\'s report, or with --all/--deps every result'
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand healthcheck" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand replay" -l from-offset -d 'First offset to replay (inclusive; a dead letter\'s id with --dead-letters)' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l from-timestamp -d 'Replay from this time: RFC 3339 (2026-12-01T10:00:00Z) or relative (-2h, -30m, -7d)' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l to-offset -d 'Last offset to replay (inclusive); default: the end of the log when replay starts' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l until -d 'Stop at the first message after this time (RFC 3339 or relative)' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l limit -d 'Stop after this many selected events' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l partition -d 'Partition to read (repeatable); default: every partition' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l topic -d 'Topic to read, before KAFKA_PREFIX (the overflow and dead-letter topics too); default: KAFKA_CONSUMPTION_TOPIC' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l team -d 'Only events of this team (id, name or API token)' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l distinct-id -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l event -d 'Only events with this name' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l uuid -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l reason -d 'Only dead letters refused for this reason (e.g. invalid_uuid, store_refused)' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l plugin-config -d 'Only run this plugin config (repeatable); default: all of the team\'s plugins in order' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l plugin-dir -d 'Run a plugin from a local folder instead of the installed plugin of the same name' -r -F
complete -c phs -n "__fish_phs_using_subcommand replay" -l compare -d 'Run the installed plugin and this local version side by side; print the events whose output differs' -r -F
complete -c phs -n "__fish_phs_using_subcommand replay" -l color -r -f -a "auto\t''
always\t''
never\t''"
complete -c phs -n "__fish_phs_using_subcommand replay" -l threads -d 'Tasks running plugins at once, each with its own plugin states; 0: one per core' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l definitions -d 'With --reingest: write event and property definitions, as `phs serve` does with this set' -r -f -a "true\t''
false\t''"
complete -c phs -n "__fish_phs_using_subcommand replay" -l database-url -d 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l data-dir -d 'Directory of the embedded stores (SQLite database, local ingestion log)' -r -F
complete -c phs -n "__fish_phs_using_subcommand replay" -l redis-url -d 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l kafka-hosts -d 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l kafka-consumption-topic -d 'Topic of incoming events, as produced by capture' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l kafka-consumer-group -d 'Consumer group of the ingestion consumers; instances in one group share the partitions' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l kafka-prefix -d 'Prefix put before every topic name (lets several deployments or tests share a broker)' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l kafka-client-cert-b64 -d 'Client certificate (PEM), base64-encoded; enables TLS' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l kafka-client-cert-key-b64 -d 'Client certificate key (PEM), base64-encoded' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l kafka-trusted-cert-b64 -d 'Trusted CA certificate (PEM), base64-encoded' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l kafka-security-protocol -d 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given' -r -f -a "plaintext\t''
ssl\t''
sasl-plaintext\t''
sasl-ssl\t''"
complete -c phs -n "__fish_phs_using_subcommand replay" -l kafka-sasl-mechanism -d 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l kafka-sasl-user -d 'SASL user name' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l kafka-sasl-password -d 'SASL password' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l kafka-producer-max-queue-size -d 'Producer: most messages in one batch to a partition (librdkafka\'s batch.num.messages). The original\'s 20 would make producing many times slower' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l kafka-flush-frequency-ms -d 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka\'s linger.ms); every capture request waits up to this long. The original\'s 500 would add half a second to each' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l kafka-max-message-batch-size -d 'Producer: largest batch in bytes to a partition (librdkafka\'s batch.size)' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l clickhouse-host -d 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l clickhouse-database -d 'ClickHouse database' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l clickhouse-user -d 'ClickHouse user name' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l clickhouse-password -d 'ClickHouse password' -r
complete -c phs -n "__fish_phs_using_subcommand replay" -l clickhouse-secure -d 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme' -r -f -a "true\t''
false\t''"
complete -c phs -n "__fish_phs_using_subcommand replay" -l clickhouse-ca -d 'CA certificate file (PEM) to trust for ClickHouse over https' -r -F
complete -c phs -n "__fish_phs_using_subcommand replay" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand replay" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand replay" -l from-beginning -d 'Replay from the oldest retained message'
complete -c phs -n "__fish_phs_using_subcommand replay" -l follow -d 'Keep reading new messages after the end, until Ctrl-C'
complete -c phs -n "__fish_phs_using_subcommand replay" -l dead-letters -d 'Read the embedded dead-letter table instead of the log (with Kafka, use --topic <topic>_dlq)'
complete -c phs -n "__fish_phs_using_subcommand replay" -l fetch-allow-private -d 'Let plugins\' fetch reach private and loopback addresses, as the server allows'
complete -c phs -n "__fish_phs_using_subcommand replay" -l offline -d 'Send no request at all (by default GET and HEAD go out; other methods never do)'
complete -c phs -n "__fish_phs_using_subcommand replay" -l persons -d 'Also run the persons stage and show the person writes it would make (properties, distinct ids, merges)'
complete -c phs -n "__fish_phs_using_subcommand replay" -l all -d 'Print every event, also those no plugin changed'
complete -c phs -n "__fish_phs_using_subcommand replay" -l side-effects -d 'List each event\'s side effects (storage, cache, jobs, captures, requests)'
complete -c phs -n "__fish_phs_using_subcommand replay" -s q -l quiet -d 'Print only the summary'
complete -c phs -n "__fish_phs_using_subcommand replay" -l json -d 'One JSON object per event, then a summary object, on stdout'
complete -c phs -n "__fish_phs_using_subcommand replay" -l reingest -d 'Ingest the selected events again instead of a dry run'
complete -c phs -n "__fish_phs_using_subcommand replay" -s y -l yes -d 'With --reingest: do not ask for confirmation'
complete -c phs -n "__fish_phs_using_subcommand replay" -l kafka-clickhouse-topics -d 'With --reingest: also write the ClickHouse Kafka topics, as `phs serve` does with this set'
complete -c phs -n "__fish_phs_using_subcommand replay" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c phs -n "__fish_phs_using_subcommand replay" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l database-url -d 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l data-dir -d 'Directory of the embedded stores (SQLite database, local ingestion log)' -r -F
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l redis-url -d 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l kafka-hosts -d 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l kafka-consumption-topic -d 'Topic of incoming events, as produced by capture' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l kafka-consumer-group -d 'Consumer group of the ingestion consumers; instances in one group share the partitions' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l kafka-prefix -d 'Prefix put before every topic name (lets several deployments or tests share a broker)' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l kafka-client-cert-b64 -d 'Client certificate (PEM), base64-encoded; enables TLS' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l kafka-client-cert-key-b64 -d 'Client certificate key (PEM), base64-encoded' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l kafka-trusted-cert-b64 -d 'Trusted CA certificate (PEM), base64-encoded' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l kafka-security-protocol -d 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given' -r -f -a "plaintext\t''
ssl\t''
sasl-plaintext\t''
sasl-ssl\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l kafka-sasl-mechanism -d 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l kafka-sasl-user -d 'SASL user name' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l kafka-sasl-password -d 'SASL password' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l kafka-producer-max-queue-size -d 'Producer: most messages in one batch to a partition (librdkafka\'s batch.num.messages). The original\'s 20 would make producing many times slower' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l kafka-flush-frequency-ms -d 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka\'s linger.ms); every capture request waits up to this long. The original\'s 500 would add half a second to each' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l kafka-max-message-batch-size -d 'Producer: largest batch in bytes to a partition (librdkafka\'s batch.size)' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l clickhouse-host -d 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l clickhouse-database -d 'ClickHouse database' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l clickhouse-user -d 'ClickHouse user name' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l clickhouse-password -d 'ClickHouse password' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l clickhouse-secure -d 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme' -r -f -a "true\t''
false\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l clickhouse-ca -d 'CA certificate file (PEM) to trust for ClickHouse over https' -r -F
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -f -a "new" -d 'Scaffold a plugin folder: plugin.json, index.lua and tests/ fixtures'
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -f -a "test" -d 'Run a plugin\'s fixtures, or the given events, through setupPlugin and processEvent'
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -f -a "install" -d 'Install a plugin from a folder or a .zip/.tar.gz archive into the database'
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -f -a "list" -d 'List installed plugins and their configs'
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -f -a "enable" -d 'Enable a plugin for a team (also clears an automatic disable)'
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -f -a "disable" -d 'Disable a plugin for a team'
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -f -a "config" -d 'Show or set a plugin\'s config for a team (validated; secrets masked)'
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -f -a "order" -d 'Show or set the order in which a team\'s plugins run'
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -f -a "logs" -d 'Show a plugin config\'s log entries'
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -f -a "reload" -d 'Ask every running instance to reload plugins'
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -f -a "remove" -d 'Remove an installed plugin and its configs'
complete -c phs -n "__fish_phs_using_subcommand plugins; and not __fish_seen_subcommand_from new test install list enable disable config order logs reload remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from new" -l dir -d 'Where to create it; default: ./NAME' -r -F
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from new" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from new" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from new" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from new" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from test" -l event -d 'An event as JSON, or @FILE (repeatable); the events go through one plugin state in order, and each result is printed as one JSON line' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from test" -l config -d 'A config value for the plugin (repeatable); overrides a fixture\'s config' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from test" -l geoip-db -d 'MaxMind City database (.mmdb) behind `meta.geoip`; a fixture\'s own `geoip` map wins' -r -F
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from test" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from test" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from test" -l json -d 'One JSON line per fixture on stdout'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from test" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from install" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from install" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from install" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from list" -l team -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from list" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from list" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from list" -l json
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from enable" -l team -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from enable" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from enable" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from enable" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from disable" -l team -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from disable" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from disable" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from disable" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from config" -l team -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from config" -l set -d 'KEY=VALUE to set (repeatable); KEY=@PATH for an attachment field. None shows the config' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from config" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from config" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from config" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from config" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from order" -l team -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from order" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from order" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from order" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from order" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from logs" -l level -d 'Lowest level shown: debug, log, info, warn or error' -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from logs" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from logs" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from logs" -l follow
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from logs" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from logs" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from reload" -l channel -r
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from reload" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from reload" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from reload" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from reload" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from remove" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from remove" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from help" -f -a "new" -d 'Scaffold a plugin folder: plugin.json, index.lua and tests/ fixtures'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from help" -f -a "test" -d 'Run a plugin\'s fixtures, or the given events, through setupPlugin and processEvent'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from help" -f -a "install" -d 'Install a plugin from a folder or a .zip/.tar.gz archive into the database'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from help" -f -a "list" -d 'List installed plugins and their configs'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from help" -f -a "enable" -d 'Enable a plugin for a team (also clears an automatic disable)'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from help" -f -a "disable" -d 'Disable a plugin for a team'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from help" -f -a "config" -d 'Show or set a plugin\'s config for a team (validated; secrets masked)'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from help" -f -a "order" -d 'Show or set the order in which a team\'s plugins run'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from help" -f -a "logs" -d 'Show a plugin config\'s log entries'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from help" -f -a "reload" -d 'Ask every running instance to reload plugins'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove an installed plugin and its configs'
complete -c phs -n "__fish_phs_using_subcommand plugins; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c phs -n "__fish_phs_using_subcommand top" -l server -d 'Admin address or URL of an instance (repeatable); default: the instances of --peers, else every instance in the heartbeats (with REDIS_URL), else the local one' -r
complete -c phs -n "__fish_phs_using_subcommand top" -l peers -d 'A file listing the instances to watch, one admin address or URL per line (`#` comments); re-read every 10 s, for deployments without Redis' -r -F
complete -c phs -n "__fish_phs_using_subcommand top" -l interval -d 'Seconds between polls (the screen redraws on keys and new data, independently)' -r
complete -c phs -n "__fish_phs_using_subcommand top" -l color -d 'When to use colours; `auto` colours a terminal unless NO_COLOR is set' -r -f -a "auto\t''
always\t''
never\t''"
complete -c phs -n "__fish_phs_using_subcommand top" -l redis-url -d 'Where heartbeats are read to discover instances' -r
complete -c phs -n "__fish_phs_using_subcommand top" -l admin-addr -d 'The local instance, used when no --server is given and REDIS_URL is unset' -r
complete -c phs -n "__fish_phs_using_subcommand top" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand top" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand top" -l once -d 'Print one snapshot and exit: a text rendering, or JSON with --json'
complete -c phs -n "__fish_phs_using_subcommand top" -l json -d 'With --once: print the snapshot as JSON for scripts'
complete -c phs -n "__fish_phs_using_subcommand top" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c phs -n "__fish_phs_using_subcommand top" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l database-url -d 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l data-dir -d 'Directory of the embedded stores (SQLite database, local ingestion log)' -r -F
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l redis-url -d 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l kafka-hosts -d 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l kafka-consumption-topic -d 'Topic of incoming events, as produced by capture' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l kafka-consumer-group -d 'Consumer group of the ingestion consumers; instances in one group share the partitions' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l kafka-prefix -d 'Prefix put before every topic name (lets several deployments or tests share a broker)' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l kafka-client-cert-b64 -d 'Client certificate (PEM), base64-encoded; enables TLS' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l kafka-client-cert-key-b64 -d 'Client certificate key (PEM), base64-encoded' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l kafka-trusted-cert-b64 -d 'Trusted CA certificate (PEM), base64-encoded' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l kafka-security-protocol -d 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given' -r -f -a "plaintext\t''
ssl\t''
sasl-plaintext\t''
sasl-ssl\t''"
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l kafka-sasl-mechanism -d 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l kafka-sasl-user -d 'SASL user name' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l kafka-sasl-password -d 'SASL password' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l kafka-producer-max-queue-size -d 'Producer: most messages in one batch to a partition (librdkafka\'s batch.num.messages). The original\'s 20 would make producing many times slower' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l kafka-flush-frequency-ms -d 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka\'s linger.ms); every capture request waits up to this long. The original\'s 500 would add half a second to each' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l kafka-max-message-batch-size -d 'Producer: largest batch in bytes to a partition (librdkafka\'s batch.size)' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l clickhouse-host -d 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l clickhouse-database -d 'ClickHouse database' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l clickhouse-user -d 'ClickHouse user name' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l clickhouse-password -d 'ClickHouse password' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l clickhouse-secure -d 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme' -r -f -a "true\t''
false\t''"
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l clickhouse-ca -d 'CA certificate file (PEM) to trust for ClickHouse over https' -r -F
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -f -a "create" -d 'Create a team and print its project API token on stdout'
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -f -a "list" -d 'List teams'
complete -c phs -n "__fish_phs_using_subcommand teams; and not __fish_seen_subcommand_from create list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c phs -n "__fish_phs_using_subcommand teams; and __fish_seen_subcommand_from create" -l token -d 'Use this API token instead of a generated one (to mirror an existing PostHog project)' -r
complete -c phs -n "__fish_phs_using_subcommand teams; and __fish_seen_subcommand_from create" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand teams; and __fish_seen_subcommand_from create" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand teams; and __fish_seen_subcommand_from create" -l anonymize-ips -d 'Drop the IP address of every event of this team'
complete -c phs -n "__fish_phs_using_subcommand teams; and __fish_seen_subcommand_from create" -l json -d 'Print the whole team as JSON instead of the token alone'
complete -c phs -n "__fish_phs_using_subcommand teams; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand teams; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand teams; and __fish_seen_subcommand_from list" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand teams; and __fish_seen_subcommand_from list" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand teams; and __fish_seen_subcommand_from list" -l json -d 'Print JSON on stdout'
complete -c phs -n "__fish_phs_using_subcommand teams; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand teams; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand teams; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create a team and print its project API token on stdout'
complete -c phs -n "__fish_phs_using_subcommand teams; and __fish_seen_subcommand_from help" -f -a "list" -d 'List teams'
complete -c phs -n "__fish_phs_using_subcommand teams; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l database-url -d 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l data-dir -d 'Directory of the embedded stores (SQLite database, local ingestion log)' -r -F
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l redis-url -d 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l kafka-hosts -d 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l kafka-consumption-topic -d 'Topic of incoming events, as produced by capture' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l kafka-consumer-group -d 'Consumer group of the ingestion consumers; instances in one group share the partitions' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l kafka-prefix -d 'Prefix put before every topic name (lets several deployments or tests share a broker)' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l kafka-client-cert-b64 -d 'Client certificate (PEM), base64-encoded; enables TLS' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l kafka-client-cert-key-b64 -d 'Client certificate key (PEM), base64-encoded' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l kafka-trusted-cert-b64 -d 'Trusted CA certificate (PEM), base64-encoded' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l kafka-security-protocol -d 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given' -r -f -a "plaintext\t''
ssl\t''
sasl-plaintext\t''
sasl-ssl\t''"
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l kafka-sasl-mechanism -d 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l kafka-sasl-user -d 'SASL user name' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l kafka-sasl-password -d 'SASL password' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l kafka-producer-max-queue-size -d 'Producer: most messages in one batch to a partition (librdkafka\'s batch.num.messages). The original\'s 20 would make producing many times slower' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l kafka-flush-frequency-ms -d 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka\'s linger.ms); every capture request waits up to this long. The original\'s 500 would add half a second to each' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l kafka-max-message-batch-size -d 'Producer: largest batch in bytes to a partition (librdkafka\'s batch.size)' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l clickhouse-host -d 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l clickhouse-database -d 'ClickHouse database' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l clickhouse-user -d 'ClickHouse user name' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l clickhouse-password -d 'ClickHouse password' -r
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l clickhouse-secure -d 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme' -r -f -a "true\t''
false\t''"
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l clickhouse-ca -d 'CA certificate file (PEM) to trust for ClickHouse over https' -r -F
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -f -a "list" -d 'The latest events, newest first'
complete -c phs -n "__fish_phs_using_subcommand events; and not __fish_seen_subcommand_from list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c phs -n "__fish_phs_using_subcommand events; and __fish_seen_subcommand_from list" -l team -d 'Only this team (id)' -r
complete -c phs -n "__fish_phs_using_subcommand events; and __fish_seen_subcommand_from list" -l distinct-id -r
complete -c phs -n "__fish_phs_using_subcommand events; and __fish_seen_subcommand_from list" -l event -d 'Only events with this name' -r
complete -c phs -n "__fish_phs_using_subcommand events; and __fish_seen_subcommand_from list" -l limit -r
complete -c phs -n "__fish_phs_using_subcommand events; and __fish_seen_subcommand_from list" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand events; and __fish_seen_subcommand_from list" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand events; and __fish_seen_subcommand_from list" -l json -d 'One JSON object per line'
complete -c phs -n "__fish_phs_using_subcommand events; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand events; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand events; and __fish_seen_subcommand_from help" -f -a "list" -d 'The latest events, newest first'
complete -c phs -n "__fish_phs_using_subcommand events; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l database-url -d 'Postgres URL for teams, persons and plugins. Unset: SQLite in PHS_DATA_DIR' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l data-dir -d 'Directory of the embedded stores (SQLite database, local ingestion log)' -r -F
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l redis-url -d 'Redis URL for the plugin cache, locks and reload pub/sub. Unset: in-process' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l kafka-hosts -d 'Comma-separated Kafka bootstrap hosts (host:port). Unset: the local ingestion log' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l kafka-consumption-topic -d 'Topic of incoming events, as produced by capture' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l kafka-consumer-group -d 'Consumer group of the ingestion consumers; instances in one group share the partitions' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l kafka-prefix -d 'Prefix put before every topic name (lets several deployments or tests share a broker)' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l kafka-client-cert-b64 -d 'Client certificate (PEM), base64-encoded; enables TLS' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l kafka-client-cert-key-b64 -d 'Client certificate key (PEM), base64-encoded' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l kafka-trusted-cert-b64 -d 'Trusted CA certificate (PEM), base64-encoded' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l kafka-security-protocol -d 'Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: ssl when certificates are given' -r -f -a "plaintext\t''
ssl\t''
sasl-plaintext\t''
sasl-ssl\t''"
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l kafka-sasl-mechanism -d 'SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l kafka-sasl-user -d 'SASL user name' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l kafka-sasl-password -d 'SASL password' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l kafka-producer-max-queue-size -d 'Producer: most messages in one batch to a partition (librdkafka\'s batch.num.messages). The original\'s 20 would make producing many times slower' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l kafka-flush-frequency-ms -d 'Producer: longest wait for a batch to fill, in milliseconds (librdkafka\'s linger.ms); every capture request waits up to this long. The original\'s 500 would add half a second to each' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l kafka-max-message-batch-size -d 'Producer: largest batch in bytes to a partition (librdkafka\'s batch.size)' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l clickhouse-host -d 'ClickHouse host, as `host`, `host:port` or an http(s) URL (HTTP port 8123 by default). Unset: events in SQLite' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l clickhouse-database -d 'ClickHouse database' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l clickhouse-user -d 'ClickHouse user name' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l clickhouse-password -d 'ClickHouse password' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l clickhouse-secure -d 'Use https for ClickHouse when CLICKHOUSE_HOST has no scheme' -r -f -a "true\t''
false\t''"
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l clickhouse-ca -d 'CA certificate file (PEM) to trust for ClickHouse over https' -r -F
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -f -a "show" -d 'The person behind a distinct id; exits 1 when there is none'
complete -c phs -n "__fish_phs_using_subcommand persons; and not __fish_seen_subcommand_from show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c phs -n "__fish_phs_using_subcommand persons; and __fish_seen_subcommand_from show" -l team -d 'The team: id, API token or name' -r
complete -c phs -n "__fish_phs_using_subcommand persons; and __fish_seen_subcommand_from show" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand persons; and __fish_seen_subcommand_from show" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand persons; and __fish_seen_subcommand_from show" -l json -d 'Print JSON on stdout'
complete -c phs -n "__fish_phs_using_subcommand persons; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c phs -n "__fish_phs_using_subcommand persons; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand persons; and __fish_seen_subcommand_from help" -f -a "show" -d 'The person behind a distinct id; exits 1 when there is none'
complete -c phs -n "__fish_phs_using_subcommand persons; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c phs -n "__fish_phs_using_subcommand completions" -l log-level -d 'Minimum log level (`log` is an alias of `info`, as in the original)' -r -f -a "trace\t''
debug\t''
info\t''
log\t''
warn\t''
error\t''
none\t''"
complete -c phs -n "__fish_phs_using_subcommand completions" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c phs -n "__fish_phs_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c phs -n "__fish_phs_using_subcommand completions" -s V -l version -d 'Print version'
complete -c phs -n "__fish_phs_using_subcommand help; and not __fish_seen_subcommand_from serve migrate healthcheck replay plugins top teams events persons completions help" -f -a "serve" -d 'Run the plugin server: ingestion, plugins, scheduled tasks, jobs and the admin listener'
complete -c phs -n "__fish_phs_using_subcommand help; and not __fish_seen_subcommand_from serve migrate healthcheck replay plugins top teams events persons completions help" -f -a "migrate" -d 'Create or update tables (Postgres or SQLite, ClickHouse) and Kafka topics'
complete -c phs -n "__fish_phs_using_subcommand help; and not __fish_seen_subcommand_from serve migrate healthcheck replay plugins top teams events persons completions help" -f -a "healthcheck" -d 'Query a running instance\'s admin listener; exit 0 when healthy, 1 otherwise'
complete -c phs -n "__fish_phs_using_subcommand help; and not __fish_seen_subcommand_from serve migrate healthcheck replay plugins top teams events persons completions help" -f -a "replay" -d 'Re-run past events from the ingestion log (Kafka or local) through plugins'
complete -c phs -n "__fish_phs_using_subcommand help; and not __fish_seen_subcommand_from serve migrate healthcheck replay plugins top teams events persons completions help" -f -a "plugins" -d 'Manage Lua plugins and their per-team configs'
complete -c phs -n "__fish_phs_using_subcommand help; and not __fish_seen_subcommand_from serve migrate healthcheck replay plugins top teams events persons completions help" -f -a "top" -d 'Watch running instances: consumer lag, worker load, plugins and their errors'
complete -c phs -n "__fish_phs_using_subcommand help; and not __fish_seen_subcommand_from serve migrate healthcheck replay plugins top teams events persons completions help" -f -a "teams" -d 'Manage teams (projects): each has the API token SDKs send events with'
complete -c phs -n "__fish_phs_using_subcommand help; and not __fish_seen_subcommand_from serve migrate healthcheck replay plugins top teams events persons completions help" -f -a "events" -d 'Look at stored events'
complete -c phs -n "__fish_phs_using_subcommand help; and not __fish_seen_subcommand_from serve migrate healthcheck replay plugins top teams events persons completions help" -f -a "persons" -d 'Look at persons'
complete -c phs -n "__fish_phs_using_subcommand help; and not __fish_seen_subcommand_from serve migrate healthcheck replay plugins top teams events persons completions help" -f -a "completions" -d 'Print a shell completion script (or the man page) on stdout'
complete -c phs -n "__fish_phs_using_subcommand help; and not __fish_seen_subcommand_from serve migrate healthcheck replay plugins top teams events persons completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c phs -n "__fish_phs_using_subcommand help; and __fish_seen_subcommand_from plugins" -f -a "new" -d 'Scaffold a plugin folder: plugin.json, index.lua and tests/ fixtures'
complete -c phs -n "__fish_phs_using_subcommand help; and __fish_seen_subcommand_from plugins" -f -a "test" -d 'Run a plugin\'s fixtures, or the given events, through setupPlugin and processEvent'
complete -c phs -n "__fish_phs_using_subcommand help; and __fish_seen_subcommand_from plugins" -f -a "install" -d 'Install a plugin from a folder or a .zip/.tar.gz archive into the database'
complete -c phs -n "__fish_phs_using_subcommand help; and __fish_seen_subcommand_from plugins" -f -a "list" -d 'List installed plugins and their configs'
complete -c phs -n "__fish_phs_using_subcommand help; and __fish_seen_subcommand_from plugins" -f -a "enable" -d 'Enable a plugin for a team (also clears an automatic disable)'
complete -c phs -n "__fish_phs_using_subcommand help; and __fish_seen_subcommand_from plugins" -f -a "disable" -d 'Disable a plugin for a team'
complete -c phs -n "__fish_phs_using_subcommand help; and __fish_seen_subcommand_from plugins" -f -a "config" -d 'Show or set a plugin\'s config for a team (validated; secrets masked)'
complete -c phs -n "__fish_phs_using_subcommand help; and __fish_seen_subcommand_from plugins" -f -a "order" -d 'Show or set the order in which a team\'s plugins run'
complete -c phs -n "__fish_phs_using_subcommand help; and __fish_seen_subcommand_from plugins" -f -a "logs" -d 'Show a plugin config\'s log entries'
complete -c phs -n "__fish_phs_using_subcommand help; and __fish_seen_subcommand_from plugins" -f -a "reload" -d 'Ask every running instance to reload plugins'
complete -c phs -n "__fish_phs_using_subcommand help; and __fish_seen_subcommand_from plugins" -f -a "remove" -d 'Remove an installed plugin and its configs'
complete -c phs -n "__fish_phs_using_subcommand help; and __fish_seen_subcommand_from teams" -f -a "create" -d 'Create a team and print its project API token on stdout'
complete -c phs -n "__fish_phs_using_subcommand help; and __fish_seen_subcommand_from teams" -f -a "list" -d 'List teams'
complete -c phs -n "__fish_phs_using_subcommand help; and __fish_seen_subcommand_from events" -f -a "list" -d 'The latest events, newest first'
complete -c phs -n "__fish_phs_using_subcommand help; and __fish_seen_subcommand_from persons" -f -a "show" -d 'The person behind a distinct id; exits 1 when there is none'
