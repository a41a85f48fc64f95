-- slide(session_key, user_key, sid, now, expiry): the one expiry step of a session,
-- prepended to session_create, session_touch and refresh_rotate (see redis.rs).
-- Sets the session hash to expire at `expiry` (ms), records that expiry under the SID
-- in the user hash, and keeps the user hash alive at least as long as its
-- longest-lived session.
local function slide(session_key, user_key, sid, now, expiry)
  redis.call('PEXPIRE', session_key, expiry - now)
  redis.call('HSET', user_key, sid, expiry)
  if redis.call('PTTL', user_key) < expiry - now then
    redis.call('PEXPIRE', user_key, expiry - now)
  end
end
