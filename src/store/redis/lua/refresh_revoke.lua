-- Ends a session by one of its refresh tokens (RFC 7009 revocation): when the
-- presented hash is the session's current refresh hash or one it remembers.
-- KEYS[1] session hash P:{UID}:s:SID   KEYS[2] user hash P:{UID}:u
-- ARGV[1] SID   ARGV[2] hash of the presented secret
-- ARGV[3] how many earlier hashes are remembered (n: fields p1 .. pn)
-- Returns 1 when the session was ended, 0 when no session knows that hash.
local fields = { 'r' }
for j = 1, tonumber(ARGV[3]) do
  fields[#fields + 1] = 'p' .. j
end
local h = redis.call('HMGET', KEYS[1], unpack(fields))
for j = 1, #fields do
  if h[j] == ARGV[2] then
    redis.call('DEL', KEYS[1])
    redis.call('HDEL', KEYS[2], ARGV[1])
    return 1
  end
end
return 0
