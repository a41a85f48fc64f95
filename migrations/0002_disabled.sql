-- An operator may disable an account: its sessions end and it cannot sign in until
-- enabled again. Unix milliseconds; NULL while the account is enabled.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
