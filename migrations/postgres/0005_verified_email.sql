-- Verified addresses, as migrations/sqlite/0005_verified_email.sql. Times are unix
-- milliseconds.
-- When the account proved it holds its address; NULL: unverified (so are the
-- accounts present at the upgrade).
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
-- When the account last signed in (or registered); NULL for accounts present at the
-- upgrade until they next sign in.
ALTER TABLE users ADD COLUMN last_seen_at BIGINT;
-- The sweep's search: unverified accounts by last use.
CREATE INDEX users_unverified_last_seen ON users (last_seen_at) WHERE email_verified_at IS NULL;
