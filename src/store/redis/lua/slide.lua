-- The expiry steps of a session, prepended to session_create, session_touch and
-- refresh_rotate (see scripts.rs).
-- slide(session_key, now, expiry): the session hash expires at `expiry` (ms). Every
-- use of a session runs it: this TTL is what ends an idle session.
-- record(user_key, sid, now, upto): the user hash's entry for the session says
-- `upto`, and the user hash lives at least that long. Written with `seen` (at most
-- once per SEEN_REFRESH_MS), so `upto` is the session's expiry plus that interval
-- (within its absolute expiry): never earlier than the session can live, and the hot
-- path between two writes touches only the session hash's TTL.
local function slide(session_key, now, expiry)
  redis.call('PEXPIRE', session_key, expiry - now)
end

local function record(user_key, sid, now, upto)
  redis.call('HSET', user_key, sid, upto)
  if redis.call('PTTL', user_key) < upto - now then
    redis.call('PEXPIRE', user_key, upto - now)
  end
end
