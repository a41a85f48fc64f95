-- Ends an API session and marks its access token revoked until the token expires.
-- KEYS[1] session hash P:{UID}:s:SID   KEYS[2] user hash P:{UID}:u
-- KEYS[3] P:{UID}:jti:JTI
-- ARGV[1] SID   ARGV[2] milliseconds until the access token expires
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[3], 1, 'PX', ARGV[2])
end
local n = redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return n
