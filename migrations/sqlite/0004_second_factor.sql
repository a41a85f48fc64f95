-- The second factor (authenticator app, RFC 6238) and its recovery codes. Times are
-- unix milliseconds.

-- One authenticator per account while the second factor is on (no row: off).
CREATE TABLE second_factors (
    user_id       TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- The TOTP secret sealed with AES-256-GCM under a key derived from
    -- `second_factor_key`, the user id as associated data: base64 of nonce || ciphertext.
    secret_sealed TEXT NOT NULL,
    -- The last accepted time step (unix seconds / 30): only a later one is accepted.
    last_step     INTEGER NOT NULL,
    enabled_at    INTEGER NOT NULL
);

-- Unused recovery codes, as HMAC-SHA256 under a key derived from `second_factor_key`
-- (hex). Using one deletes its row; a new set replaces the old one.
CREATE TABLE recovery_codes (
    user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_mac TEXT NOT NULL,
    PRIMARY KEY (user_id, code_mac)
);

-- Which `second_factor_key` sealed the secrets above: an HMAC of a fixed label under
-- it (never the key). A server started with another key while second factors exist
-- refuses to start instead of failing every sign-in later.
CREATE TABLE second_factor_key (
    id     INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    key_id TEXT NOT NULL
);
