//! The secrets a session is named by and what is derived from them: the session id
//! (`SID`, the first 128 bits of SHA-256 of the secret), the cookie's `UID.TOKEN`, the
//! hashes the store keeps of refresh secrets, and a session's CSRF token.
//!
//! The cookie carries `UID.TOKEN`. The store knows the session by `SID`, so a dump of
//! Redis holds nothing that signs anyone in. A browser session's CSRF token is not
//! stored either: it is a keyed hash of the SID (`csrf_token`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::Settings;
use crate::support::crypto::{hmac, sha256_hex};

/// The longest cookie value we read; anything longer is not ours.
const MAX_COOKIE_LEN: usize = 128;

/// The session id derived from a cookie or refresh secret.
pub fn sid_for(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(token.as_bytes())[..16])
}

/// A well-formed SID: 22 characters of URL-safe base64.
pub fn is_sid(s: &str) -> bool {
    s.len() == 22
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The CSRF token of a session's forms: HMAC-SHA256 of its SID under `jwt_secret`
/// (URL-safe base64, 43 characters). Only this server can make it, it differs for
/// every session, and nothing needs storing (OWASP's HMAC-based token pattern).
pub fn csrf_token(settings: &Settings, sid: &str) -> String {
    let key = settings.tokens.jwt_secret.expose_secret();
    URL_SAFE_NO_PAD.encode(hmac(key, format!("latchkey csrf\n{sid}").as_bytes()))
}

/// What a session cookie says, once parsed: the user and the session it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCookie {
    pub user_id: Uuid,
    pub sid: String,
}

impl SessionCookie {
    /// Parses `UID.TOKEN`; anything else is no session at all.
    pub fn parse(value: &str) -> Option<SessionCookie> {
        if value.len() > MAX_COOKIE_LEN {
            return None;
        }
        let (user_id, token) = crate::support::crypto::uid_and_token(value)?;
        Some(SessionCookie {
            user_id,
            sid: sid_for(token),
        })
    }
}

/// What the store keeps of a refresh secret: SHA-256, hex.
pub fn secret_hash(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

/// What the store keeps of an app's refresh secret: SHA-256 of what it is bound to
/// (the client id and its scopes) and the secret, so the token is worth nothing to
/// another client or to the API's grant.
pub fn app_secret_hash(bound_to: &str, secret: &str) -> String {
    sha256_hex(format!("{bound_to}\n{secret}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::crypto::random_token;

    #[test]
    fn a_cookie_must_be_exactly_uid_dot_token() {
        let token = random_token();
        let uid = Uuid::now_v7();
        let parsed = SessionCookie::parse(&format!("{uid}.{token}")).expect("well formed");
        assert_eq!(parsed.user_id, uid);
        assert_eq!(parsed.sid, sid_for(&token));
        assert!(is_sid(&parsed.sid));
        assert!(!is_sid(&"a".repeat(32)));
        for bad in [
            String::new(),
            token.clone(),
            format!("{uid}"),
            format!("{uid}."),
            format!("not-a-uuid.{token}"),
            format!("{uid}.{token}x"),
            format!("{uid}.{}", "é".repeat(43)),
            format!("{uid}.{token}.{token}"),
            "a".repeat(5000),
        ] {
            assert_eq!(SessionCookie::parse(&bad), None, "{bad:?}");
        }
    }
}
