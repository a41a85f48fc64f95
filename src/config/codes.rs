//! One-time codes' lifetimes: password-reset codes, and how long a sign-in waits for
//! its second factor.

use std::time::Duration;

use super::reader::{Reader, SettingError};

/// Password-reset codes.
#[derive(Debug, Clone)]
pub struct CodeSettings {
    pub ttl: Duration,
    pub max_tries: u32,
    /// How long a sign-in waits for its second factor after the right password.
    pub second_factor_timeout: Duration,
}

impl CodeSettings {
    pub(super) fn read(r: &Reader) -> Result<Self, SettingError> {
        Ok(CodeSettings {
            ttl: r.seconds("reset_code_ttl", 600)?,
            max_tries: r.count("reset_code_max_tries", 5)?,
            second_factor_timeout: r.seconds("second_factor_timeout", 300)?,
        })
    }
}
