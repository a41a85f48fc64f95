//! The OpenID Connect provider's machine endpoints: discovery, JWKS, the token
//! endpoint and userinfo. Errors are JSON (RFC 6749 §5.2, RFC 6750 §3.1) and every
//! answer is `no-store` (the security-headers fairing), discovery and JWKS included
//! (a rotation is then seen at once).

use rocket::fairing::AdHoc;
use rocket::form::{Form, FromForm};
use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::{get, post, routes, Route, State};
use serde::Serialize;
use serde_json::{json, Value};

use crate::accounts::{AccountError, Accounts};
use crate::config::Settings;
use crate::http::request::{AuthorizationHeader, ClientIp};
use crate::services::oidc::clients::{self, AuthError, ClientCredentials};
use crate::services::oidc::grants::{self, AccessError, GrantError};
use crate::services::oidc::keys::{Alg, KeyError};
use crate::services::oidc::Keyring;
use crate::services::sessions::access_tokens::TokenError;
use crate::services::signin::limits::{self, Throttled};
use crate::services::Services;
use crate::store::StoreError;
use crate::support::clock::retry_after_secs;
use crate::support::report::Report;

/// An OAuth error answer: `{"error", "error_description"}` with its status and, for
/// 401, its challenge.
#[derive(Debug)]
pub struct OAuthError {
    pub status: Status,
    pub code: &'static str,
    pub description: String,
    pub challenge: Option<String>,
    /// 429: seconds to wait (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(status: Status, code: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            code,
            description: description.into(),
            challenge: None,
            retry_after: None,
        }
    }

    /// 429 with `Retry-After`: this client id or this address failed to authenticate
    /// too often (`counted`).
    pub fn throttled(t: Throttled) -> Self {
        let secs = retry_after_secs(t.retry_after);
        OAuthError {
            retry_after: Some(secs),
            ..OAuthError::new(
                Status::TooManyRequests,
                "too_many_requests",
                format!("Too many failed client authentications; try again in {secs} seconds."),
            )
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        OAuthError::new(Status::BadRequest, "invalid_request", description)
    }

    /// RFC 6749 §5.2: 401 with a challenge for the scheme the client tried.
    pub fn invalid_client() -> Self {
        OAuthError {
            challenge: Some("Basic realm=\"latchkey\"".into()),
            ..OAuthError::new(
                Status::Unauthorized,
                "invalid_client",
                "Client authentication failed.",
            )
        }
    }

    /// RFC 6750 §3.1: a bad or ended token at a resource (userinfo).
    pub fn invalid_token(description: impl Into<String>) -> Self {
        let description = description.into();
        OAuthError {
            challenge: Some(format!(
                "Bearer realm=\"latchkey\", error=\"invalid_token\", error_description=\"{}\"",
                description.replace(['"', '\\'], "")
            )),
            ..OAuthError::new(Status::Unauthorized, "invalid_token", description)
        }
    }

    /// Our failure, not the client's: 503 (logged once here).
    pub fn unavailable(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::warn!(error = %Report(cause), "OpenID Connect endpoint answering 503");
        OAuthError::new(
            Status::ServiceUnavailable,
            "temporarily_unavailable",
            "Latchkey cannot answer right now; please try again.",
        )
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        OAuthError::unavailable(&e)
    }
}

impl From<AccountError> for OAuthError {
    fn from(e: AccountError) -> Self {
        OAuthError::unavailable(&e)
    }
}

impl From<KeyError> for OAuthError {
    fn from(e: KeyError) -> Self {
        tracing::error!(error = %Report(&e), "signing a token failed");
        OAuthError::new(
            Status::InternalServerError,
            "server_error",
            "The token could not be signed.",
        )
    }
}

impl From<AuthError> for OAuthError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Failed => OAuthError::invalid_client(),
            AuthError::Accounts(e) => e.into(),
        }
    }
}

impl From<GrantError> for OAuthError {
    fn from(e: GrantError) -> Self {
        match e {
            GrantError::InvalidGrant(m) => OAuthError::new(Status::BadRequest, "invalid_grant", m),
            GrantError::InvalidRequest(m) => OAuthError::invalid_request(m),
            GrantError::Store(e) => e.into(),
            GrantError::Accounts(e) => e.into(),
            GrantError::Keys(e) => e.into(),
        }
    }
}

impl<'r> Responder<'r, 'static> for OAuthError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let body = json!({ "error": self.code, "error_description": self.description });
        let mut res = Json(body).respond_to(req)?;
        res.set_status(self.status);
        res.set_header(Header::new("Pragma", "no-cache"));
        if let Some(c) = self.challenge {
            res.set_header(Header::new("WWW-Authenticate", c));
        }
        if let Some(secs) = self.retry_after {
            res.set_header(Header::new("Retry-After", secs.to_string()));
        }
        Ok(res)
    }
}

