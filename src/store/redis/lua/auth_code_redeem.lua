-- Uses an authorization code once, or ends what it started when it comes back.
-- KEYS[1] the code P:{UID}:ac:ID   KEYS[2] user hash P:{UID}:u
-- ARGV[1] session key prefix P:{UID}:s: (same hash tag, same slot)
-- ARGV[2] SID of the app session just started for this use ('' for none)
-- ARGV[3] how long a used code is remembered (ms)
-- ARGV[4] SID of the browser session that allowed the code ('' when not known)
-- The code's value is its request (JSON, starting with '{') while unused, and
-- 'u:SID' then a newline and that request once used (so a replay can be checked as
-- strictly as a first use). Returns 1 when this use is the first (the code now names
-- ARGV[2]); -1 when the code was used before (that session and this one are ended);
-- -2 when the browser session that allowed it has ended since (the code is deleted,
-- this use's session ended); 0 when there is no code (expired or never issued; this
-- use's session is ended).
local function finish(sid)
  if sid ~= '' then
    redis.call('DEL', ARGV[1] .. sid)
    redis.call('HDEL', KEYS[2], sid)
  end
end
local v = redis.call('GET', KEYS[1])
if not v then
  finish(ARGV[2])
  return 0
end
if string.sub(v, 1, 2) == 'u:' then
  local first = string.match(v, '^u:([^\n]*)')
  finish(first)
  finish(ARGV[2])
  return -1
end
if ARGV[2] == '' then
  return 0
end
if ARGV[4] ~= '' and redis.call('EXISTS', ARGV[1] .. ARGV[4]) == 0 then
  redis.call('DEL', KEYS[1])
  finish(ARGV[2])
  return -2
end
redis.call('SET', KEYS[1], 'u:' .. ARGV[2] .. '\n' .. v, 'PX', ARGV[3])
return 1
