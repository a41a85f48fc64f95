-- Stores a waiting address change, replacing any earlier one.
-- KEYS[1] P:{UID}:email   ARGV[1] the new address   ARGV[2] keyed hash of the code (hex)
-- ARGV[3] lifetime (ms)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'to', ARGV[1], 'mac', ARGV[2], 'tries', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
