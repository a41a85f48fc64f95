-- Checks a waiting address change's code and counts a wrong try in the same step.
-- The comparison runs over the whole stored value whatever the input (constant time).
-- KEYS[1] P:{UID}:email   ARGV[1] keyed hash of the presented code (hex)
-- ARGV[2] wrong tries that burn the change
-- Returns {1, new address} right (the change is used up), {0, ''} wrong,
-- {-2, ''} wrong and now burned, {-1, ''} no change waiting.
local stored = redis.call('HGET', KEYS[1], 'mac')
if not stored then
  return {-1, ''}
end
local given = ARGV[1]
local diff = 0
if #stored ~= #given then
  diff = 1
end
for i = 1, #stored do
  diff = bit.bor(diff, bit.bxor(string.byte(stored, i), string.byte(given, i) or 0))
end
if diff == 0 then
  local to = redis.call('HGET', KEYS[1], 'to') or ''
  redis.call('DEL', KEYS[1])
  return {1, to}
end
local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
if tries >= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return {-2, ''}
end
return {0, ''}
