-- Keeps an undo link of an address change: field = the token's hash, value =
-- "EXPIRY_MS ADDRESS". The hash lives as long as its longest-lived link.
-- KEYS[1] P:{UID}:eundo   ARGV[1] token hash   ARGV[2] the address to put back
-- ARGV[3] now (ms)   ARGV[4] lifetime (ms)
local expiry = tonumber(ARGV[3]) + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], expiry .. ' ' .. ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return 1
