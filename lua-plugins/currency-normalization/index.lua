-- Currency normalization, as PostHog's plugin does it: convert
-- properties[amountProperty] from properties[currencyProperty] into
-- normalizedCurrency, with USD-based rates fetched at most once a day and
-- kept in meta.cache, so every instance and event shares one fetch.

local ONE_DAY = 24 * 60 * 60

local function fetch_rates(config)
  local url = config.ratesUrl .. "?app_id=" .. config.openExchangeRatesApiKey
  local response = fetch(url)
  if response.status ~= 200 then
    error("fetching currency rates failed: HTTP " .. response.status)
  end
  local body = response:json()
  if type(body) ~= "table" or type(body.rates) ~= "table" then
    error("fetching currency rates failed: the answer has no `rates`")
  end
  return body.rates
end

local function rates(meta)
  local cached = meta.cache:get("currency_rates")
  if cached then
    return cached
  end
  local fresh = fetch_rates(meta.config)
  meta.cache:set("currency_rates", fresh, ONE_DAY)
  return fresh
end

local function round(x, digits)
  local m = 10 ^ digits
  return math.floor(x * m + 0.5) / m
end

function processEvent(event, meta)
  local c, props = meta.config, event.properties
  if type(props) ~= "table" then
    return event
  end
  local amount, currency = tonumber(props[c.amountProperty]), props[c.currencyProperty]
  if amount == nil or type(currency) ~= "string" then
    return event
  end
  currency = currency:upper()
  local target = c.normalizedCurrency:upper()
  local converted = amount
  if currency ~= target then
    local r = rates(meta)
    if not r[currency] or not r[target] then
      console.warn("no exchange rate for " .. (r[currency] and target or currency) .. "; left unconverted")
      return event
    end
    -- The rates are per US dollar.
    converted = amount / r[currency] * r[target]
  end
  props[c.normalizedAmountProperty] = round(converted, 4)
  props[c.normalizedCurrencyProperty] = target
  return event
end
