-- Whether a refresh token is active (RFC 7662 introspection), changing nothing: its
-- hash is the current one of a live API or app session of an open account.
-- KEYS[1] session hash P:{UID}:s:SID   KEYS[2] user hash P:{UID}:u
-- ARGV[1] hash of the presented secret   ARGV[2] now (ms)
-- Returns the time (ms) the token was issued (the last rotation, else the sign-in),
-- or 0 when it is not active.
local h = redis.call('HMGET', KEYS[1], 'r', 'k', 'a', 'g', 't')
if h[1] ~= ARGV[1] or (h[2] ~= 'a' and h[2] ~= 'o') then
  return 0
end
if tonumber(ARGV[2]) >= tonumber(h[3]) or redis.call('HEXISTS', KEYS[2], '@') == 0 then
  return 0
end
return tonumber(h[4] or h[5])
