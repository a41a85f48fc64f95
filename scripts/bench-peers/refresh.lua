-- wrk: refresh-token grants on 8 chains (scripts/bench --peers). Each connection sends
-- a refresh grant with a token from the pool and puts the rotated token its answer
-- carries back into the pool (wrk runs a connection's response() before building its
-- next request, so tokens in the pool + in flight stay one per chain).
-- Environment: BENCH_REFRESH_TOKENS  a file, one refresh token a line (one per chain)
--              BENCH_BASIC           base64 of client_id:client_secret
-- Prints "refreshed N broken B id_tokens I" (B: answers without a new token, each
-- ending a chain; I: answers that also carried an id_token, a second signature).
-- One wrk thread (-t1): the chains are not shared out between threads. wrk calls
-- request() once on the first thread before the run, only to check it (that request is
-- never sent), so that call does not take a token from the pool.
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  if #threads > 1 then error("refresh.lua runs with one wrk thread (-t1)") end
  thread:set("checking", true)
end

function init(args)
  pool = {}
  for line in io.lines(os.getenv("BENCH_REFRESH_TOKENS")) do pool[#pool + 1] = line end
  headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC"),
  }
  refreshed, broken, id_tokens = 0, 0, 0
end

function request()
  local token
  if checking then
    checking, token = false, pool[1]
  else
    token = table.remove(pool, 1) or "no-token-left"
  end
  return wrk.format("POST", "/oauth2/token", headers, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  local token = status == 200 and body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if token then
    pool[#pool + 1] = token
    refreshed = refreshed + 1
    if body:find('"id_token"', 1, true) then id_tokens = id_tokens + 1 end
  else
    broken = broken + 1
  end
end

function done(summary, latency, requests)
  local r, b, i = 0, 0, 0
  for _, t in ipairs(threads) do
    r = r + t:get("refreshed"); b = b + t:get("broken"); i = i + t:get("id_tokens")
  end
  io.write(string.format("refreshed %d broken %d id_tokens %d\n", r, b, i))
end
