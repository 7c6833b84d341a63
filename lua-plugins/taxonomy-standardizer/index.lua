-- Taxonomy Standardizer: a Lua version of PostHog's taxonomy-plugin.
--
-- An event name is split into words on spaces, `_`, `-` and camelCase
-- boundaries (`userSignedUp`, `HTMLForm`, `step2Done`), then the words are
-- joined in the configured convention. Names starting with `$` (PostHog's
-- own events) and the survey events are left alone.

local SKIPPED_EVENTS = {
  ["survey shown"] = true,
  ["survey sent"] = true,
  ["survey dismissed"] = true,
}

local function capitalize(word)
  return word:sub(1, 1):upper() .. word:sub(2)
end

local function join(words, sep, first, rest)
  local out = {}
  for i, w in ipairs(words) do
    out[i] = (i == 1 and first or rest)(w)
  end
  return table.concat(out, sep)
end

-- Words are already lowercase.
local function keep(word)
  return word
end

local CONVENTIONS = {
  ["camelCase"] = function(words) return join(words, "", keep, capitalize) end,
  ["PascalCase"] = function(words) return join(words, "", capitalize, capitalize) end,
  ["snake_case"] = function(words) return table.concat(words, "_") end,
  ["kebab-case"] = function(words) return table.concat(words, "-") end,
  ["spaces in between"] = function(words) return table.concat(words, " ") end,
}

-- The lowercased words of a name.
local function split_words(name)
  local words = {}
  for chunk in name:gmatch("[^%s_%-]+") do
    chunk = chunk:gsub("(%l)(%u)", "%1 %2")    -- userSignedUp -> user Signed Up
    chunk = chunk:gsub("(%d)(%u)", "%1 %2")    -- step2Done -> step2 Done
    chunk = chunk:gsub("(%u)(%u%l)", "%1 %2")  -- HTMLForm -> HTML Form
    for w in chunk:gmatch("%S+") do
      words[#words + 1] = w:lower()
    end
  end
  return words
end

local function standardize(name, convention)
  local words = split_words(name)
  if #words == 0 then
    return name
  end
  return (CONVENTIONS[convention] or CONVENTIONS.camelCase)(words)
end

function setupPlugin(meta)
  local convention = meta.config.defaultNamingConvention
  if not CONVENTIONS[convention] then
    convention = "camelCase"
  end
  meta.global.convention = convention
end

function processEvent(event, meta)
  if type(event) ~= "table" then
    return event
  end
  local name = event.event
  if type(name) ~= "string" or name:sub(1, 1) == "$" or SKIPPED_EVENTS[name] then
    return event
  end
  event.event = standardize(name, meta.global.convention or "camelCase")
  return event
end
