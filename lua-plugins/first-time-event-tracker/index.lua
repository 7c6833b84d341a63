-- First Time Event Tracker: a Lua version of PostHog's first-time-event-tracker.
--
-- For the events named in the config, sets `is_first_event_ever` (first for
-- the team) and `is_first_event_for_user` (first for this distinct_id).
-- What has been seen is kept in meta.storage:
--   seen:<event>                  the event happened at least once
--   seen:<event>:<distinct_id>    this user did it at least once
-- Other events pass through unchanged.

function setupPlugin(meta)
  local tracked = {}
  local events = meta.config.events
  if type(events) == "string" then
    for name in events:gmatch("[^,]+") do
      name = name:match("^%s*(.-)%s*$")
      if name ~= "" then
        tracked[name] = true
      end
    end
  end
  if next(tracked) == nil then
    console.warn("no events to track: set `events` to a comma-separated list of event names")
  end
  meta.global.tracked = tracked
end

-- True when this call is the first to see `key`. A key that is already set
-- costs one read; an unset one is claimed with the atomic cursor increment,
-- so two events processed at the same time cannot both be the first.
local function first_time(meta, key)
  if meta.storage.get(key) ~= nil then
    return false
  end
  return meta.utils.cursor.increment(key, 1) == 1
end

-- distinct_id as a string, or nil when there is none.
local function distinct_id_of(event)
  local id = event.distinct_id
  if type(id) == "string" and id ~= "" then
    return id
  elseif type(id) == "number" then
    return tostring(id)
  end
  return nil
end

function processEvent(event, meta)
  if type(event) ~= "table" then
    return event
  end
  local name = event.event
  local tracked = meta.global.tracked or {}
  if type(name) ~= "string" or not tracked[name] then
    return event
  end
  local props = event.properties
  if props == nil or type(props) == "userdata" then -- missing, or JSON null
    props = {}
    event.properties = props
  elseif type(props) ~= "table" then
    return event
  end

  props.is_first_event_ever = first_time(meta, "seen:" .. name)
  local id = distinct_id_of(event)
  if id then
    props.is_first_event_for_user = first_time(meta, "seen:" .. name .. ":" .. id)
  end
  return event
end
