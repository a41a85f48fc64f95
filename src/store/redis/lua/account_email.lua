-- Replaces the account's email field beside its sessions, only while it is there
-- (a closed account has none and stays closed).
-- KEYS[1] user hash P:{UID}:u   ARGV[1] the new field (the email, `v ` before it when verified)
-- Returns 1 replaced, 0 no field.
if redis.call('HEXISTS', KEYS[1], '@') == 0 then
  return 0
end
redis.call('HSET', KEYS[1], '@', ARGV[1])
return 1
