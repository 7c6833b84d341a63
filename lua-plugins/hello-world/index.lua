-- Hello World: adds a `hello` property to every event and drops the events
-- named in the config. Hooks are plain global functions; `meta` is always
-- the last argument, as in PostHog's JavaScript plugins.

-- Runs once, before the first event. meta.global keeps state between calls.
function setupPlugin(meta)
  meta.global.greeting = meta.config.greeting
end

-- Return the event (changed or not) to keep it, or nil to drop it.
function processEvent(event, meta)
  if meta.config.drop_event and event.event == meta.config.drop_event then
    return nil
  end
  event.properties = event.properties or {}
  event.properties.hello = meta.global.greeting
  return event
end
