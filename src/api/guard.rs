//! The Bearer guard: `Authorization: Bearer <access JWT>` → the API session it names.
//!
//! One store call per request (`touch_session` with the token's `jti`): it checks the
//! session lives and refuses a revoked token, one round trip (and slides the idle
//! timeout when that is due). The
//! outcome is cached on the request, so the `/api` 401 catcher (`error.rs`) can say
//! why a request was refused (Rocket hands catchers only the status).

use std::sync::Arc;

use rocket::http::Status;
use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};
use uuid::Uuid;

use crate::services::sessions::access_tokens::{AccessClaims, AccessTokens, TokenError};
use crate::store::{Amr, SessionKind, Sessions, Store, StoreError};
use crate::support::clock::now_ms;
use crate::support::report::Report;

/// An authenticated API request.
#[derive(Debug, Clone)]
pub struct ApiSession {
    pub user_id: Uuid,
    pub sid: String,
    /// The account's email, from the session check itself (no database read).
    pub email: String,
    /// Whether the account's address is verified, from the same check.
    pub email_verified: bool,
    /// How the session signed in, from the same check.
    pub amr: Amr,
    pub claims: AccessClaims,
}

/// Why the guard refused a request.
#[derive(Debug, Clone)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` header (absent, or another scheme such as Basic).
    Missing,
    /// A header that is not one Bearer token.
    Malformed,
    Expired,
    /// Bad signature, algorithm, issuer, audience or claims.
    Invalid,
    /// A well-formed token whose session has ended or whose `jti` was revoked.
    Revoked,
    /// The store did not answer (503, not 401).
    Unavailable(Arc<StoreError>),
    /// The API stage did not attach its state: a bug.
    NotConfigured,
}

impl AuthFailure {
    /// Fixed text: safe inside a `WWW-Authenticate` quoted string.
    pub fn description(&self) -> &'static str {
        match self {
            AuthFailure::Missing => "An access token is required: Authorization: Bearer <token>.",
            AuthFailure::Malformed => "The Authorization header is not a single Bearer token.",
            AuthFailure::Expired => "The access token has expired.",
            AuthFailure::Invalid => "The access token is invalid.",
            AuthFailure::Revoked => "The access token has been revoked or its session has ended.",
            AuthFailure::Unavailable(_) | AuthFailure::NotConfigured => {
                "The service is temporarily unavailable."
            }
        }
    }
}

struct Checked(Result<ApiSession, AuthFailure>);

/// The token in `Authorization: Bearer <token>` (scheme case-insensitive, RFC 7235
/// §2.1). `Err(Missing)` when no Bearer credentials were sent at all.
fn bearer_token<'a>(req: &'a Request<'_>) -> Result<&'a str, AuthFailure> {
    let mut headers = req.headers().get("Authorization");
    let Some(value) = headers.next() else {
        return Err(AuthFailure::Missing);
    };
    if headers.next().is_some() {
        return Err(AuthFailure::Malformed);
    }
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthFailure::Missing);
    }
    let token = rest.trim_start_matches(' ');
    // A JWT is ASCII: a byte test (not a walk over Unicode whitespace) on every request.
    if token.is_empty() || !token.is_ascii() || token.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(AuthFailure::Malformed);
    }
    Ok(token)
}

async fn check(req: &Request<'_>) -> Result<ApiSession, AuthFailure> {
    let token = bearer_token(req)?;
    let (Some(tokens), Some(store)) = (
        req.rocket().state::<AccessTokens>(),
        req.rocket().state::<Store>(),
    ) else {
        return Err(AuthFailure::NotConfigured);
    };
    let claims = tokens.verify(token).map_err(|e| {
        tracing::debug!(error = %e, "refused an access token");
        match e {
            TokenError::Expired => AuthFailure::Expired,
            TokenError::Malformed => AuthFailure::Malformed,
            _ => AuthFailure::Invalid,
        }
    })?;
    let live = store
        .touch_session(&claims.sub, &claims.sid, Some(&claims.jti), now_ms())
        .await
        .map_err(|e| {
            tracing::warn!(error = %Report(&e), path = %req.uri().path(), "API: store unavailable");
            AuthFailure::Unavailable(Arc::new(e))
        })?;
    match live {
        // Tokens are issued only for API sessions; a browser session's id in a
        // token means the token is not ours.
        Some(s) if s.kind == SessionKind::Api => Ok(ApiSession {
            user_id: claims.sub,
            sid: claims.sid.clone(),
            email: s.email,
            email_verified: s.email_verified,
            amr: s.amr,
            claims,
        }),
        _ => Err(AuthFailure::Revoked),
    }
}

async fn checked<'r>(req: &'r Request<'_>) -> &'r Checked {
    req.local_cache_async(async { Checked(check(req).await) })
        .await
}

/// The guard's failure on this request, if it ran and failed.
pub fn cached_failure(req: &Request<'_>) -> Option<AuthFailure> {
    // The guard fills the cache first; here an empty one stays "did not run".
    let c: &Checked = req.local_cache(|| Checked(Err(AuthFailure::Missing)));
    c.0.as_ref().err().cloned()
}

/// A refusal goes to the catchers with its status: 401 (the `/api` catcher adds the
/// Bearer challenge from the cached failure), or 503/500 when the fault is ours.
#[rocket::async_trait]
impl<'r> FromRequest<'r> for ApiSession {
    type Error = AuthFailure;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, AuthFailure> {
        match &checked(req).await.0 {
            Ok(s) => Outcome::Success(s.clone()),
            Err(f @ AuthFailure::Unavailable(_)) => {
                Outcome::Error((Status::ServiceUnavailable, f.clone()))
            }
            Err(f @ AuthFailure::NotConfigured) => {
                Outcome::Error((Status::InternalServerError, f.clone()))
            }
            Err(f) => Outcome::Error((Status::Unauthorized, f.clone())),
        }
    }
}
