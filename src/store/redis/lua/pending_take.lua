-- Uses a pending sign-in up: reads it and deletes it in one step, so of two
-- concurrent takes only one gets it.
-- KEYS[1] P:{UID}:2fa:PID
-- Returns false when there is none, else its fields as {field, value, ...} (the
-- caller checks the expiry field `x`: an expired one is deleted all the same).
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then
  return false
end
redis.call('DEL', KEYS[1])
return h
