-- GeoIP enrichment, as PostHog's GeoIP plugin does it: look the event's IP
-- up in the server's MaxMind database (meta.geoip) and copy the result into
-- $geoip_* properties, $set and $set_once ($initial_geoip_*).

local function english(record)
  return record and record.names and record.names.en
end

-- The location fields of a City record, by the name they take after `$geoip_`.
local function location_of(r)
  local out = {}
  if r.city then out.city_name = english(r.city) end
  if r.country then
    out.country_name = english(r.country)
    out.country_code = r.country.iso_code
  end
  if r.continent then
    out.continent_name = english(r.continent)
    out.continent_code = r.continent.code
  end
  if r.postal then out.postal_code = r.postal.code end
  if r.location then
    out.latitude = r.location.latitude
    out.longitude = r.location.longitude
    out.time_zone = r.location.time_zone
  end
  for i, sub in ipairs(r.subdivisions or {}) do
    out["subdivision_" .. i .. "_code"] = sub.iso_code
    out["subdivision_" .. i .. "_name"] = english(sub)
  end
  return out
end

function processEvent(event, meta)
  local props = event.properties or {}
  local ip = props["$ip"] or event.ip
  if type(ip) ~= "string" or ip == "" or props["$geoip_disable"] then
    return event
  end
  local record = meta.geoip.locate(ip)
  if not record then
    return event
  end
  event.properties = props
  props["$set"] = props["$set"] or {}
  props["$set_once"] = props["$set_once"] or {}
  for key, value in pairs(location_of(record)) do
    props["$geoip_" .. key] = value
    props["$set"]["$geoip_" .. key] = value
    props["$set_once"]["$initial_geoip_" .. key] = value
  end
  return event
end
