-- Starts a pending sign-in: the password was right, the second factor comes next.
-- KEYS[1] P:{UID}:2fa:PID
-- ARGV[1] time to live (ms)   ARGV[2..] field, value pairs of the hash
-- (r remember, to target, v password version, t created, x expiry, w wrong codes).
-- Returns 1.
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
