-- GitHub Star Sync: a scheduled importer. Every minute it reads the
-- repository's stargazers (oldest first, with starred_at) and captures a
-- `github star` event for each star newer than the newest one seen, which
-- it remembers in meta.cache. The task runs on one instance at a time, so
-- a star is not imported twice by two servers.

local PER_PAGE = 100
local MAX_PAGES = 10

local function get_page(meta, page)
  local headers = {
    Accept = "application/vnd.github.star+json",
    ["User-Agent"] = "phs-github-star-sync",
  }
  if meta.config.token ~= nil and meta.config.token ~= "" then
    headers.Authorization = "token " .. meta.config.token
  end
  local url = string.format("%s/repos/%s/stargazers?per_page=%d&page=%d",
    meta.config.api_url, meta.config.repo, PER_PAGE, page)
  local res = fetch(url, { headers = headers })
  if res.status ~= 200 then
    error(string.format("GitHub answered %d for %s: %s", res.status, meta.config.repo, string.sub(res.body or "", 1, 200)))
  end
  return res:json()
end

function runEveryMinute(meta)
  local last = meta.cache:get("last_starred_at", "")
  local newest = last
  for page = 1, MAX_PAGES do
    local stars = get_page(meta, page)
    for _, star in ipairs(stars) do
      -- RFC 3339 times in UTC compare correctly as strings.
      if star.starred_at > last then
        posthog.capture("github star", {
          distinct_id = star.user.login,
          repo = meta.config.repo,
          starred_at = star.starred_at,
          ["$set"] = { github_login = star.user.login },
        })
        if star.starred_at > newest then newest = star.starred_at end
      end
    end
    if #stars < PER_PAGE then break end
  end
  meta.cache:set("last_starred_at", newest)
end
