-- User accounts. Times are unix milliseconds.
CREATE TABLE users (
    id                  TEXT PRIMARY KEY NOT NULL,  -- UUID v7
    email               TEXT NOT NULL,              -- as typed, trimmed
    email_normalized    TEXT NOT NULL UNIQUE,       -- lower case: one account per address
    password_hash       TEXT NOT NULL,              -- Argon2id PHC string
    created_at          INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL
);

-- Devices (label + IP) an account has signed in from, for new-device notices.
CREATE TABLE known_devices (
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    fingerprint  TEXT NOT NULL,                     -- SHA-256 of label and IP
    last_seen_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, fingerprint)
);
