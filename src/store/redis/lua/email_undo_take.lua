-- Uses an undo link once: a live link ends every undo link of the account and its
-- waiting address change, and answers the address to put back.
-- KEYS[1] P:{UID}:eundo   KEYS[2] P:{UID}:email   ARGV[1] token hash   ARGV[2] now (ms)
-- Returns the address, or false when the link is unknown, used or expired.
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then
  return false
end
local space = string.find(value, ' ', 1, true)
if not space then
  return false
end
local expiry = tonumber(string.sub(value, 1, space - 1))
if not expiry or expiry <= tonumber(ARGV[2]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return false
end
redis.call('DEL', KEYS[1], KEYS[2])
return string.sub(value, space + 1)
