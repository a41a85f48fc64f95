//! The one key builder: every Redis key (and embedded-store key) is named here.
//! A user's keys carry the hash tag `{u:UID}` so they share one cluster slot.

use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `P:{u:UID}:s:` — a session hash is this followed by its SID.
    pub fn session_prefix(&self, user_id: &Uuid) -> String {
        format!("{}:{{u:{}}}:s:", self.prefix, user_id)
    }

    pub fn session(&self, user_id: &Uuid, sid: &str) -> String {
        format!("{}{}", self.session_prefix(user_id), sid)
    }

    pub fn index(&self, user_id: &Uuid) -> String {
        format!("{}:{{u:{}}}:sessions", self.prefix, user_id)
    }

    pub fn revoked_jti(&self, user_id: &Uuid, jti: &str) -> String {
        format!("{}:{{u:{}}}:jti:{}", self.prefix, user_id, jti)
    }

    pub fn reset(&self, user_id: &Uuid) -> String {
        format!("{}:{{u:{}}}:reset", self.prefix, user_id)
    }

    pub fn password_version(&self, user_id: &Uuid) -> String {
        format!("{}:{{u:{}}}:pwv", self.prefix, user_id)
    }

    /// The user's trusted devices (device-cookie nonces).
    pub fn devices(&self, user_id: &Uuid) -> String {
        format!("{}:{{u:{}}}:dev", self.prefix, user_id)
    }

    pub fn rate(&self, scope: &str, key: &str) -> String {
        format!("{}:rl:{}:{}", self.prefix, scope, key)
    }
}
