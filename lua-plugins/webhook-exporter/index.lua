-- Webhook Exporter: exportEvents POSTs each batch as {"batch": [...]}.
-- A busy (429) or failing (5xx) endpoint, or one that cannot be reached,
-- raises RetryError: the server sends the batch again after 6, 12 and 24 s.
-- Any other refusal (4xx) is an error: retrying would not help.

function exportEvents(events, meta)
  local headers = { ["Content-Type"] = "application/json" }
  local auth = meta.config.authorization
  if auth ~= nil and auth ~= "" then
    headers["Authorization"] = auth
  end
  local ok, res = pcall(fetch, meta.config.url, {
    method = "POST",
    headers = headers,
    body = json.encode({ batch = events }),
  })
  if not ok then
    error(RetryError("the webhook could not be reached: " .. tostring(res)))
  end
  if res.status == 429 or res.status >= 500 then
    error(RetryError("the webhook answered " .. res.status))
  end
  if res.status >= 400 then
    error("the webhook refused the batch with status " .. res.status .. ": " .. string.sub(res.body or "", 1, 200))
  end
end
