//! The keys derived from `second_factor_key` (`SealingKeys`: one to seal TOTP secrets
//! with AES-256-GCM, one to key recovery-code hashes, and an id that names the key),
//! what they seal a secret for (a stored secret, a set-up in progress: each bound to
//! its account), and the start's check that the key is the one that sealed the
//! stored secrets.

use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::accounts::Accounts;
use crate::config::{SecondFactorSettings, Settings};
use crate::support::crypto::{self, hmac, hmac_hex};
use crate::support::report::Report;

/// The keys derived from `second_factor_key`, each for one purpose.
pub struct SealingKeys {
    seal: [u8; 32],
    recovery: [u8; 32],
    /// Names the key (stored, compared at start); reveals nothing about it.
    id: String,
}

impl SealingKeys {
    pub fn new(settings: &SecondFactorSettings) -> SealingKeys {
        let master = settings.key.expose_secret();
        SealingKeys {
            seal: hmac(master, b"latchkey second factor: seal secrets v1"),
            recovery: hmac(master, b"latchkey second factor: recovery codes v1"),
            id: hmac_hex(master, b"latchkey second factor: key id v1")[..16].to_string(),
        }
    }

    /// base64(nonce || ciphertext) of `plain`, bound to `context`.
    pub(super) fn seal(&self, context: &[u8], plain: &[u8]) -> Option<String> {
        crypto::seal(&self.seal, context, plain)
    }

    /// What `seal` sealed under this key and `context`; `None` for anything else.
    pub(super) fn open(&self, context: &[u8], sealed: &str) -> Option<Vec<u8>> {
        crypto::open(&self.seal, context, sealed)
    }

    pub(super) fn recovery_mac(&self, user_id: &Uuid, code: &str) -> String {
        hmac_hex(&self.recovery, format!("{user_id}:{code}").as_bytes())
    }
}

pub(super) fn stored_context(user_id: &Uuid) -> Vec<u8> {
    format!("latchkey totp secret {user_id}").into_bytes()
}

pub(super) fn setup_context(user_id: &Uuid) -> Vec<u8> {
    format!("latchkey totp set-up {user_id}").into_bytes()
}

/// Checks at start that `second_factor_key` is the key the stored secrets were
/// sealed with (recording it when none are stored), so a wrong or lost key stops the
/// start instead of failing every sign-in with a second factor later.
pub async fn check_key(settings: &Settings, accounts: &Accounts) -> Result<(), String> {
    let keys = SealingKeys::new(&settings.second_factor);
    let (stored, enrolled) = accounts
        .second_factor_key_id()
        .await
        .map_err(|e| format!("second factor: {}", Report(&e)))?;
    match stored {
        Some(id) if id == keys.id => Ok(()),
        Some(id) if enrolled > 0 => Err(format!(
            "invalid setting `second_factor_key`: it is not the key that sealed the {enrolled} \
             accounts' second factors in this database (key id {id}, this key's id {}); start \
             with that key, or those accounts cannot sign in",
            keys.id
        )),
        _ => accounts
            .set_second_factor_key_id(&keys.id)
            .await
            .map_err(|e| format!("second factor: {}", Report(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(byte: u8) -> SealingKeys {
        SealingKeys::new(&SecondFactorSettings {
            key: vec![byte; 32].into(),
            development_key: false,
        })
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_account_and_key() {
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let k = keys(1);
        let sealed = k.seal(&stored_context(&alice), b"secret").expect("seal");
        assert!(!sealed.contains("secret"));
        assert_eq!(
            k.open(&stored_context(&alice), &sealed).as_deref(),
            Some(&b"secret"[..])
        );
        assert!(k.open(&stored_context(&bob), &sealed).is_none());
        assert!(k.open(&setup_context(&alice), &sealed).is_none());
        assert!(keys(2).open(&stored_context(&alice), &sealed).is_none());
        assert!(k.open(&stored_context(&alice), "not base64!").is_none());
    }
}
