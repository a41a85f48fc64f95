-- Takes an address verification by its link: the comparison runs over the whole
-- stored value whatever the input (constant time); a match uses the verification up.
-- KEYS[1] P:{UID}:verify   ARGV[1] keyed hash of the presented link secret (hex)
-- Returns 1 taken, 0 not this verification's link or none live.
local stored = redis.call('HGET', KEYS[1], 'link')
if not stored then
  return 0
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
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
