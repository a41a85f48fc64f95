-- Trusts a browser (its trusted-browser cookie's nonce) for a user, keeping at most a
-- cap of them.
-- KEYS[1] P:{UID}:dev (sorted set: nonce -> trusted until, ms)
-- ARGV[1] nonce   ARGV[2] now (ms)   ARGV[3] how long it stays trusted (ms)
-- ARGV[4] most browsers kept (the ones trusted longest ago are dropped)
local now, ttl, cap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local excess = redis.call('ZCARD', KEYS[1]) - cap
if excess > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
end
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
