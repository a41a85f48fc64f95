//! Authorization codes, the app sessions they start and the tokens those get; and
//! the one check of an app's access token (userinfo, introspection, revocation).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::claims::{verify_access, AppAccessClaims, IdClaims, ACCESS_TYP};
use super::keys::{Alg, KeyError, Keyring, ACCESS_ALG};
use crate::accounts::{AccountError, ClientRecord};
use crate::services::sessions::access_tokens::{RefreshToken, TokenError};
use crate::services::sessions::refresh::{self, Refreshed};
use crate::services::sessions::{self, app_secret_hash, sid_for, Origin, SessionSpec};
use crate::services::Services;
use crate::store::{
    Amr, AuthCodeState, AuthCodes, Redeemed, SessionKind, Sessions, Store, StoreError,
};
use crate::support::clock::now_ms;
use crate::support::crypto::{constant_time_eq, random_token};
use crate::support::input::Label;

/// An authorization code is good for 60 seconds, once.
pub const CODE_TTL_MS: i64 = 60_000;

/// The scopes we know, in the order the consent page lists them.
pub const SCOPES: [&str; 4] = ["openid", "email", "profile", "offline_access"];

/// A `scope` parameter: known scopes only (unknown ones are dropped, RFC 6749 §3.3
/// lets the server narrow the request), `openid` required; in our order, deduplicated.
pub fn parse_scope(scope: &str) -> Result<Vec<&'static str>, String> {
    let asked: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    if !asked.contains(&"openid") {
        return Err("the scope must include openid".into());
    }
    Ok(SCOPES.into_iter().filter(|s| asked.contains(s)).collect())
}

/// What a code stands for: the authorization the user gave, as the token endpoint
/// must check it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    /// The S256 code challenge, when one was sent.
    pub challenge: Option<String>,
    /// When the user signed in (unix seconds).
    pub auth_time: u64,
    pub amr: Vec<String>,
    /// The browser's address at consent (shown on the devices page for the app).
    pub ip: String,
    pub issued_ms: i64,
    /// The browser session that allowed the code: the code ends with it (signed out
    /// before the app redeems it, the code is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_sid: Option<String>,
}

/// Stores a code for `req`; answers the code (`UID.SECRET`).
pub async fn issue_code(
    store: &Store,
    user_id: &Uuid,
    req: &CodeRequest,
) -> Result<String, StoreError> {
    let secret = random_token();
    let json = serde_json::to_string(req).unwrap_or_default();
    store
        .put_auth_code(
            user_id,
            &code_id(&req.client_id, &secret),
            &json,
            CODE_TTL_MS,
            now_ms(),
        )
        .await?;
    Ok(format!("{user_id}.{secret}"))
}

