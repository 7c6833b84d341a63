-- Property Flattener: a Lua version of PostHog's property-flattener-plugin.
--
-- {"a": {"b": {"c": 1}}} keeps `a` and gains "a__b__c": 1. Array elements are
-- flattened by their 0-based index ("list__0"), as the original did. The
-- nested values are kept, and a flattened key replaces a property that
-- already has the same name.

-- Events whose properties would flatten into very many keys.
local SKIPPED_EVENTS = {
  ["$autocapture"] = true,
  ["organization usage report"] = true,
}

-- Internal properties that are never flattened, at any depth.
local SKIPPED_PROPERTIES = {
  ["$elements"] = true,
  ["$elements_chain"] = true,
  ["$groups"] = true,
  ["$active_feature_flags"] = true,
  ["$heatmap_data"] = true,
  ["$web_vitals_data"] = true,
}

-- Person and group updates: flattened inside, with unprefixed keys.
local PERSON_PROPERTIES = {
  ["$set"] = true,
  ["$set_once"] = true,
  ["$group_set"] = true,
}

local SEPARATORS = { ["__"] = true, ["."] = true, [">"] = true, ["/"] = true }

-- JSON arrays arrive as tables carrying the runtime's (protected) array
-- metatable; getmetatable returns the same value for every one of them.
local ARRAY_MT = getmetatable(json.decode("[]"))

local function is_array(t)
  if ARRAY_MT ~= nil and getmetatable(t) == ARRAY_MT then
    return true
  end
  -- A sequence built in Lua: keys 1..n and nothing else.
  local n = #t
  if n == 0 then
    return false
  end
  local count = 0
  for _ in pairs(t) do
    count = count + 1
  end
  return count == n
end

local function is_empty(t)
  return next(t) == nil
end

-- Adds to `out` one key per leaf under `value`, named prefix..sep..path.
local function flatten_into(out, prefix, value, sep)
  local entries = {}
  if is_array(value) then
    for i = 1, #value do
      entries[#entries + 1] = { tostring(i - 1), value[i] }
    end
  else
    for k, v in pairs(value) do
      entries[#entries + 1] = { tostring(k), v }
    end
  end
  for _, entry in ipairs(entries) do
    local key, v = entry[1], entry[2]
    if not SKIPPED_PROPERTIES[key] then
      local name = prefix .. sep .. key
      if type(v) == "table" and not is_empty(v) then
        flatten_into(out, name, v, sep)
      else
        -- Scalars, null, and empty objects or arrays are copied as they are.
        out[name] = v
      end
    end
  end
end

-- Returns `props` with the flattened keys added.
local function flatten_properties(props, sep)
  local added = {}
  for key, value in pairs(props) do
    if type(key) == "string" and SKIPPED_PROPERTIES[key] then
      -- left as it is
    elseif PERSON_PROPERTIES[key] then
      if type(value) == "table" and not is_array(value) then
        added[key] = flatten_properties(value, sep)
      end
    elseif type(value) == "table" and not is_empty(value) then
      flatten_into(added, tostring(key), value, sep)
    end
  end
  for k, v in pairs(added) do
    props[k] = v
  end
  return props
end

function setupPlugin(meta)
  local sep = meta.config.separator
  if type(sep) ~= "string" or not SEPARATORS[sep] then
    sep = "__"
  end
  meta.global.separator = sep
end

function processEvent(event, meta)
  if type(event) ~= "table" or SKIPPED_EVENTS[event.event] then
    return event
  end
  local props = event.properties
  if type(props) ~= "table" or is_array(props) then
    return event
  end
  flatten_properties(props, meta.global.separator or "__")
  return event
end
