-- Sliding-window log limiter: records one attempt in every window, or in none.
-- KEYS[1..n] rate-limit sorted sets P:rl:SCOPE:KEY (member -> time ms)
-- ARGV[1] now (ms)   ARGV[2] unique member for this attempt
-- ARGV[1+2i], ARGV[2+2i] limit and window (ms) of KEYS[i]
-- Returns 0 when the attempt is allowed (and recorded), else the milliseconds
-- until every window has room again.
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    local w = tonumber(oldest[2]) + window - now
    if w > wait then
      wait = w
    end
  end
end
if wait > 0 then
  return wait
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, ARGV[2 + 2 * i])
end
return 0
