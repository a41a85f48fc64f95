//! The JWTs an app gets: access tokens (`typ` `at+jwt`, RFC 9068) and id_tokens, both
//! RS256 with the keyring's `kid`, and the one check of an access token.

use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::keys::Keyring;
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

/// Checks an app's access token: RS256 only (never `none`, never HMAC: the header's
/// algorithm must be RS256 before any key is looked at), `typ` `at+jwt`, a `kid` of
/// ours, signature, `iss`, `exp`/`iat` with 30 s leeway, `aud` = `client_id`.
/// Says nothing about whether its session still lives (`grants::check_access` does).
pub async fn verify_access(
    keyring: &Keyring,
    issuer: &str,
    token: &str,
) -> Result<AppAccessClaims, TokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
        return Err(TokenError::Malformed);
    }
    let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.alg != Algorithm::RS256 {
        return Err(TokenError::Algorithm);
    }
    if header.crit.is_some() {
        return Err(TokenError::Invalid("unsupported critical header"));
    }
    if header.typ.as_deref() != Some(ACCESS_TYP) {
        return Err(TokenError::Invalid("not an access token"));
    }
    let kid = header.kid.ok_or(TokenError::Invalid("no kid"))?;
    if kid.len() > 64 {
        return Err(TokenError::Invalid("unknown kid"));
    }
    let key = keyring
        .decoding_key(&kid)
        .await
        .ok_or(TokenError::Invalid("unknown kid"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.algorithms = vec![Algorithm::RS256];
    validation.leeway = LEEWAY_SECS;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.set_issuer(&[issuer]);
    let claims = decode::<AppAccessClaims>(token, &key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => TokenError::Algorithm,
            _ => TokenError::Rejected(e),
        })?
        .claims;
    let now = (now_ms() / 1000).max(0) as u64;
    if claims.iat > now + LEEWAY_SECS {
        return Err(TokenError::NotYetValid);
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
/// Connect RP-Initiated Logout §2: an expired one is still a good hint): RS256 only,
/// a `kid` of ours, signature and `iss`; `exp` is not checked.
pub async fn verify_id_token_hint(
    keyring: &Keyring,
    issuer: &str,
    token: &str,
) -> Result<IdClaims, TokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
        return Err(TokenError::Malformed);
    }
    let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.alg != Algorithm::RS256 {
        return Err(TokenError::Algorithm);
    }
    if header.typ.as_deref() == Some(ACCESS_TYP) {
        return Err(TokenError::Invalid("an access token is not an id_token"));
    }
    let kid = header.kid.ok_or(TokenError::Invalid("no kid"))?;
    let key = keyring
        .decoding_key(&kid)
        .await
        .ok_or(TokenError::Invalid("unknown kid"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.algorithms = vec![Algorithm::RS256];
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["iss", "aud", "sub"]);
    validation.set_issuer(&[issuer]);
    let claims = decode::<IdClaims>(token, &key, &validation)
        .map_err(TokenError::Rejected)?
        .claims;
    if !is_sid(&claims.sid) {
        return Err(TokenError::Invalid("malformed sid"));
    }
    Ok(claims)
}
