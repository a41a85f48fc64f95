-- The account's activity log, as migrations/sqlite/0008_activity.sql. Times are unix
-- milliseconds.
CREATE TABLE activity_events (
    id         BIGSERIAL PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    at         BIGINT NOT NULL,
    type       TEXT NOT NULL,
    label      TEXT NOT NULL,
    ip         TEXT NOT NULL,
    session_id TEXT,
    detail     TEXT NOT NULL,
    count      BIGINT NOT NULL DEFAULT 1,
    group_key  TEXT
);

CREATE UNIQUE INDEX activity_events_group ON activity_events (user_id, group_key);
CREATE INDEX activity_events_user ON activity_events (user_id, id);
