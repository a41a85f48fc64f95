-- The hot path: checks a session and slides its idle timeout, in one call.
-- KEYS[1] session hash   P:{u:UID}:s:SID
-- KEYS[2] user index     P:{u:UID}:sessions
-- KEYS[3] revoked access token P:{u:UID}:jti:JTI (only read when ARGV[4] == '1')
-- ARGV[1] SID   ARGV[2] now (ms)   ARGV[3] how often "last seen" is written (ms)
-- ARGV[4] '1' to refuse when KEYS[3] exists
-- slide() comes from slide.lua, prepended when the script is loaded.
-- Returns false when there is no live session, else {uid, kind, csrf}.
local h = redis.call('HMGET', KEYS[1], 'uid', 'kind', 'csrf', 'abs', 'idle', 'seen')
if not h[1] then
  return false
end
local now = tonumber(ARGV[2])
local abs = tonumber(h[4])
if now >= abs then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return false
end
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then
  return false
end
slide(KEYS[1], KEYS[2], ARGV[1], now, math.min(now + tonumber(h[5]), abs))
if now - tonumber(h[6]) >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'seen', now)
end
return { h[1], h[2], h[3] or '' }
