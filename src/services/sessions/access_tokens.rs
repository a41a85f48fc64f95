//! API credentials: short-lived JWT access tokens (HS256, strict validation) and the
//! opaque refresh tokens `UID.SID.SECRET` whose secret only the client holds.
//!
//! An access token is only half the check: the Bearer guard also asks the store
//! whether its session still lives and its `jti` was not revoked, so ending a session
//! ends its tokens at once rather than when they expire.

use std::time::Duration;

use jsonwebtoken::{decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header};
use jsonwebtoken::{errors::ErrorKind, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::{is_sid, secret_hash};
use crate::config::Settings;
use crate::support::clock::now_ms;
use crate::support::crypto::random_token;

/// The `aud` of every access token: only this API accepts them.
pub const AUDIENCE: &str = "latchkey-api";
/// Clock skew tolerated on `exp` and `iat`, in seconds.
pub const LEEWAY_SECS: u64 = 30;
/// The one algorithm issued and accepted.
const ALGORITHM: Algorithm = Algorithm::HS256;
/// No token we issue comes near this; longer input is not worth parsing.
const MAX_TOKEN_LEN: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("not a JWT")]
    Malformed,
    #[error("algorithm not allowed")]
    Algorithm,
    #[error("expired")]
    Expired,
    #[error("issued in the future")]
    NotYetValid,
    #[error("invalid: {0}")]
    Invalid(&'static str),
    /// Bad signature, issuer, audience or claims, as the JWT library found.
    #[error("rejected")]
    Rejected(#[source] jsonwebtoken::errors::Error),
    #[error("could not sign a token")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

/// The claims of an access token; every one is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: Uuid,
    pub sid: String,
    pub jti: String,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
}

impl AccessClaims {
    /// Milliseconds until the token stops being accepted (leeway included), so a
    /// revocation mark outlives every use of the token.
    pub fn remaining_ms(&self) -> i64 {
        let accepted_until_ms = (self.exp + LEEWAY_SECS) as i64 * 1000;
        (accepted_until_ms - now_ms()).max(0)
    }
}

/// A freshly signed access token.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub claims: AccessClaims,
    pub expires_in: u64,
}

/// Signs and checks access tokens; managed as state by the API stage.
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    ttl: Duration,
}

impl AccessTokens {
    pub fn new(settings: &Settings) -> AccessTokens {
        let mut validation = Validation::new(ALGORITHM);
        validation.algorithms = vec![ALGORITHM];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_aud = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let public_url = &settings.server.public_url;
        validation.set_issuer(&[public_url.as_str()]);
        validation.set_audience(&[AUDIENCE]);
        let key = settings.tokens.jwt_secret.expose_secret();
        AccessTokens {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            issuer: public_url.clone(),
            ttl: settings.tokens.access_ttl,
        }
    }

    pub fn issue(&self, user_id: &Uuid, sid: &str) -> Result<Issued, TokenError> {
        let iat = (now_ms() / 1000).max(0) as u64;
        let claims = AccessClaims {
            sub: *user_id,
            sid: sid.to_string(),
            jti: random_token(),
            iat,
            exp: iat + self.ttl.as_secs(),
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_string(),
        };
        let token = encode(&Header::new(ALGORITHM), &claims, &self.encoding)
            .map_err(TokenError::Signing)?;
        Ok(Issued {
            token,
            claims,
            expires_in: self.ttl.as_secs(),
        })
    }

