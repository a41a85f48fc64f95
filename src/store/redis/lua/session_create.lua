-- Creates a session, prunes the user hash and ends what must go to make room under
-- the caps, all in one step.
-- KEYS[1] session hash      P:{UID}:s:SID
-- KEYS[2] user hash         P:{UID}:u   (SID -> expiry ms, '@' -> email)
-- KEYS[3] password version  P:{UID}:pwv
-- ARGV[1] SID   ARGV[2] now (ms)   ARGV[3] expiry (ms)
-- ARGV[4] browser and API sessions a user may have at once
-- ARGV[5] password version the credentials were checked against
-- ARGV[6] session key prefix P:{UID}:s:  (same hash tag, same slot)
-- ARGV[7] the account's email   ARGV[8] how often "last seen" is written (ms)
-- ARGV[9] absolute expiry (ms)
-- ARGV[10] the app's client id for an app session, '' for a browser or API session
-- ARGV[11] sessions of one app a user may have at once
-- ARGV[12..] field, value pairs of the new hash
-- slide() and record() come from slide.lua, prepended when the script is loaded.
-- An app session counts only with that app's own sessions (the oldest ends first); a
-- browser or API session only with the browser and API sessions (the least recently
-- seen ends first): an app never pushes the user's devices out, nor they an app.
-- Returns -1 when the password changed (or the account was closed) after the
-- credentials were checked: the sign-in is stale. Else the SIDs ended to make room.
local pwv = redis.call('GET', KEYS[3])
if pwv and tonumber(pwv) > tonumber(ARGV[5]) then
  return -1
end
local now = tonumber(ARGV[2])
local app = ARGV[10]
local max = tonumber(ARGV[4])
if app ~= '' then
  max = tonumber(ARGV[11])
end
local live = {}
local entries = redis.call('HGETALL', KEYS[2])
for i = 1, #entries, 2 do
  local sid = entries[i]
  if sid ~= '@' then
    if tonumber(entries[i + 1]) <= now then
      redis.call('HDEL', KEYS[2], sid)
    else
      live[#live + 1] = sid
    end
  end
end
local evicted = {}
if #live >= max then
  -- The sessions this one counts with, and when each ranks for eviction.
  local rivals = {}
  for _, sid in ipairs(live) do
    local h = redis.call('HMGET', ARGV[6] .. sid, 'k', 'c', 't', 's')
    if not h[4] then
      redis.call('HDEL', KEYS[2], sid)
    elseif app ~= '' and h[2] == app then
      rivals[#rivals + 1] = { sid, tonumber(h[3]) }
    elseif app == '' and h[1] ~= 'o' then
      rivals[#rivals + 1] = { sid, tonumber(h[4]) }
    end
  end
  table.sort(rivals, function(a, b) return a[2] < b[2] end)
  local count = #rivals
  local i = 1
  while count >= max do
    local sid = rivals[i][1]
    redis.call('DEL', ARGV[6] .. sid)
    redis.call('HDEL', KEYS[2], sid)
    evicted[#evicted + 1] = sid
    count = count - 1
    i = i + 1
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 12))
redis.call('HSET', KEYS[2], '@', ARGV[7])
local expiry = tonumber(ARGV[3])
slide(KEYS[1], now, expiry)
record(KEYS[2], ARGV[1], now, math.min(expiry + tonumber(ARGV[8]), tonumber(ARGV[9])))
return evicted
