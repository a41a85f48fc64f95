-- Stores a new password-reset code, replacing any earlier one.
-- KEYS[1] P:{UID}:reset   ARGV[1] keyed hash of the code (hex)   ARGV[2] lifetime (ms)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'mac', ARGV[1], 'tries', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
