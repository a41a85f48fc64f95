-- Ends one session of a user. The keys are built from the signed-in user's id,
-- so another user's SID names a hash that does not exist here.
-- KEYS[1] session hash P:{UID}:s:SID   KEYS[2] user hash P:{UID}:u
-- ARGV[1] SID
-- Returns 1 when a session was ended, 0 when there was none.
local n = redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return n
