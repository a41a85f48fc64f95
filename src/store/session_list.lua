-- Lists a user's live sessions, pruning expired index members.
-- KEYS[1] user index P:{u:UID}:sessions
-- ARGV[1] now (ms)   ARGV[2] session key prefix P:{u:UID}:s:
-- Returns {sid1, {field, value, ...}, sid2, {...}, ...}.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local out = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local h = redis.call('HGETALL', ARGV[2] .. sid)
  if #h == 0 then
    redis.call('ZREM', KEYS[1], sid)
  else
    out[#out + 1] = sid
    out[#out + 1] = h
  end
end
return out