/// A token request refused (RFC 6749 §5.2), or a failure of ours (503/500).
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("{0}")]
    InvalidRequest(&'static str),
    #[error("the session store is unavailable")]
    Store(#[from] StoreError),
    #[error("the account database failed")]
    Accounts(#[from] AccountError),
    #[error("signing failed")]
    Keys(#[from] KeyError),
}

/// The token response (RFC 6749 §5.1, OpenID Connect §3.1.3.3).
#[derive(Debug, Serialize)]
pub struct Tokens {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// The key a code is stored under: bound to the client it was issued to, so another
/// client presenting it (even a spent one) finds nothing and cannot end the session
/// the code's first use started.
fn code_id(client_id: &str, secret: &str) -> String {
    sid_for(&format!("{client_id}\n{secret}"))
}

fn parse_code(code: &str) -> Option<(Uuid, String)> {
    let (uid, secret) = code.split_once('.')?;
    let ok = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    Some((Uuid::parse_str(uid).ok()?, secret.to_string())).filter(|_| ok)
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn is_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// BASE64URL(SHA-256(verifier)), RFC 7636 §4.2.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The scopes as the refresh token carries them (one letter each), so a refresh
/// keeps them without a store read; the letters are part of what the stored hash
/// covers, so they cannot be changed.
fn scope_letters(scope: &str) -> String {
    scope
        .split(' ')
        .filter_map(|s| match s {
            "openid" => Some('o'),
            "email" => Some('e'),
            "profile" => Some('p'),
            "offline_access" => Some('f'),
            _ => None,
        })
        .collect()
}

fn scope_from_letters(letters: &str) -> Option<String> {
    let mut out = Vec::new();
    for c in letters.chars() {
        out.push(match c {
            'o' => "openid",
            'e' => "email",
            'p' => "profile",
            'f' => "offline_access",
            _ => return None,
        });
    }
    Some(out.join(" "))
}

/// An app's refresh token: `UID.SID.SECRET.SCOPES`.
fn refresh_token(user_id: Uuid, sid: &str, secret: &str, letters: &str) -> String {
    format!(
        "{}.{letters}",
        RefreshToken::new(user_id, sid.to_string(), secret.to_string())
    )
}

async fn access_token(
    keyring: &Keyring,
    s: Services<'_>,
    client_id: &str,
    user_id: Uuid,
    sid: &str,
    scope: &str,
) -> Result<(String, u64), KeyError> {
    let iat = (now_ms() / 1000).max(0) as u64;
    let ttl = s.settings.tokens.access_ttl.as_secs();
    let claims = AppAccessClaims {
        iss: issuer(s.settings),
        sub: user_id,
        aud: client_id.to_string(),
        client_id: client_id.to_string(),
        scope: scope.to_string(),
        sid: sid.to_string(),
        jti: random_token(),
        iat,
        exp: iat + ttl,
    };
    Ok((keyring.sign(ACCESS_ALG, ACCESS_TYP, &claims).await?, ttl))
}

/// The issuer every token names and discovery publishes: `public_url` without a
/// trailing slash.
pub fn issuer(settings: &crate::config::Settings) -> String {
    settings.server.public_url.trim_end_matches('/').to_string()
}

const USED: GrantError =
    GrantError::InvalidGrant("the code was used already; what it gave is revoked");
const SPENT: GrantError = GrantError::InvalidGrant("the code was used already");
const SIGNED_OUT: GrantError =
    GrantError::InvalidGrant("the browser session that allowed the code has signed out");
const GONE: GrantError = GrantError::InvalidGrant("the code is unknown or expired");
const NO_LONGER: GrantError = GrantError::InvalidGrant("the authorization is no longer valid");

/// The `authorization_code` grant for an authenticated `client`: the code must be
/// this client's, for this `redirect_uri`, with the right PKCE verifier (a mismatch
/// is refused and leaves the code usable by its rightful holder); then an app session
/// starts and the code is used up in one step with it
/// (`AuthCodes::redeem_auth_code`), unless the browser session that allowed it has
/// signed out since. A code used before ends what its first use started — only when
/// presented by a request that would have redeemed it (`read_code`): its own client
/// (the code's key is bound to that client, `code_id`, so another client's attempt
/// reads no code at all), its `redirect_uri` and its PKCE verifier; anything less is a
/// plain invalid_grant that ends nothing.
pub async fn exchange_code(
    s: Services<'_>,
    keyring: &Keyring,
    client: &ClientRecord,
    code: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<Tokens, GrantError> {
    let (user_id, secret) = parse_code(code).ok_or(GONE)?;
    let id = code_id(&client.client_id, &secret);
    let req = read_code(s, client, (&user_id, &id), redirect_uri, verifier).await?;
    let user = s
        .accounts
        .find_by_id(&user_id)
        .await?
        .filter(|u| u.disabled_at.is_none() && u.password_changed_at <= req.issued_ms)
        .ok_or(NO_LONGER)?;
    let letters = scope_letters(&req.scope);
    let offline = req.scope.split(' ').any(|x| x == "offline_access");
    // The app's name, as registered (and held to the label rule since).
    let name = Label::lossy(&client.name).unwrap_or_else(|| Label::ours("App"));
    let origin = Origin {
        label: name.clone(),
        user_agent: String::new(),
        ip: req.ip.clone(),
    };
    let spec = SessionSpec::App {
        client_id: client.client_id.clone(),
        name,
        offline,
        // The refresh token is bound to the client and its scopes.
        bound_to: format!("{}\n{letters}", client.client_id),
    };
    // The app session signed in as the browser session did (its devices-page line).
    let amr = Amr::from_values(&req.amr);
    let started = sessions::start(s.store, s.settings, &user, &origin, spec, amr)
        .await?
        .ok_or(NO_LONGER)?;
    let allowed_by = req.browser_sid.as_deref();
    match s
        .store
        .redeem_auth_code(&user_id, &id, Some(&started.sid), allowed_by, now_ms())
        .await?
    {
        Redeemed::Yes => {}
        Redeemed::Replayed => return Err(USED),
        Redeemed::Gone => return Err(GONE),
        Redeemed::AllowedByEnded => return Err(SIGNED_OUT),
    }
    let refresh = offline.then(|| refresh_token(user_id, &started.sid, &started.secret, &letters));
    code_tokens(s, keyring, client, &user, &started.sid, req, refresh).await
}

/// The request an unused code stands for, checked for this token request
/// (`check_code`). A used one counts as a replay only when this request would have
/// redeemed it (client, `redirect_uri` and PKCE verifier all right): then what its
/// first use started ends, and it is refused. Anything else is refused and ends
/// nothing: a public client's id alone, which anyone may send, is not enough.
async fn read_code(
    s: Services<'_>,
    client: &ClientRecord,
    (user_id, id): (&Uuid, &str),
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<CodeRequest, GrantError> {
    let now = now_ms();
    let parse = |json: &str| serde_json::from_str::<CodeRequest>(json);
    match s.store.get_auth_code(user_id, id, now).await? {
        None => Err(GONE),
        Some(AuthCodeState::Unused(json)) => {
            let req = parse(&json).map_err(|_| GONE)?;
            check_code(&req, client, redirect_uri, verifier)?;
            Ok(req)
        }
        Some(AuthCodeState::Used { request, .. }) => {
            // A code used before its request was kept cannot be checked: refused only.
            let req = parse(&request).map_err(|_| SPENT)?;
            check_code(&req, client, redirect_uri, verifier)?;
            s.store
                .redeem_auth_code(user_id, id, None, None, now)
                .await?;
            tracing::warn!(user = %user_id, client = %client.client_id, "an authorization code was used twice: its app session is ended");
            Err(USED)
        }
    }
}

/// The access token and id_token of a code's first use.
async fn code_tokens(
    s: Services<'_>,
    keyring: &Keyring,
    client: &ClientRecord,
    user: &crate::accounts::User,
    sid: &str,
    req: CodeRequest,
    refresh_token: Option<String>,
) -> Result<Tokens, GrantError> {
    let (access, expires_in) =
        access_token(keyring, s, &client.client_id, user.id, sid, &req.scope).await?;
    let iat = (now_ms() / 1000).max(0) as u64;
    let with_email = req.scope.split(' ').any(|x| x == "email");
    let id_claims = IdClaims {
        iss: issuer(s.settings),
        sub: user.id,
        aud: client.client_id.clone(),
        exp: iat + expires_in,
        iat,
        auth_time: req.auth_time,
        nonce: req.nonce,
        amr: req.amr,
        sid: sid.to_string(),
        email: with_email.then(|| user.email.clone()),
        email_verified: with_email.then_some(user.email_verified()),
    };
    Ok(Tokens {
        access_token: access,
        token_type: "Bearer",
        expires_in,
        id_token: Some(
            keyring
                .sign(id_token_alg(client), "JWT", &id_claims)
                .await?,
        ),
        refresh_token,
        scope: req.scope,
    })
}

/// The algorithm the client registered for its id_tokens; RS256 when it names none we
/// know (the column is checked when the client is added).
pub fn id_token_alg(client: &ClientRecord) -> Alg {
    Alg::parse(&client.id_token_signed_response_alg).unwrap_or(Alg::Rs256)
}

fn check_code(
    req: &CodeRequest,
    client: &ClientRecord,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<(), GrantError> {
    if req.client_id != client.client_id {
        return Err(GrantError::InvalidGrant(
            "the code was issued to another client",
        ));
    }
    if redirect_uri != Some(req.redirect_uri.as_str()) {
        return Err(GrantError::InvalidGrant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    match (&req.challenge, verifier) {
        (Some(challenge), Some(v)) if is_verifier(v) && constant_time_eq(challenge, &s256(v)) => {
            Ok(())
        }
        (Some(_), Some(_)) => Err(GrantError::InvalidGrant("the code_verifier does not match")),
        (Some(_), None) => Err(GrantError::InvalidGrant("code_verifier is required")),
        // RFC 9700 §2.1.1: a verifier for a code without a challenge is a downgrade.
        (None, Some(_)) => Err(GrantError::InvalidGrant(
            "no code_challenge was sent for this code",
        )),
        (None, None) if client.secret_hash.is_none() => {
            Err(GrantError::InvalidGrant("a public client must use PKCE"))
        }
        (None, None) => Ok(()),
    }
}

/// An app's refresh token as `client` presents it: the token, its scopes, and the hash
/// the session stores for it (what `refresh`, revocation and introspection compare).
/// `None` when it is not one of ours at all.
pub fn parse_app_refresh(client_id: &str, token: &str) -> Option<(RefreshToken, String, String)> {
    let (rt, letters, scope) = split_app_refresh(token)?;
    let hash = app_secret_hash(&format!("{client_id}\n{letters}"), &rt.secret);
    Some((rt, scope, hash))
}

/// An app's refresh token read: the token, its scope letters and its scopes.
fn split_app_refresh(token: &str) -> Option<(RefreshToken, &str, String)> {
    let (base, letters) = token.rsplit_once('.')?;
    let rt = RefreshToken::parse(base)?;
    let scope = scope_from_letters(letters)?;
    Some((rt, letters, scope))
}

/// The `refresh_token` grant for an authenticated `client`: rotates through the same
/// step as the API's refresh tokens (`refresh::refresh_hashed`, with the grace window):
/// a spent token ends the session.
pub async fn refresh(
    s: Services<'_>,
    keyring: &Keyring,
    client: &ClientRecord,
    token: &str,
) -> Result<Tokens, GrantError> {
    let invalid = GrantError::InvalidGrant("the refresh token is invalid or was revoked");
    let Some((rt, letters, scope)) = split_app_refresh(token) else {
        return Err(invalid);
    };
    // The successor is derived from the presented secret (`refresh`), so a retry
    // within the grace window is answered with the same one.
    let bound_to = format!("{}\n{letters}", client.client_id);
    let stored_hash = |t: &RefreshToken| app_secret_hash(&bound_to, &t.secret);
    let next = match refresh::refresh_hashed(s.store, s.settings, &rt, stored_hash, now_ms())
        .await?
    {
        Refreshed::Current(next) => next,
        Refreshed::Replayed => {
            tracing::warn!(user = %rt.user_id, client = %client.client_id, "a spent refresh token was presented: the app session is ended");
            return Err(invalid);
        }
        Refreshed::Refused => return Err(invalid),
    };
    let (access, expires_in) =
        access_token(keyring, s, &client.client_id, rt.user_id, &rt.sid, &scope).await?;
    Ok(Tokens {
        access_token: access,
        token_type: "Bearer",
        expires_in,
        scope,
        id_token: None,
        refresh_token: Some(refresh_token(rt.user_id, &rt.sid, &next.secret, letters)),
    })
}

/// An app's access token that is good now: signature and claims
/// (`claims::verify_access`), then one store call that checks its session lives, its
/// `jti` is not revoked and the account is open.
#[derive(Debug, Clone)]
pub struct AppAccess {
    pub claims: AppAccessClaims,
    pub email: String,
    /// Whether the account's address is verified now (from the same store call).
    pub email_verified: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error("the session has ended")]
    Ended,
    #[error("the session store is unavailable")]
    Store(#[from] StoreError),
}

pub async fn check_access(
    store: &Store,
    keyring: &Keyring,
    issuer: &str,
    token: &str,
) -> Result<AppAccess, AccessError> {
    let claims = verify_access(keyring, issuer, token).await?;
    match store
        .touch_session(&claims.sub, &claims.sid, Some(&claims.jti), now_ms())
        .await?
    {
        Some(live) if live.kind == SessionKind::App => Ok(AppAccess {
            claims,
            email: live.email,
            email_verified: live.email_verified,
        }),
        _ => Err(AccessError::Ended),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_need_openid_and_keep_only_known_ones_in_order() {
        assert_eq!(
            parse_scope("email openid bogus openid"),
            Ok(vec!["openid", "email"])
        );
        assert!(parse_scope("email profile").is_err());
        let letters = scope_letters("openid email offline_access");
        assert_eq!(
            scope_from_letters(&letters).as_deref(),
            Some("openid email offline_access")
        );
        assert_eq!(scope_from_letters("ox"), None);
    }

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(!is_verifier("short"));
    }
}
