-- Counts a wrong code against a pending sign-in, and ends it at the limit.
-- KEYS[1] P:{UID}:2fa:PID
-- ARGV[1] now (ms)   ARGV[2] wrong codes that end it
-- Returns -1 when there is no live pending sign-in (an expired one is deleted), 0 when
-- this wrong code ended it, else how many wrong codes are left.
local expiry = redis.call('HGET', KEYS[1], 'x')
if not expiry then
  return -1
end
if tonumber(expiry) <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return -1
end
local wrong = redis.call('HINCRBY', KEYS[1], 'w', 1)
local left = tonumber(ARGV[2]) - wrong
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
return left
