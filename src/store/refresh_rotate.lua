-- Rotates an API session's refresh secret, or detects the reuse of an old one.
-- KEYS[1] session hash P:{u:UID}:s:SID   KEYS[2] user index P:{u:UID}:sessions
-- ARGV[1] SID   ARGV[2] now (ms)   ARGV[3] hash of the presented secret
-- ARGV[4] hash of the new secret   ARGV[5] how many earlier hashes to remember
-- slide() comes from slide.lua, prepended when the script is loaded.
-- Returns {1, uid} when rotated, -1 when an earlier secret was replayed (the session
-- is ended: theft detection), 0 when there is no such session or secret.
local h = redis.call('HMGET', KEYS[1], 'uid', 'kind', 'rth', 'rtp', 'abs', 'idle')
if not h[1] or h[2] ~= 'api' then
  return 0
end
local now = tonumber(ARGV[2])
local abs = tonumber(h[5])
if now >= abs then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
if h[3] == ARGV[3] then
  local earlier = ARGV[3]
  local count = 1
  for old in string.gmatch(h[4] or '', '%S+') do
    if count >= tonumber(ARGV[5]) then
      break
    end
    earlier = earlier .. ' ' .. old
    count = count + 1
  end
  redis.call('HSET', KEYS[1], 'rth', ARGV[4], 'rtp', earlier, 'seen', now)
  slide(KEYS[1], KEYS[2], ARGV[1], now, math.min(now + tonumber(h[6]), abs))
  return { 1, h[1] }
end
for old in string.gmatch(h[4] or '', '%S+') do
  if old == ARGV[3] then
    redis.call('DEL', KEYS[1])
    redis.call('ZREM', KEYS[2], ARGV[1])
    return -1
  end
end
return 0
