-- Ends every session of a user except one (or all), optionally records a new password
-- version so a sign-in checked against the old password cannot land later (a new
-- password also ends a reset code mailed before it and the trusted browsers), and
-- optionally closes the account: its email goes with the user hash, so no session
-- of it passes session_touch again.
-- KEYS[1] user hash P:{UID}:u   KEYS[2] password version P:{UID}:pwv
-- KEYS[3] reset code P:{UID}:reset   KEYS[4] trusted browsers P:{UID}:dev
-- ARGV[1] SID to keep, or ''   ARGV[2] session key prefix P:{UID}:s:
-- ARGV[3] new password version, or ''   ARGV[4] how long to keep the version (ms)
-- ARGV[5] '1' to close the account
-- Returns the number of sessions ended.
if ARGV[3] ~= '' then
  -- A new password: an outstanding reset code and the trusted browsers end with the old.
  redis.call('DEL', KEYS[3], KEYS[4])
  local cur = redis.call('GET', KEYS[2])
  if not cur or tonumber(cur) < tonumber(ARGV[3]) then
    redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
  end
end
local n = 0
for _, sid in ipairs(redis.call('HKEYS', KEYS[1])) do
  if sid ~= '@' and sid ~= ARGV[1] then
    n = n + redis.call('DEL', ARGV[2] .. sid)
    redis.call('HDEL', KEYS[1], sid)
  end
end
-- Closing, or nothing left but the email: the user hash goes (create writes it again).
if ARGV[5] == '1' or redis.call('HLEN', KEYS[1]) <= 1 then
  redis.call('DEL', KEYS[1])
end
return n
