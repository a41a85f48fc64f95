-- Rotates an API or app session's refresh secret, answers a retry of the previous
-- secret within the grace window, or detects the reuse of an older one.
-- KEYS[1] session hash P:{UID}:s:SID   KEYS[2] user hash P:{UID}:u
-- ARGV[1] SID   ARGV[2] now (ms)   ARGV[3] hash of the presented secret
-- ARGV[4] hash of its successor (derived from the presented secret by the caller, so
-- a retry of the same secret names the same successor)
-- ARGV[5] how many earlier hashes to remember (n)
-- ARGV[6] how often "last seen" is written (ms): `s` is written here, so the user
-- hash's entry is too
-- ARGV[7] the grace window (ms; 0: none)
-- The current hash is field r, the earlier ones p1 (the latest) .. pn, and g the time
-- r became current: one value per field, so every field stays within
-- hash-max-listpack-value.
-- slide() and record() come from slide.lua, prepended when the script is loaded.
-- Returns 1 when rotated; 2 when the previous secret (p1) came again within the
-- window after its rotation and its successor is still current (nothing changes but
-- the expiry: the caller answers that same successor); -1 when an earlier secret was
-- replayed, or the previous one after the window (the session is ended: theft
-- detection); 0 when there is no such session or secret.
local n = tonumber(ARGV[5])
local fields = { 'k', 'r', 'a', 'i', 'g' }
for j = 1, n do
  fields[#fields + 1] = 'p' .. j
end
local h = redis.call('HMGET', KEYS[1], unpack(fields))
if (h[1] ~= 'a' and h[1] ~= 'o') or redis.call('HEXISTS', KEYS[2], '@') == 0 then
  return 0
end
local now = tonumber(ARGV[2])
local abs = tonumber(h[3])
if now >= abs then
  redis.call('DEL', KEYS[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 0
end
local function keep_alive()
  local expiry = math.min(now + tonumber(h[4]), abs)
  slide(KEYS[1], now, expiry)
  record(KEYS[2], ARGV[1], now, math.min(expiry + tonumber(ARGV[6]), abs))
end
if h[2] == ARGV[3] then
  local set = { 'r', ARGV[4], 'g', now, 's', now, 'p1', ARGV[3] }
  for j = 2, n do
    local earlier = h[5 + j - 1]
    if earlier then
      set[#set + 1] = 'p' .. j
      set[#set + 1] = earlier
    end
  end
  redis.call('HSET', KEYS[1], unpack(set))
  keep_alive()
  return 1
end
if h[6] == ARGV[3] and h[5] and now - tonumber(h[5]) < tonumber(ARGV[7]) then
  if h[2] ~= ARGV[4] then
    -- Not the successor this secret derives (the derivation key changed): refused,
    -- but no sign of theft.
    return 0
  end
  redis.call('HSET', KEYS[1], 's', now)
  keep_alive()
  return 2
end
for j = 1, n do
  if h[5 + j] == ARGV[3] then
    redis.call('DEL', KEYS[1])
    redis.call('HDEL', KEYS[2], ARGV[1])
    return -1
  end
end
return 0