pub use crate::services::oidc::grants::issuer;

#[get("/.well-known/openid-configuration")]
fn discovery(settings: &State<Settings>) -> Json<Value> {
    let iss = issuer(settings);
    Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth2/authorize"),
        "token_endpoint": format!("{iss}/oauth2/token"),
        "userinfo_endpoint": format!("{iss}/oauth2/userinfo"),
        "jwks_uri": format!("{iss}/oauth2/jwks"),
        "revocation_endpoint": format!("{iss}/oauth2/revoke"),
        "introspection_endpoint": format!("{iss}/oauth2/introspect"),
        "end_session_endpoint": format!("{iss}/oauth2/logout"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": Alg::ALL.map(Alg::name),
        "scopes_supported": grants::SCOPES,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "sid", "email", "email_verified"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": false,
    }))
}

#[get("/oauth2/jwks")]
async fn jwks(keyring: &State<Keyring>) -> Result<Json<Value>, OAuthError> {
    Ok(Json(keyring.jwks().await?))
}

/// The token request, every value of a field kept so a repeated one is refused
/// (RFC 6749 §3.2).
#[derive(FromForm)]
pub struct TokenForm {
    grant_type: Vec<String>,
    code: Vec<String>,
    redirect_uri: Vec<String>,
    code_verifier: Vec<String>,
    refresh_token: Vec<String>,
    client_id: Vec<String>,
    client_secret: Vec<String>,
}

/// One value of a form field: none, or one; repeated is an error.
pub fn one(name: &str, mut values: Vec<String>) -> Result<Option<String>, OAuthError> {
    match values.len() {
        0 => Ok(None),
        1 => Ok(values.pop().filter(|v| !v.is_empty())),
        _ => Err(OAuthError::invalid_request(format!(
            "The parameter {name} is repeated."
        ))),
    }
}

/// The client's credentials from the header and the form (client_id, client_secret).
pub fn credentials(
    header: &AuthorizationHeader,
    client_id: Vec<String>,
    client_secret: Vec<String>,
) -> Result<ClientCredentials, OAuthError> {
    let mut creds = ClientCredentials::from_header(header.0.as_deref());
    creds.form_id = one("client_id", client_id)?;
    creds.form_secret = one("client_secret", client_secret)?;
    Ok(creds)
}

#[post("/oauth2/token", data = "<form>")]
async fn token(
    s: Services<'_>,
    keyring: &State<Keyring>,
    header: AuthorizationHeader,
    form: Form<TokenForm>,
    ip: ClientIp,
) -> Result<NoCache<Json<grants::Tokens>>, OAuthError> {
    let named = named_client(&header, &form.client_id);
    let answer = token_answer(s, keyring, header, form.into_inner());
    counted(&s, &ip, named.as_deref(), answer)
        .await
        .map(NoCache)
}

/// A successful token answer: `Pragma: no-cache` beside the fairing's
/// `Cache-Control: no-store`, as the error answers carry it (RFC 6749 §5.1).
pub struct NoCache<R>(pub R);

impl<'r, R: Responder<'r, 'static>> Responder<'r, 'static> for NoCache<R> {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut res = self.0.respond_to(req)?;
        res.set_header(Header::new("Pragma", "no-cache"));
        Ok(res)
    }
}

async fn token_answer(
    s: Services<'_>,
    keyring: &Keyring,
    header: AuthorizationHeader,
    f: TokenForm,
) -> Result<Json<grants::Tokens>, OAuthError> {
    let grant_type = one("grant_type", f.grant_type)?;
    let code = one("code", f.code)?;
    let redirect_uri = one("redirect_uri", f.redirect_uri)?;
    let verifier = one("code_verifier", f.code_verifier)?;
    let refresh_token = one("refresh_token", f.refresh_token)?;
    let creds = credentials(&header, f.client_id, f.client_secret)?;
    let grant = match grant_type.as_deref() {
        None => return Err(OAuthError::invalid_request("grant_type is required.")),
        Some(g @ ("authorization_code" | "refresh_token")) => g.to_string(),
        Some(_) => {
            return Err(OAuthError::new(
                Status::BadRequest,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token.",
            ))
        }
    };
    let client = clients::authenticate(s.accounts, &creds).await?;
    let tokens = if grant == "authorization_code" {
        let code = code.ok_or_else(|| OAuthError::invalid_request("code is required."))?;
        grants::exchange_code(
            s,
            keyring,
            &client,
            &code,
            redirect_uri.as_deref(),
            verifier.as_deref(),
        )
        .await?
    } else {
        let rt = refresh_token
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is required."))?;
        grants::refresh(s, keyring, &client, &rt).await?
    };
    Ok(Json(tokens))
}

