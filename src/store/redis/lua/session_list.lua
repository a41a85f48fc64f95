-- Lists a user's live sessions, dropping entries that have expired.
-- KEYS[1] user hash P:{UID}:u
-- ARGV[1] now (ms)   ARGV[2] session key prefix P:{UID}:s:  (same hash tag, same slot)
-- list() comes from list.lua, prepended when the script is loaded.
return list(KEYS[1], ARGV[2], tonumber(ARGV[1]))
