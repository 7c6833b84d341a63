"""Sends a signup story to phs with PostHog's own Python SDK (`posthog` on PyPI).

Usage: python_client.py HOST API_KEY. Exits 1 if the SDK reports an error.
"""
import sys

from posthog import Posthog

host, api_key = sys.argv[1], sys.argv[2]
errors = []
client = Posthog(
    api_key,
    host=host,
    gzip=True,
    sync_mode=True,
    disable_geoip=True,
    max_retries=0,
    enable_local_evaluation=False,
    on_error=lambda error, batch: errors.append(error),
)
client.capture("signed_up", distinct_id="py-anon", properties={"plan": "pro", "$set": {"source": "python"}})
client.alias(previous_id="py-anon", distinct_id="py-user")
client.set(distinct_id="py-user", properties={"email": "py@example.com"})
client.group_identify("company", "acme", {"name": "Acme"}, distinct_id="py-user")
client.capture("ordered", distinct_id="py-user", properties={"total": 42}, groups={"company": "acme"})
client.shutdown()
if errors:
    print("posthog reported errors:", errors, file=sys.stderr)
    sys.exit(1)
