-- OpenID Connect provider (issue 14): registered apps, remembered consent, signing keys.
-- Times are unix milliseconds.

-- Apps that may sign users in (`latchkey clients add`).
CREATE TABLE oauth_clients (
    client_id        TEXT PRIMARY KEY NOT NULL,   -- 22 characters, URL-safe base64, random
    name             TEXT NOT NULL,               -- shown on the consent and devices pages
    secret_hash      TEXT,                        -- SHA-256 (hex) of the secret; NULL: a public client
    redirect_uris    TEXT NOT NULL,               -- newline-separated, matched exactly
    post_logout_uris TEXT NOT NULL,               -- newline-separated, may be empty
    created_at       BIGINT NOT NULL
);

-- What a user allowed an app to see, so the consent page is shown once.
CREATE TABLE oauth_consents (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,                     -- space-separated
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Token signing keys. The current one has retired_at NULL; retired keys stay published
-- until every token they signed has expired.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY NOT NULL,
    alg         TEXT NOT NULL,                    -- RS256
    public_jwk  TEXT NOT NULL,                    -- the JWK as JSON
    private_key TEXT NOT NULL,                    -- PKCS#8, AES-256-GCM under a key derived from jwt_secret, base64
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);
