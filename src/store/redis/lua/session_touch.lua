-- A session's use that writes: checks a session and slides its idle timeout, in one
-- call; with ARGV[5] == '1' also lists every live session of the user (the devices
-- page). Other uses only read (redis/sessions.rs, touch_session): this runs when a write is
-- due (store::slide_due) or the session is past its absolute expiry.
-- KEYS[1] session hash P:{UID}:s:SID
-- KEYS[2] user hash    P:{UID}:u   (SID -> expiry ms, '@' -> the account's email)
-- KEYS[3] revoked access token P:{UID}:jti:JTI (only read when ARGV[4] == '1')
-- ARGV[1] SID   ARGV[2] now (ms)   ARGV[3] how often "last seen" (and the user hash's
-- entry) is written (ms)
-- ARGV[4] '1' to refuse when KEYS[3] exists   ARGV[5] '1' to list
-- ARGV[6] session key prefix P:{UID}:s:  (for the list; same hash tag, same slot)
-- slide(), record() and list() come from slide.lua and list.lua, prepended when loaded.
-- Returns false when there is no live session (or the account was closed: its user
-- hash has no email), else {kind, email, amr, t} (amr: the `o` field, '' for a password
-- alone; t: when it signed in) and, when listing, the list as a fifth item.
local h = redis.call('HMGET', KEYS[1], 'a', 'i', 's', 'k', 'o', 't')
if not h[1] then
  return false
end
local now = tonumber(ARGV[2])
local abs = tonumber(h[1])
if now >= abs then
  redis.call('DEL', KEYS[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return false
end
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then
  return false
end
local email = redis.call('HGET', KEYS[2], '@')
if not email then
  return false
end
local expiry = math.min(now + tonumber(h[2]), abs)
slide(KEYS[1], now, expiry)
local refresh = tonumber(ARGV[3])
if now - tonumber(h[3]) >= refresh then
  redis.call('HSET', KEYS[1], 's', now)
  record(KEYS[2], ARGV[1], now, math.min(expiry + refresh, abs))
end
local out = { h[4] or 'b', email, h[5] or '', h[6] or '0' }
if ARGV[5] == '1' then
  out[5] = list(KEYS[2], ARGV[6], now)
end
return out
