-- Verified addresses (issue 25). Times are unix milliseconds.
-- When the account proved it holds its address (a code or link from its mailbox, a
-- reset by emailed code, or an operator's `latchkey users verify`); NULL: unverified.
-- Accounts present at the upgrade stay NULL: unverified.
ALTER TABLE users ADD COLUMN email_verified_at INTEGER;
-- When the account last signed in (or registered): an unverified account not seen
-- for `unverified_account_ttl` is deleted. NULL for accounts present at the upgrade
-- until they next sign in, so the upgrade alone deletes nothing.
ALTER TABLE users ADD COLUMN last_seen_at INTEGER;
-- The sweep's search: unverified accounts by last use.
CREATE INDEX users_unverified_last_seen ON users (last_seen_at) WHERE email_verified_at IS NULL;
