-- Ends every session of a user except one (or all), and optionally records a new
-- password version so a sign-in checked against the old password cannot land later;
-- a new password also ends a reset code mailed before it and the trusted devices.
-- KEYS[1] user index P:{u:UID}:sessions   KEYS[2] password version P:{u:UID}:pwv
-- KEYS[3] reset code P:{u:UID}:reset   KEYS[4] trusted devices P:{u:UID}:dev
-- ARGV[1] SID to keep, or ''   ARGV[2] session key prefix P:{u:UID}:s:
-- ARGV[3] new password version, or ''   ARGV[4] how long to keep the version (ms)
-- Returns the number of sessions ended.
if ARGV[3] ~= '' then
  -- A new password: an outstanding reset code and the trusted devices end with the old.
  redis.call('DEL', KEYS[3], KEYS[4])
  local cur = redis.call('GET', KEYS[2])
  if not cur or tonumber(cur) < tonumber(ARGV[3]) then
    redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
  end
end
local n = 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if sid ~= ARGV[1] then
    n = n + redis.call('DEL', ARGV[2] .. sid)
    redis.call('ZREM', KEYS[1], sid)
  end
end
return n
