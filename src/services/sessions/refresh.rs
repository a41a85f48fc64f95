//! Refreshing a session's refresh token (the API's, and any other kind that rotates
//! with reuse detection): rotation, the grace window and theft detection, in one place.
//!
//! A refresh token's successor is not random but derived: HMAC-SHA256 of the
//! presented secret under a key made from `jwt_secret`. So every presentation of one
//! secret names the same successor, and a retry of the previous token within
//! `refresh_grace_seconds` of its rotation (two tabs refreshing at once) can be
//! answered with the successor the first one got, although the store keeps only hashes
//! (`refresh_rotate.lua`, ARCHITECTURE.md "Request flows"). Without the key, and without the
//! presented secret, nobody can compute it; with both, only within the window does
//! the server answer it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::ExposeSecret;

use super::access_tokens::RefreshToken;
use crate::config::Settings;
use crate::store::{Rotated, Rotation, Store, StoreResult, Tokens};
use crate::support::crypto::hmac;

/// What a refresh token bought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    /// The session lives; this is its current refresh token (new, or within the
    /// grace window the same one a moment ago's refresh answered).
    Current(RefreshToken),
    /// A spent token came back: the session has been ended (theft detection).
    Replayed,
    /// No such session or token, or not one that refreshes: nothing changed.
    Refused,
}

/// The successor of a refresh token: same user and session, the secret derived from
/// the presented one (43 characters of URL-safe base64, as a random secret).
pub fn successor(settings: &Settings, presented: &RefreshToken) -> RefreshToken {
    let key = settings.tokens.jwt_secret.expose_secret();
    let derived = hmac(
        key,
        format!("latchkey refresh successor\n{}", presented.secret).as_bytes(),
    );
    RefreshToken::new(
        presented.user_id,
        presented.sid.clone(),
        URL_SAFE_NO_PAD.encode(derived),
    )
}

/// One refresh, atomically in the store: the current token rotates; the previous one
/// within the grace window answers the same successor; an older one, or the previous
/// one after the window, ends the session. The store knows a secret by
/// `RefreshToken::hash` (SHA-256).
pub async fn refresh(
    store: &Store,
    settings: &Settings,
    presented: &RefreshToken,
    now_ms: i64,
) -> StoreResult<Refreshed> {
    refresh_hashed(store, settings, presented, RefreshToken::hash, now_ms).await
}

/// `refresh` for tokens whose secret the store knows by another hash (`stored_hash`
/// of a token; an app's binds its client, ARCHITECTURE.md "Request flows").
pub async fn refresh_hashed(
    store: &Store,
    settings: &Settings,
    presented: &RefreshToken,
    stored_hash: impl Fn(&RefreshToken) -> String,
    now_ms: i64,
) -> StoreResult<Refreshed> {
    let next = successor(settings, presented);
    let rotation = Rotation {
        presented_hash: &stored_hash(presented),
        successor_hash: &stored_hash(&next),
        grace_ms: settings.tokens.refresh_grace.as_millis() as i64,
    };
    let rotated = store
        .rotate_refresh(&presented.user_id, &presented.sid, &rotation, now_ms)
        .await?;
    Ok(match rotated {
        Rotated::Yes | Rotated::Again => Refreshed::Current(next),
        Rotated::Reused => Refreshed::Replayed,
        Rotated::Invalid => Refreshed::Refused,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::sessions::ids::sid_for;
    use crate::support::crypto::random_token;
    use uuid::Uuid;

    fn settings(secret: &str) -> Settings {
        let figment = rocket::Config::figment().merge(("jwt_secret", secret));
        Settings::from_figment(&figment).expect("settings")
    }

    #[test]
    fn a_successor_is_a_well_formed_token_named_by_the_secret_and_the_key() {
        let s = settings("refresh-unit-test-secret-0123456789abcdef");
        let secret = random_token();
        let t = RefreshToken::new(Uuid::now_v7(), sid_for(&secret), secret);
        let next = successor(&s, &t);
        assert_eq!(RefreshToken::parse(&next.to_string()), Some(next.clone()));
        assert_eq!((next.user_id, &next.sid), (t.user_id, &t.sid));
        assert_ne!(next.secret, t.secret);
        // The same presented secret names the same successor, every time...
        assert_eq!(successor(&s, &t), next);
        // ...and its own successor is another one again.
        assert_ne!(successor(&s, &next).secret, next.secret);
        // Another key, another successor: nobody without the key can compute it.
        let other = settings("another-unit-test-secret-0123456789abcdef");
        assert_ne!(successor(&other, &t).secret, next.secret);
    }
}