/// The client id a request names, for counting its failures: the Basic credentials' id,
/// else the form's `client_id` (when it holds one value).
pub fn named_client(header: &AuthorizationHeader, form_ids: &[String]) -> Option<String> {
    let from_header = ClientCredentials::from_header(header.0.as_deref()).basic;
    match (from_header, form_ids) {
        (Some((id, _)), _) => Some(id),
        (None, [id]) => Some(id.clone()),
        (None, _) => None,
    }
}

/// `answer`, with a failed client authentication counted (`limits::oauth_client_failure`:
/// per `client` named and per address): past either quota the answer is 429 with
/// `Retry-After` instead of `invalid_client`. Nothing else is counted or refused.
pub async fn counted<T>(
    s: &Services<'_>,
    ip: &ClientIp,
    client: Option<&str>,
    answer: impl std::future::Future<Output = Result<T, OAuthError>>,
) -> Result<T, OAuthError> {
    let answer = answer.await;
    if !matches!(&answer, Err(e) if e.code == "invalid_client") {
        return answer;
    }
    let limits = &s.settings.limits;
    match limits::oauth_client_failure(s.store, limits, &ip.text(), client).await {
        Ok(Ok(_counted)) => answer,
        Ok(Err(t)) => Err(OAuthError::throttled(t)),
        Err(e) => {
            // The refusal stands; only its count is lost.
            tracing::warn!(error = %Report(&e), "a failed client authentication was not counted");
            answer
        }
    }
}

/// A token request whose body is not a form.
#[post("/oauth2/token", rank = 2)]
fn token_not_form() -> OAuthError {
    OAuthError::invalid_request("The body must be application/x-www-form-urlencoded.")
}

/// The Bearer token of a resource request (RFC 6750 §2.1).
fn bearer(header: &AuthorizationHeader) -> Result<&str, OAuthError> {
    let Some(h) = header.0.as_deref() else {
        return Err(OAuthError {
            challenge: Some("Bearer realm=\"latchkey\"".into()),
            ..OAuthError::new(
                Status::Unauthorized,
                "invalid_token",
                "An access token is required.",
            )
        });
    };
    h.strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_token("Not a Bearer token."))
}

/// The userinfo answer (OpenID Connect Core §5.3.2), serialized straight from the
/// checked token and the session's email: no JSON map is built.
#[derive(Serialize)]
struct UserInfo {
    sub: uuid::Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
}

async fn userinfo_answer(
    s: Services<'_>,
    keyring: &Keyring,
    header: AuthorizationHeader,
) -> Result<Json<UserInfo>, OAuthError> {
    let token = bearer(&header)?;
    let access = grants::check_access(s.store, keyring, &issuer(s.settings), token)
        .await
        .map_err(|e| match e {
            AccessError::Store(e) => e.into(),
            AccessError::Ended => OAuthError::invalid_token("The session has ended."),
            AccessError::Token(TokenError::Expired) => {
                OAuthError::invalid_token("The access token has expired.")
            }
            AccessError::Token(_) => OAuthError::invalid_token("The access token is invalid."),
        })?;
    let with_email = access.claims.has_scope("email");
    Ok(Json(UserInfo {
        sub: access.claims.sub,
        email_verified: with_email.then_some(access.email_verified),
        email: with_email.then_some(access.email),
    }))
}

#[get("/oauth2/userinfo")]
async fn userinfo(
    s: Services<'_>,
    keyring: &State<Keyring>,
    header: AuthorizationHeader,
) -> Result<Json<UserInfo>, OAuthError> {
    userinfo_answer(s, keyring, header).await
}

#[post("/oauth2/userinfo")]
async fn userinfo_post(
    s: Services<'_>,
    keyring: &State<Keyring>,
    header: AuthorizationHeader,
) -> Result<Json<UserInfo>, OAuthError> {
    userinfo_answer(s, keyring, header).await
}

pub fn routes() -> Vec<Route> {
    routes![
        discovery,
        jwks,
        token,
        token_not_form,
        userinfo,
        userinfo_post
    ]
}

/// Opens the keyring (its first key is made when first needed) and mounts the
/// endpoints.
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("OpenID Connect", |rocket| async move {
        let (Some(settings), Some(accounts)) =
            (rocket.state::<Settings>(), rocket.state::<Accounts>())
        else {
            tracing::error!("OpenID Connect needs the settings and accounts stages first");
            return Err(rocket);
        };
        match Keyring::open(accounts.clone(), settings).await {
            Ok(keyring) => Ok(rocket.manage(keyring).mount("/", routes())),
            Err(e) => {
                let msg = format!("signing keys: {}", Report(&e));
                tracing::error!("{msg}");
                eprintln!("latchkey: {msg}");
                Err(rocket)
            }
        }
    })
}
