-- Stores a new address verification, replacing any earlier one.
-- KEYS[1] P:{UID}:verify   ARGV[1] keyed hash of the code (hex)
-- ARGV[2] keyed hash of the link's secret (hex)   ARGV[3] lifetime (ms)
-- The code is checked by reset_check.lua (same fields: mac, tries).
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'mac', ARGV[1], 'link', ARGV[2], 'tries', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
