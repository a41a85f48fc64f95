-- wrk: full authorization code flows (scripts/bench --peers). A connection asks the
-- authorization endpoint with a signed-in browser's cookie (consent remembered: the
-- answer is a redirect with a code), then exchanges a code at the token endpoint with
-- its PKCE verifier and client_secret_basic; codes wait in a pool in between.
-- Environment: BENCH_AUTHORIZE  path and query of the authorization request, without
--                               state and nonce (added per request)
--              BENCH_COOKIES    a file: the Cookie header of one signed-in browser a
--                               line, each a different user
--              BENCH_BASIC      base64 of client_id:client_secret
--              BENCH_REDIRECT   the redirect URI, percent-encoded
--              BENCH_VERIFIER   the PKCE code verifier
--              BENCH_BROWSER    a file holding the number of the browser to start with
--                               (1 when missing); the run writes the one it ended with,
--                               so the next run does not go through spent browsers again
-- The browsers are used one after the other: when an authorization request is sent to
-- sign in instead (its browser session has ended), the next browser takes over. Each
-- request's state names its browser ("u" index "x" count), and the redirect carries the
-- state back (to the app, or inside the sign-in page's next), so a browser is given up
-- once however many requests were in flight with it.
-- Prints "flows F lost L failed X browsers B" (F: token answers with an id_token; L:
-- authorization answers without a code; X: token answers without an id_token; B: the
-- browser it ended with).
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  if #threads > 1 then error("codeflow.lua runs with one wrk thread (-t1)") end
end

function init(args)
  codes, cookies = {}, {}
  for line in io.lines(os.getenv("BENCH_COOKIES")) do cookies[#cookies + 1] = line end
  local state = io.open(os.getenv("BENCH_BROWSER"))
  current = state and tonumber(state:read("*l") or "") or 1
  if state then state:close() end
  n = 0
  flows, lost, failed = 0, 0, 0
  authorize = os.getenv("BENCH_AUTHORIZE")
  app = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC"),
  }
  exchange = "grant_type=authorization_code&redirect_uri=" .. os.getenv("BENCH_REDIRECT")
    .. "&code_verifier=" .. os.getenv("BENCH_VERIFIER") .. "&code="
end

function request()
  local code = table.remove(codes)
  if code then
    return wrk.format("POST", "/oauth2/token", app, exchange .. code)
  end
  n = n + 1
  return wrk.format("GET", authorize .. "&state=u" .. current .. "x" .. n .. "&nonce=n" .. n,
    { ["Cookie"] = cookies[current] })
end

function response(status, headers, body)
  if status >= 300 and status < 400 then
    local location = headers["Location"] or headers["location"] or ""
    local code = location:match("[?&]code=([^&]+)")
    if code then
      codes[#codes + 1] = code
    else
      lost = lost + 1
      local browser = tonumber(location:match("state=u(%d+)x") or location:match("state%%3[Dd]u(%d+)x") or "")
      if browser == current and current < #cookies then current = current + 1 end
    end
  elseif status == 200 and body:find('"id_token"', 1, true) then
    flows = flows + 1
  else
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local f, l, x, b = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    f = f + t:get("flows"); l = l + t:get("lost"); x = x + t:get("failed"); b = b + t:get("current")
  end
  local state = io.open(os.getenv("BENCH_BROWSER"), "w")
  state:write(b, "\n")
  state:close()
  io.write(string.format("flows %d lost %d failed %d browsers %d\n", f, l, x, b))
end
