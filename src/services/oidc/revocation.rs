//! The ends of an app's tokens, for the client that holds them: revocation (RFC 7009)
//! and introspection (RFC 7662). The endpoints are `api::oauth_ends`.
//!
//! A token is recognised by its shape, so `token_type_hint` is never needed (RFC 7009
//! §2.1 lets the server search every type): an app's refresh token is
//! `UID.SID.SECRET.SCOPES`, an access token a JWS. One client never ends, nor learns
//! anything about, another's tokens: a token issued to another client is answered as
//! an unknown one (`active: false`; a revocation that changes nothing). For a refresh
//! token this needs no lookup: its stored hash binds the client
//! (`grants::parse_app_refresh`), so the hash made with another client's id matches
//! nothing.

use serde::Serialize;
use uuid::Uuid;

use super::claims::{verify_access, AppAccessClaims};
use super::grants::{self, AccessError};
use super::keys::Keyring;
use crate::accounts::ClientRecord;
use crate::services::sessions::access_tokens::RefreshToken;
use crate::store::{Store, StoreError, Tokens};
use crate::support::clock::now_ms;

/// The longest token looked at; anything longer is no token of ours.
const MAX_TOKEN_LEN: usize = 4096;

/// A presented token, by its shape; a refresh token with its scope and the hash the
/// store knows it by, for the asking client.
enum Presented<'t> {
    Refresh {
        token: RefreshToken,
        scope: String,
        hash: String,
    },
    Access(&'t str),
    Unknown,
}

fn classify<'t>(client: &ClientRecord, token: &'t str) -> Presented<'t> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Presented::Unknown;
    }
    if let Some((token, scope, hash)) = grants::parse_app_refresh(&client.client_id, token) {
        return Presented::Refresh { token, scope, hash };
    }
    if token.split('.').count() == 3 {
        return Presented::Access(token);
    }
    Presented::Unknown
}

/// An access token of `client`, checked (signature, `iss`, expiry: `claims::verify_access`)
/// before anything else is looked at; `None` for anything else, another client's
/// token included.
async fn own_access_claims(
    keyring: &Keyring,
    issuer: &str,
    client: &ClientRecord,
    token: &str,
) -> Option<AppAccessClaims> {
    let claims = verify_access(keyring, issuer, token).await.ok()?;
    (claims.client_id == client.client_id).then_some(claims)
}

/// What a revocation did (the answer is 200 either way, RFC 7009 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// A refresh token: its app session has ended, and every token of it.
    Session,
    /// An access token: it is refused from now on; its session goes on.
    AccessToken,
    /// Unknown, expired, already ended, or another client's: nothing changed.
    Nothing,
}

/// RFC 7009: revokes `token` when it is `client`'s.
pub async fn revoke(
    store: &Store,
    keyring: &Keyring,
    issuer: &str,
    client: &ClientRecord,
    token: &str,
) -> Result<Revoked, StoreError> {
    match classify(client, token) {
        Presented::Refresh { token, hash, .. } => {
            let ended = store
                .revoke_refresh(&token.user_id, &token.sid, &hash, now_ms())
                .await?;
            Ok(if ended {
                Revoked::Session
            } else {
                Revoked::Nothing
            })
        }
        Presented::Access(jwt) => {
            let Some(claims) = own_access_claims(keyring, issuer, client, jwt).await else {
                return Ok(Revoked::Nothing);
            };
            store
                .revoke_access(&claims.sub, &claims.jti, claims.remaining_ms(), now_ms())
                .await?;
            Ok(Revoked::AccessToken)
        }
        Presented::Unknown => Ok(Revoked::Nothing),
    }
}

/// RFC 7662 §2.2's answer. Inactive is `{"active": false}` and nothing else.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The app session the token belongs to (what the devices page lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl Introspection {
    pub fn inactive() -> Introspection {
        Introspection::default()
    }
}

/// RFC 7662: whether `token`, one of `client`'s, can be used now: signed by us and not
/// expired, not revoked, its session alive and its account open.
pub async fn introspect(
    store: &Store,
    keyring: &Keyring,
    issuer: &str,
    client: &ClientRecord,
    token: &str,
) -> Result<Introspection, StoreError> {
    match classify(client, token) {
        Presented::Refresh { token, scope, hash } => {
            let issued = store
                .refresh_status(&token.user_id, &token.sid, &hash, now_ms())
                .await?;
            Ok(match issued {
                Some(ms) => Introspection {
                    active: true,
                    scope: Some(scope),
                    client_id: Some(client.client_id.clone()),
                    token_type: Some("refresh_token"),
                    iat: Some((ms / 1000).max(0) as u64),
                    sub: Some(token.user_id),
                    iss: Some(issuer.to_string()),
                    sid: Some(token.sid),
                    ..Introspection::default()
                },
                None => Introspection::inactive(),
            })
        }
        Presented::Access(jwt) => introspect_access(store, keyring, issuer, client, jwt).await,
        Presented::Unknown => Ok(Introspection::inactive()),
    }
}

/// An access token: `client`'s (checked before the store is asked), then the one
/// check every use of it gets (`grants::check_access`).
async fn introspect_access(
    store: &Store,
    keyring: &Keyring,
    issuer: &str,
    client: &ClientRecord,
    jwt: &str,
) -> Result<Introspection, StoreError> {
    if own_access_claims(keyring, issuer, client, jwt)
        .await
        .is_none()
    {
        return Ok(Introspection::inactive());
    }
    let claims = match grants::check_access(store, keyring, issuer, jwt).await {
        Ok(access) => access.claims,
        Err(AccessError::Store(e)) => return Err(e),
        Err(AccessError::Token(_) | AccessError::Ended) => return Ok(Introspection::inactive()),
    };
    Ok(Introspection {
        active: true,
        scope: Some(claims.scope),
        client_id: Some(claims.client_id),
        token_type: Some("Bearer"),
        exp: Some(claims.exp),
        iat: Some(claims.iat),
        sub: Some(claims.sub),
        aud: Some(claims.aud),
        iss: Some(claims.iss),
        jti: Some(claims.jti),
        sid: Some(claims.sid),
    })
}
