//! The second factor's key.

use secrecy::SecretSlice;

use super::reader::{bad, Reader, SettingError};

/// The second factor: `second_factor_key` seals the authenticator secrets (AES-256-GCM)
/// and keys the recovery-code hashes (HMAC-SHA256), each under its own key derived
/// from it (`crate::services::second_factor::SealingKeys`).
#[derive(Debug, Clone)]
pub struct SecondFactorSettings {
    /// 32 bytes. Debug profile without the setting: [`DEVELOPMENT_SECOND_FACTOR_KEY`].
    pub key: SecretSlice<u8>,
    /// The key is the published development key (debug profile only).
    pub development_key: bool,
}

/// The debug profile's `second_factor_key` when none is set: fixed, so a restart
/// never makes enrolled secrets unreadable, and public (it is in the source), so it
/// protects nothing. The release profile refuses to start without a key of its own.
pub const DEVELOPMENT_SECOND_FACTOR_KEY: &[u8; 32] = b"latchkey-development-2fa-key-v1!";

impl SecondFactorSettings {
    pub(super) fn read(r: &Reader, debug: bool) -> Result<Self, SettingError> {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        use base64::Engine;
        const NAME: &str = "second_factor_key";
        const HOW: &str = "make one with `openssl rand -base64 32`";
        let Some(text) = r.optional_text(NAME)? else {
            if debug {
                return Ok(SecondFactorSettings {
                    key: DEVELOPMENT_SECOND_FACTOR_KEY.to_vec().into(),
                    development_key: true,
                });
            }
            return Err(bad(
                NAME,
                format!("is required in the release profile (32 random bytes in base64: {HOW})"),
            ));
        };
        // Checked before it becomes a secret: the message never quotes it.
        let text = text.trim();
        let key = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE.decode(text))
            .map_err(|_| bad(NAME, format!("must be 32 bytes in base64 ({HOW})")))?;
        if key.len() != 32 {
            return Err(bad(
                NAME,
                format!(
                    "must be 32 bytes in base64, got {} bytes ({HOW})",
                    key.len()
                ),
            ));
        }
        Ok(SecondFactorSettings {
            key: key.into(),
            development_key: false,
        })
    }
}
