-- The account's activity log (issue 26): what happened to the account, newest last.
-- Times are unix milliseconds. At most `activity_max_events` rows per account and
-- none older than `activity_retention_days` (pruned as events are written).
CREATE TABLE activity_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- When it (last) happened.
    at         INTEGER NOT NULL,
    -- `sign_in`, `sign_in_failed`, `locked_out`, `password_changed`, ...
    type       TEXT NOT NULL,
    -- The device's label, as the devices page shows it ('' when none).
    label      TEXT NOT NULL,
    ip         TEXT NOT NULL,
    -- The session the event started or ended, when there is one.
    session_id TEXT,
    -- What kind: a sign-in's method, what ended a session, the app's name...
    detail     TEXT NOT NULL,
    -- How many times it happened (events grouped per address and hour).
    count      INTEGER NOT NULL DEFAULT 1,
    -- For grouped events: type, address and hour; NULL for the others (NULLs never
    -- conflict, so each ungrouped event is a row of its own).
    group_key  TEXT
);

CREATE UNIQUE INDEX activity_events_group ON activity_events (user_id, group_key);
CREATE INDEX activity_events_user ON activity_events (user_id, id);
