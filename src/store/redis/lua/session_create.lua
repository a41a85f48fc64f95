-- Creates a session, prunes the user hash and ends the least recently used sessions
-- past the cap, all in one step.
-- KEYS[1] session hash      P:{UID}:s:SID
-- KEYS[2] user hash         P:{UID}:u   (SID -> expiry ms, '@' -> email)
-- KEYS[3] password version  P:{UID}:pwv
-- ARGV[1] SID   ARGV[2] now (ms)   ARGV[3] expiry (ms)   ARGV[4] max sessions
-- ARGV[5] password version the credentials were checked against
-- ARGV[6] session key prefix P:{UID}:s:  (same hash tag, same slot)
-- ARGV[7] the account's email   ARGV[8] how often "last seen" is written (ms)
-- ARGV[9] absolute expiry (ms)   ARGV[10..] field, value pairs of the new hash
-- slide() and record() come from slide.lua, prepended when the script is loaded.
-- Returns -1 when the password changed (or the account was closed) after the
-- credentials were checked: the sign-in is stale. Else the SIDs ended to make room.
local pwv = redis.call('GET', KEYS[3])
if pwv and tonumber(pwv) > tonumber(ARGV[5]) then
  return -1
end
local now = tonumber(ARGV[2])
local max = tonumber(ARGV[4])
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
  local seen = {}
  for _, sid in ipairs(live) do
    local s = redis.call('HGET', ARGV[6] .. sid, 's')
    if s then
      seen[#seen + 1] = { sid, tonumber(s) }
    else
      redis.call('HDEL', KEYS[2], sid)
    end
  end
  table.sort(seen, function(a, b) return a[2] < b[2] end)
  local count = #seen
  local i = 1
  while count >= max do
    local sid = seen[i][1]
    redis.call('DEL', ARGV[6] .. sid)
    redis.call('HDEL', KEYS[2], sid)
    evicted[#evicted + 1] = sid
    count = count - 1
    i = i + 1
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 10))
redis.call('HSET', KEYS[2], '@', ARGV[7])
local expiry = tonumber(ARGV[3])
slide(KEYS[1], now, expiry)
record(KEYS[2], ARGV[1], now, math.min(expiry + tonumber(ARGV[8]), tonumber(ARGV[9])))
return evicted
