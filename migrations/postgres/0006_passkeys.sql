-- Passkeys (WebAuthn credentials), as migrations/sqlite/0006_passkeys.sql. Times are
-- unix milliseconds.

-- The account's WebAuthn user handle: random (a UUID v4), made when the account adds
-- its first passkey, so an authenticator never holds the user id or the address.
CREATE TABLE passkey_handles (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    handle  TEXT NOT NULL UNIQUE
);

-- One row per passkey. `credential` is webauthn-rs's `Passkey` as JSON (the public
-- key, its algorithm, the signature counter, the backup flags); `sign_count` and
-- `synced` repeat what the pages and the counter check read.
CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY,             -- UUID v7, the id in page URLs
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,         -- base64url, no padding
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    sign_count    BIGINT NOT NULL,
    synced        BIGINT NOT NULL,              -- 1: backup eligible (a synced passkey)
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    -- When an assertion's counter went backwards (a cloned authenticator): refused
    -- from then on.
    cloned_at     BIGINT
);
CREATE INDEX passkeys_by_user ON passkeys (user_id);
