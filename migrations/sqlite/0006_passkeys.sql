-- Passkeys (WebAuthn credentials). Times are unix milliseconds.

-- The account's WebAuthn user handle: random (a UUID v4), made when the account adds
-- its first passkey, so an authenticator never holds the user id or the address.
CREATE TABLE passkey_handles (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    handle  TEXT NOT NULL UNIQUE
);

-- One row per passkey. `credential` is webauthn-rs's `Passkey` as JSON (the public
-- key, its algorithm, the signature counter, the backup flags); `sign_count` and
-- `synced` repeat what the pages and the counter check read.
CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY NOT NULL,    -- UUID v7, the id in page URLs
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,         -- base64url, no padding
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    sign_count    INTEGER NOT NULL,
    synced        INTEGER NOT NULL,             -- 1: backup eligible (a synced passkey)
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    -- When an assertion's counter went backwards (a cloned authenticator): refused
    -- from then on.
    cloned_at     INTEGER
);
CREATE INDEX passkeys_by_user ON passkeys (user_id);
