-- Queue Latency, from the plugin discussion that started PostHog plugins:
-- "Using PostHog to measure PostHog". Every minute a `latency test` event is
-- captured with the time it was emitted (emit_time, milliseconds since the
-- epoch); when ingestion runs it through processEvent, the time it spent
-- queued is added as latency_ms.

function runEveryMinute(meta)
  posthog.capture("latency test", { emit_time = math.floor(os.now() * 1000) })
end

function processEvent(event, meta)
  local props = event.properties
  if event.event == "latency test" and props ~= nil and type(props.emit_time) == "number" then
    props.latency_ms = math.max(0, math.floor(os.now() * 1000) - props.emit_time)
  end
  return event
end
