//! API tokens: the signing secret, access and refresh lifetimes, the grace window.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretSlice};

use super::reader::{bad, Reader, SettingError};

/// API access tokens. `jwt_secret` also keys the reset-code hashes.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub jwt_secret: SecretSlice<u8>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// How long after a rotation the previous refresh token still answers (with the
    /// same successor); zero turns the window off.
    pub refresh_grace: Duration,
}

/// The longest grace window a refresh token may have: every second of it is a
/// second in which a stolen previous token is answered instead of ending the session.
pub const MAX_REFRESH_GRACE_SECS: i64 = 300;

impl TokenSettings {
    pub(super) fn read(r: &Reader, debug: bool) -> Result<Self, SettingError> {
        let jwt_secret = match r.get::<String>("jwt_secret")? {
            Some(s) => s.into_bytes(),
            None if debug => crate::support::crypto::random_bytes(32),
            None => {
                return Err(bad(
                    "jwt_secret",
                    "is required in the release profile (at least 32 bytes)",
                ))
            }
        };
        let s = TokenSettings {
            jwt_secret: jwt_secret.into(),
            access_ttl: r.seconds("access_token_ttl", 900)?,
            refresh_ttl: r.seconds("refresh_token_ttl", 2_592_000)?,
            refresh_grace: r.seconds_up_to("refresh_grace_seconds", 30, MAX_REFRESH_GRACE_SECS)?,
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), SettingError> {
        let len = self.jwt_secret.expose_secret().len();
        if len < 32 {
            return Err(bad(
                "jwt_secret",
                format!("must be at least 32 bytes, got {len}"),
            ));
        }
        Ok(())
    }
}
