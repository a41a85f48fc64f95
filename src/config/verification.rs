//! Verified addresses: whether an unverified account may use apps, forward
//! authentication and the password grant, and how long one nobody uses is kept.

use std::time::Duration;

use super::reader::{Reader, SettingError};

#[derive(Debug, Clone)]
pub struct VerificationSettings {
    /// Unverified accounts cannot use apps, forward authentication or the password grant.
    pub require_verified_email: bool,
    /// An account never verified and not signed in to for this long is deleted.
    pub unverified_account_ttl: Duration,
}

impl VerificationSettings {
    pub(super) fn read(r: &Reader) -> Result<Self, SettingError> {
        Ok(VerificationSettings {
            require_verified_email: r.flag("require_verified_email", true)?,
            unverified_account_ttl: r.seconds("unverified_account_ttl", 604_800)?,
        })
    }
}