    /// Checks signature, algorithm, issuer, audience and times; says nothing about
    /// whether the session still lives (the store does).
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
            return Err(TokenError::Malformed);
        }
        // The library checks the allow-list too; checking first keeps `none` and
        // public-key algorithms away from any key handling at all.
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != ALGORITHM {
            return Err(TokenError::Algorithm);
        }
        // RFC 7515 §4.1.11: a critical extension we do not understand voids the token.
        if header.crit.is_some() {
            return Err(TokenError::Invalid("unsupported critical header"));
        }
        let data =
            decode::<AccessClaims>(token, &self.decoding, &self.validation).map_err(|e| match e
                .kind()
            {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidAlgorithm => TokenError::Algorithm,
                _ => TokenError::Rejected(e),
            })?;
        let claims = data.claims;
        let now = (now_ms() / 1000).max(0) as u64;
        if claims.iat > now + LEEWAY_SECS {
            return Err(TokenError::NotYetValid);
        }
        if claims.iat > claims.exp {
            return Err(TokenError::Invalid("iat after exp"));
        }
        if !is_sid(&claims.sid) || !is_jti(&claims.jti) {
            return Err(TokenError::Invalid("malformed sid or jti"));
        }
        Ok(claims)
    }
}

/// A `jti` we could have issued: it becomes part of a store key.
fn is_jti(s: &str) -> bool {
    (16..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A refresh token: `UID.SID.SECRET`. The SID is carried because it stays the same
/// across rotations while the secret changes; the store keeps only SHA-256(SECRET).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub user_id: Uuid,
    pub sid: String,
    pub secret: String,
}

impl RefreshToken {
    /// A new secret for a session (the first one also names it).
    pub fn new(user_id: Uuid, sid: String, secret: String) -> RefreshToken {
        RefreshToken {
            user_id,
            sid,
            secret,
        }
    }

    pub fn parse(value: &str) -> Option<RefreshToken> {
        if value.len() > 128 {
            return None;
        }
        let mut parts = value.split('.');
        let (uid, sid, secret) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let user_id = Uuid::parse_str(uid).ok()?;
        let secret_ok = secret.len() == 43
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (is_sid(sid) && secret_ok).then(|| RefreshToken {
            user_id,
            sid: sid.to_string(),
            secret: secret.to_string(),
        })
    }

    /// What the store keeps of the secret.
    pub fn hash(&self) -> String {
        secret_hash(&self.secret)
    }
}

impl std::fmt::Display for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.user_id, self.sid, self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::sessions::ids::sid_for;

    fn settings() -> Settings {
        let figment = rocket::Config::figment()
            .merge(("jwt_secret", "unit-test-secret-unit-test-secret-0123"))
            .merge(("public_url", "https://login.example.com"));
        Settings::from_figment(&figment).expect("settings")
    }

    #[test]
    fn an_issued_token_verifies_with_every_claim() {
        let tokens = AccessTokens::new(&settings());
        let uid = Uuid::now_v7();
        let sid = sid_for(&random_token());
        let issued = tokens.issue(&uid, &sid).expect("signed");
        let claims = tokens.verify(&issued.token).expect("valid");
        assert_eq!(claims, issued.claims);
        assert_eq!(claims.sub, uid);
        assert_eq!(claims.sid, sid);
        assert_eq!(claims.aud, AUDIENCE);
        assert_eq!(claims.iss, "https://login.example.com");
        assert_eq!(claims.exp - claims.iat, 900);
        assert!(claims.remaining_ms() > 900_000);
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_crypto() {
        let tokens = AccessTokens::new(&settings());
        for bad in ["", "a", "a.b", "a.b.c.d", "....", &"a.".repeat(2000)] {
            assert!(tokens.verify(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refresh_tokens_round_trip_and_refuse_anything_else() {
        let secret = random_token();
        let t = RefreshToken::new(Uuid::now_v7(), sid_for(&secret), secret.clone());
        assert_eq!(RefreshToken::parse(&t.to_string()), Some(t.clone()));
        assert_eq!(
            t.hash(),
            crate::support::crypto::sha256_hex(secret.as_bytes())
        );
        for bad in [
            String::new(),
            format!("{}.{}", t.user_id, t.sid),
            format!("{}.{}.{}.x", t.user_id, t.sid, t.secret),
            format!("nope.{}.{}", t.sid, t.secret),
            format!("{}.{}.{}", t.user_id, "A".repeat(32), t.secret),
            format!("{}.{}.{}!", t.user_id, t.sid, &t.secret[..42]),
        ] {
            assert_eq!(RefreshToken::parse(&bad), None, "{bad:?}");
        }
    }
}
