-- Creates a session, prunes the user's index and ends the least recently used
-- sessions past the cap, all in one step.
-- KEYS[1] session hash      P:{u:UID}:s:SID
-- KEYS[2] user index        P:{u:UID}:sessions   (SID -> expiry ms)
-- KEYS[3] password version  P:{u:UID}:pwv
-- ARGV[1] SID   ARGV[2] now (ms)   ARGV[3] expiry (ms)   ARGV[4] max sessions
-- ARGV[5] password version the credentials were checked against
-- ARGV[6] session key prefix P:{u:UID}:s:  (same hash tag, same slot)
-- ARGV[7..] field, value pairs of the new hash
-- slide() comes from slide.lua, prepended when the script is loaded.
-- Returns -1 when the password changed after it was checked (the sign-in is stale),
-- else the list of SIDs ended to make room.
local pwv = redis.call('GET', KEYS[3])
if pwv and tonumber(pwv) > tonumber(ARGV[5]) then
  return -1
end
local now = tonumber(ARGV[2])
local expiry = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local evicted = {}
local max = tonumber(ARGV[4])
local members = redis.call('ZRANGE', KEYS[2], 0, -1)
if #members >= max then
  local live = {}
  for _, sid in ipairs(members) do
    local seen = redis.call('HGET', ARGV[6] .. sid, 'seen')
    if seen then
      live[#live + 1] = { sid, tonumber(seen) }
    else
      redis.call('ZREM', KEYS[2], sid)
    end
  end
  table.sort(live, function(a, b) return a[2] < b[2] end)
  local count = #live
  local i = 1
  while count >= max do
    local sid = live[i][1]
    redis.call('DEL', ARGV[6] .. sid)
    redis.call('ZREM', KEYS[2], sid)
    evicted[#evicted + 1] = sid
    count = count - 1
    i = i + 1
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
slide(KEYS[1], KEYS[2], ARGV[1], now, expiry)
return evicted
