-- Records the account's new email beside its sessions, only while it has one there
-- (a closed account's stays gone).
-- KEYS[1] user hash P:{UID}:u   ARGV[1] the new email
-- Returns 1 when written, 0 when the account had no email recorded.
if redis.call('HEXISTS', KEYS[1], '@') == 1 then
  redis.call('HSET', KEYS[1], '@', ARGV[1])
  return 1
end
return 0
