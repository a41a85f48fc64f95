//! The JWTs an app gets: access tokens (`typ` `at+jwt`, RFC 9068, ES256) and id_tokens
//! (RS256 unless the client registered another algorithm), each with its key's `kid`;
//! and the one check of a token we issued, verified with `ring` against the keyring's
//! decoded public keys.

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::keys::{Alg, Keyring};
use crate::services::sessions::access_tokens::{TokenError, LEEWAY_SECS};
use crate::services::sessions::is_sid;
use crate::support::clock::now_ms;

/// The `typ` of an app's access token (RFC 9068), so an id_token is never taken for one.
pub const ACCESS_TYP: &str = "at+jwt";
const MAX_TOKEN_LEN: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppAccessClaims {
    pub iss: String,
    pub sub: Uuid,
    /// The client id (RFC 9068 §3).
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    /// The app session.
    pub sid: String,
    pub jti: String,
    pub iat: u64,
    pub exp: u64,
}

impl AppAccessClaims {
    /// Milliseconds until the token stops being accepted (leeway included).
    pub fn remaining_ms(&self) -> i64 {
        ((self.exp + LEEWAY_SECS) as i64 * 1000 - now_ms()).max(0)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: Uuid,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub auth_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub amr: Vec<String>,
    pub sid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// The JOSE header of a token we issued; fields we never write are ignored, a
/// duplicated one is refused (serde).
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// A compact JWS signed by one of our keys, checked: three base64url parts, a header
/// that names an algorithm we sign with and the `kid` of a key of ours of *that*
/// algorithm (so `none`, HMAC or a header naming another algorithm than its key's is
/// refused before any signature is computed), no `crit`, a `typ` that `typ_ok`
/// accepts, and the key's signature. Answers the decoded payload.
async fn verified_payload(
    keyring: &Keyring,
    token: &str,
    typ_ok: impl Fn(Option<&str>) -> Result<(), TokenError>,
) -> Result<Vec<u8>, TokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.splitn(4, '.');
    let (Some(header64), Some(payload64), Some(sig64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(header64)
        .map_err(|_| TokenError::Malformed)?;
    let header: Header<'_> =
        serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
    let alg = Alg::parse(&header.alg).ok_or(TokenError::Algorithm)?;
    if header.crit.is_some() {
        return Err(TokenError::Invalid("unsupported critical header"));
    }
    typ_ok(header.typ.as_deref())?;
    let kid = header.kid.ok_or(TokenError::Invalid("no kid"))?;
    if kid.len() > 64 {
        return Err(TokenError::Invalid("unknown kid"));
    }
    let key = keyring
        .public_key(&kid)
        .await
        .ok_or(TokenError::Invalid("unknown kid"))?;
    if key.alg() != alg {
        return Err(TokenError::Algorithm);
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig64)
        .map_err(|_| TokenError::Malformed)?;
    let signed = &token[..header64.len() + 1 + payload64.len()];
    if !key.verifies(signed.as_bytes(), &sig) {
        return Err(TokenError::Invalid("bad signature"));
    }
    URL_SAFE_NO_PAD
        .decode(payload64)
        .map_err(|_| TokenError::Malformed)
}

/// Checks an app's access token: signed by one of our keys with that key's algorithm
/// (never `none`, never HMAC: `verified_payload`), `typ` `at+jwt`, `iss`, `exp`/`iat`
/// with 30 s leeway, `aud` = `client_id`, every claim present.
/// Says nothing about whether its session still lives (`grants::check_access` does).
pub async fn verify_access(
    keyring: &Keyring,
    issuer: &str,
    token: &str,
) -> Result<AppAccessClaims, TokenError> {
    let payload = verified_payload(keyring, token, |typ| match typ {
        Some(ACCESS_TYP) => Ok(()),
        _ => Err(TokenError::Invalid("not an access token")),
    })
    .await?;
    let claims: AppAccessClaims =
        serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid("claims"))?;
    let now = (now_ms() / 1000).max(0) as u64;
    if claims.exp.saturating_add(LEEWAY_SECS) <= now {
        return Err(TokenError::Expired);
    }
    if claims.iat > now + LEEWAY_SECS {
        return Err(TokenError::NotYetValid);
    }
    if claims.iss != issuer {
        return Err(TokenError::Invalid("another issuer"));
    }
    if claims.aud != claims.client_id {
        return Err(TokenError::Invalid("aud is not the client"));
    }
    let jti_ok = (16..=64).contains(&claims.jti.len())
        && claims
            .jti
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !is_sid(&claims.sid) || !jti_ok {
        return Err(TokenError::Invalid("malformed sid or jti"));
    }
    Ok(claims)
}

/// Checks an id_token we issued, as RP-initiated logout's `id_token_hint` (OpenID
/// Connect RP-Initiated Logout §2: an expired one is still a good hint): signed by one
/// of our keys with its algorithm, not an access token, `iss`; `exp` is not checked.
pub async fn verify_id_token_hint(
    keyring: &Keyring,
    issuer: &str,
    token: &str,
) -> Result<IdClaims, TokenError> {
    let payload = verified_payload(keyring, token, |typ| match typ {
        Some(ACCESS_TYP) => Err(TokenError::Invalid("an access token is not an id_token")),
        _ => Ok(()),
    })
    .await?;
    let claims: IdClaims =
        serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid("claims"))?;
    if claims.iss != issuer {
        return Err(TokenError::Invalid("another issuer"));
    }
    if !is_sid(&claims.sid) {
        return Err(TokenError::Invalid("malformed sid"));
    }
    Ok(claims)
}
