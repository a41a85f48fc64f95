-- list(user_key, session_prefix, now): every live session of a user, prepended to
-- session_list and session_touch (see scripts.rs). Drops the user hash's entries whose
-- expiry has passed or whose hash is gone.
-- Returns {sid1, {k, l, m, ip, t, s, o, c}, sid2, {...}, ...}.
local function list(user_key, session_prefix, now)
  local out = {}
  local entries = redis.call('HGETALL', user_key)
  for i = 1, #entries, 2 do
    local sid = entries[i]
    if sid ~= '@' then
      local h = false
      if tonumber(entries[i + 1]) > now then
        h = redis.call('HMGET', session_prefix .. sid, 'k', 'l', 'm', 'ip', 't', 's', 'o', 'c')
      end
      if h and h[6] then
        out[#out + 1] = sid
        out[#out + 1] = h
      else
        redis.call('HDEL', user_key, sid)
      end
    end
  end
  return out
end
