//! The one key builder (`KeyNames`): every Redis key (and embedded-store key) is
//! named here. ARCHITECTURE.md ("The store") has the table of keys.
//!
//! A user's keys carry the hash tag `{UID}` (the user id as 22 characters of URL-safe
//! base64, so keys stay short), so every script over one user's keys touches one
//! cluster slot.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct KeyNames {
    prefix: String,
}

impl KeyNames {
    pub fn new(prefix: &str) -> Self {
        KeyNames {
            prefix: prefix.to_string(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `P:{UID}`: the start of every key of this user.
    fn user_base(&self, user_id: &Uuid) -> String {
        format!(
            "{}:{{{}}}",
            self.prefix,
            URL_SAFE_NO_PAD.encode(user_id.as_bytes())
        )
    }

    /// `P:{UID}:s:` — a session hash is this followed by its SID.
    pub fn session_prefix(&self, user_id: &Uuid) -> String {
        format!("{}:s:", self.user_base(user_id))
    }

    pub fn session(&self, user_id: &Uuid, sid: &str) -> String {
        format!("{}{}", self.session_prefix(user_id), sid)
    }

    /// `P:{UID}:u`: the user hash, SID → expiry (ms) of each session, and `@` → the
    /// account's email (no SID is `@`: SIDs are 22 base64 characters).
    pub fn user(&self, user_id: &Uuid) -> String {
        format!("{}:u", self.user_base(user_id))
    }

    pub fn revoked_jti(&self, user_id: &Uuid, jti: &str) -> String {
        format!("{}:jti:{}", self.user_base(user_id), jti)
    }

    pub fn reset(&self, user_id: &Uuid) -> String {
        format!("{}:reset", self.user_base(user_id))
    }

    /// `P:{UID}:verify`: the account's pending address verification.
    pub fn verification(&self, user_id: &Uuid) -> String {
        format!("{}:verify", self.user_base(user_id))
    }

    pub fn password_version(&self, user_id: &Uuid) -> String {
        format!("{}:pwv", self.user_base(user_id))
    }

    /// `P:{UID}:dev`: the user's trusted browsers (their cookies' nonces).
    pub fn trusted_browsers(&self, user_id: &Uuid) -> String {
        format!("{}:dev", self.user_base(user_id))
    }

    /// An authorization code (`ID`: the first 128 bits of SHA-256 of its secret).
    pub fn auth_code(&self, user_id: &Uuid, id: &str) -> String {
        format!("{}:ac:{}", self.user_base(user_id), id)
    }

    /// `P:{UID}:2fa:PID`: a pending sign-in, waiting for its second factor (PID: the
    /// hash of the secret in the browser's cookie).
    pub fn pending(&self, user_id: &Uuid, pid: &str) -> String {
        format!("{}:2fa:{}", self.user_base(user_id), pid)
    }

    /// `P:wa:CID`: a WebAuthn ceremony in progress (CID: the hash of the secret in the
    /// browser's cookie). No user tag: a passkey sign-in does not know its user yet.
    pub fn ceremony(&self, cid: &str) -> String {
        format!("{}:wa:{}", self.prefix, cid)
    }

    /// `P:{UID}:email`: the account's address change waiting for its code.
    pub fn email_change(&self, user_id: &Uuid) -> String {
        format!("{}:email", self.user_base(user_id))
    }

    /// `P:{UID}:eundo`: the undo links of the account's address changes.
    pub fn email_undo(&self, user_id: &Uuid) -> String {
        format!("{}:eundo", self.user_base(user_id))
    }

    pub fn rate(&self, scope: &str, key: &str) -> String {
        format!("{}:rl:{}:{}", self.prefix, scope, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_keys_share_one_short_hash_tag() {
        let keys = KeyNames::new("lk");
        let user = Uuid::now_v7();
        let tag = format!("{{{}}}", URL_SAFE_NO_PAD.encode(user.as_bytes()));
        assert_eq!(tag.len(), 24);
        for key in [
            keys.session(&user, "abc"),
            keys.user(&user),
            keys.revoked_jti(&user, "j"),
            keys.reset(&user),
            keys.verification(&user),
            keys.password_version(&user),
            keys.trusted_browsers(&user),
            keys.auth_code(&user, "c"),
            keys.pending(&user, "p"),
            keys.email_change(&user),
            keys.email_undo(&user),
        ] {
            assert!(key.starts_with(&format!("lk:{tag}:")), "{key}");
            assert_eq!(key.matches('{').count(), 1, "{key}");
        }
    }
}
