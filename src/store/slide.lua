-- slide(session_key, index_key, sid, now, expiry): the one expiry step of a session,
-- prepended to session_create, session_touch and refresh_rotate (see redis.rs).
-- Sets the session hash to expire at `expiry` (ms), gives it that score in the user's
-- index, and keeps the index alive at least as long as its longest-lived member.
local function slide(session_key, index_key, sid, now, expiry)
  redis.call('PEXPIRE', session_key, expiry - now)
  redis.call('ZADD', index_key, expiry, sid)
  if redis.call('PTTL', index_key) < expiry - now then
    redis.call('PEXPIRE', index_key, expiry - now)
  end
end

