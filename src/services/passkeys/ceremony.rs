//! A WebAuthn ceremony between its options and the browser's answer: the state the
//! library needs to check the answer, kept in the store (`Ceremonies`, 5 minutes) and
//! named by a random token in the browser's cookie, so it is bound to the browser that
//! asked and taken at most once (a replayed answer finds nothing).

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webauthn_rs::prelude::{DiscoverableAuthentication, PasskeyRegistration};

use crate::services::sessions::sid_for;
use crate::services::{ServiceError, Services};
use crate::store::Ceremonies;
use crate::support::clock::now_ms;
use crate::support::crypto::random_token;

/// How long a ceremony waits for the browser's answer.
pub const CEREMONY_TTL_MS: i64 = 5 * 60 * 1000;

/// What the store keeps of a ceremony.
#[derive(Serialize, Deserialize)]
pub(super) enum Ceremony {
    /// Adding a passkey to `user_id`'s account.
    Register {
        user_id: Uuid,
        state: PasskeyRegistration,
    },
    /// Signing in: usernameless (`second_step_of: None`), or the second step of the
    /// password sign-in of that account.
    SignIn {
        second_step_of: Option<Uuid>,
        state: DiscoverableAuthentication,
    },
}

/// The browser's side: the token its cookie holds (256 random bits, base64url). The
/// store knows the ceremony by the first 128 bits of SHA-256 of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeremonyCookie(String);

impl CeremonyCookie {
    /// The cookie's value, when it is one of ours in shape.
    pub fn parse(value: &str) -> Option<CeremonyCookie> {
        let ok = value.len() == 43
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| CeremonyCookie(value.to_string()))
    }

    pub fn value(&self) -> &str {
        &self.0
    }

    fn cid(&self) -> String {
        sid_for(&self.0)
    }
}

/// Stores `ceremony` under a new token, the browser's cookie.
pub(super) async fn put(
    app: Services<'_>,
    ceremony: &Ceremony,
) -> Result<CeremonyCookie, ServiceError> {
    let cookie = CeremonyCookie(random_token());
    // Serialising the library's own state types cannot fail; if it ever did, the
    // ceremony is simply not stored and its answer is refused.
    let state = serde_json::to_string(ceremony).unwrap_or_default();
    app.store
        .put_ceremony(&cookie.cid(), &state, CEREMONY_TTL_MS, now_ms())
        .await?;
    Ok(cookie)
}

/// Takes the ceremony `cookie` names: gone from the store whatever it was.
pub(super) async fn take(
    app: Services<'_>,
    cookie: &CeremonyCookie,
) -> Result<Option<Ceremony>, ServiceError> {
    let state = app.store.take_ceremony(&cookie.cid(), now_ms()).await?;
    Ok(state.and_then(|s| serde_json::from_str(&s).ok()))
}
