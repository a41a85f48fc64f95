//! `POST /api/v1/token`: the OAuth 2.0 token endpoint (RFC 6749 §4.3 password grant,
//! §6 refresh with rotation per RFC 9700 §4.14.2, and a grace window for the previous
//! token). The body may be form-encoded or JSON; both carry the same parameters.

use rocket::data::{self, Data, FromData, Limits};
use rocket::form::{Form, FromForm};
use rocket::http::{Header, Status};
use rocket::outcome::Outcome;
use rocket::request::Request;
use rocket::serde::json::Json;
use rocket::{post, State};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::ApiError;
use crate::accounts::User;
use crate::http::error::AppError;
use crate::http::request::RequestOrigin;
use crate::services::sessions::access_tokens::{AccessTokens, RefreshToken};
use crate::services::sessions::refresh::{self, Refreshed};
use crate::services::sessions::{Origin, SessionSpec};
use crate::services::signin::two_step::{self, CodeError};
use crate::services::signin::{self, Credentials, Passed, SignIn, SignInError, SignedIn};
use crate::services::Services;
use crate::support::clock::now_ms;
use crate::support::input::{Email, Label};

/// The token request's parameters, however they were sent.
/// Unknown parameters are ignored (RFC 6749 §3.2), in both encodings.
#[derive(Debug, Default, Deserialize)]
pub struct TokenParams {
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
    client_name: Option<String>,
    refresh_token: Option<String>,
    /// The one-time code of an account with a second factor (password grant).
    otp: Option<String>,
}

/// The form-encoded body: every value of a field is kept, so a repeated parameter
/// can be refused (RFC 6749 §3.2) instead of silently taking the first.
#[derive(FromForm)]
struct FormParams {
    grant_type: Vec<String>,
    username: Vec<String>,
    password: Vec<String>,
    client_name: Vec<String>,
    refresh_token: Vec<String>,
    otp: Vec<String>,
}

fn single(name: &str, mut values: Vec<String>) -> Result<Option<String>, ApiError> {
    match values.len() {
        0 => Ok(None),
        1 => Ok(values.pop()),
        _ => Err(ApiError::InvalidRequest(format!(
            "The parameter {name} is repeated."
        ))),
    }
}

impl TryFrom<FormParams> for TokenParams {
    type Error = ApiError;

    fn try_from(f: FormParams) -> Result<TokenParams, ApiError> {
        Ok(TokenParams {
            grant_type: single("grant_type", f.grant_type)?,
            username: single("username", f.username)?,
            password: single("password", f.password)?,
            client_name: single("client_name", f.client_name)?,
            refresh_token: single("refresh_token", f.refresh_token)?,
            otp: single("otp", f.otp)?,
        })
    }
}

#[rocket::async_trait]
impl<'r> FromData<'r> for TokenParams {
    type Error = ApiError;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let bad = |status: Status, what: &str| {
            if status == Status::PayloadTooLarge {
                Outcome::Error((status, ApiError::TooLarge))
            } else {
                Outcome::Error((
                    Status::BadRequest,
                    ApiError::InvalidRequest(format!("The request body could not be read: {what}")),
                ))
            }
        };
        match req.content_type() {
            Some(ct) if ct.is_form() => match Form::<FormParams>::from_data(req, data).await {
                Outcome::Success(f) => match TokenParams::try_from(f.into_inner()) {
                    Ok(p) => Outcome::Success(p),
                    Err(e) => Outcome::Error((Status::BadRequest, e)),
                },
                Outcome::Error((s, errors)) => {
                    tracing::debug!(?errors, "unreadable token form");
                    bad(s, "not a valid form")
                }
                Outcome::Forward(f) => Outcome::Forward(f),
            },
            Some(ct) if ct.is_json() => match Json::<TokenParams>::from_data(req, data).await {
                Outcome::Success(j) => Outcome::Success(j.into_inner()),
                Outcome::Error((s, e)) => {
                    let what = match &e {
                        rocket::serde::json::Error::Parse(_, e) => e.to_string(),
                        rocket::serde::json::Error::Io(_) => "unreadable".to_string(),
                    };
                    bad(s, &what)
                }
                Outcome::Forward(f) => Outcome::Forward(f),
            },
            // Any other type is refused; read up to the form limit first, so a body
            // over it answers 413 as a form or JSON body of that size would.
            _ => {
                let limit = req.limits().get("form").unwrap_or(Limits::FORM);
                match data.open(limit).into_bytes().await {
                    Ok(body) if !body.is_complete() => {
                        Outcome::Error((Status::PayloadTooLarge, ApiError::TooLarge))
                    }
                    _ => bad(Status::BadRequest, UNREAD_TYPE),
                }
            }
        }
    }
}

/// `invalid_grant` descriptions for an account with a second factor: the password was
/// right, the one-time code missing or not right (or already used).
const OTP_MISSING: &str = "A one-time code is required: send otp with a current code from your authenticator app, or a recovery code.";
const OTP_WRONG: &str =
    "A one-time code is required: the otp sent is not right or has already been used.";

const UNREAD_TYPE: &str = "send it as application/x-www-form-urlencoded or application/json.";

/// RFC 6749 §5.1 success body.
#[derive(Debug, Serialize)]
pub struct TokenBody {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
    session_id: String,
}

/// Token answers must not be cached by anyone (RFC 6749 §5.1).
#[derive(rocket::Responder)]
#[response(status = 200, content_type = "json")]
pub struct TokenAnswer {
    body: Json<TokenBody>,
    cache_control: Header<'static>,
    pragma: Header<'static>,
}

fn answer(
    tokens: &AccessTokens,
    user_id: &Uuid,
    refresh: RefreshToken,
) -> Result<TokenAnswer, ApiError> {
    let issued = tokens.issue(user_id, &refresh.sid)?;
    Ok(TokenAnswer {
        body: Json(TokenBody {
            access_token: issued.token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            session_id: refresh.sid.clone(),
            refresh_token: refresh.to_string(),
        }),
        cache_control: Header::new("Cache-Control", "no-store"),
        pragma: Header::new("Pragma", "no-cache"),
    })
}

/// A client's name for itself, as the devices page shows it; blank means none. A name
/// that breaks the label rule (too long, not printable) is refused, never quietly
/// changed.
fn client_label(name: Option<&str>) -> Result<Option<Label>, ApiError> {
    let Some(name) = name else { return Ok(None) };
    Label::parse(name).map_err(|e| ApiError::InvalidRequest(e.describe("client_name")))
}

fn required(value: Option<String>, name: &str) -> Result<String, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::InvalidRequest(format!("The parameter {name} is required.")))
}

#[post("/token", data = "<params>")]
pub async fn token(
    params: Result<TokenParams, ApiError>,
    origin: RequestOrigin,
    app: Services<'_>,
    tokens: &State<AccessTokens>,
) -> Result<TokenAnswer, ApiError> {
    let p = params?;
    match p.grant_type.as_deref() {
        None | Some("") => Err(ApiError::InvalidRequest(
            "The parameter grant_type is required.".into(),
        )),
        Some("password") => password_grant(p, &origin.0, app, tokens).await,
        Some("refresh_token") => refresh_grant(p, &app, tokens).await,
        Some(_) => Err(ApiError::UnsupportedGrantType),
    }
}

/// The sign-in page's sequence (`signin::sign_in`), answered with tokens: a wrong
/// password and an unknown account get the same `invalid_grant`. An account with a
/// second factor also needs `otp` (an authenticator-app code or a recovery code): one
/// missing or wrong is `invalid_grant` too, saying a one-time code is required.
async fn password_grant(
    p: TokenParams,
    origin: &Origin,
    app: Services<'_>,
    tokens: &AccessTokens,
) -> Result<TokenAnswer, ApiError> {
    let username = required(p.username, "username")?;
    let password = required(p.password, "password")?;
    let email = Email::parse(&username)
        .map_err(|_| ApiError::InvalidRequest("The username must be an email address.".into()))?;
    let client_name = client_label(p.client_name.as_deref())?;
    let request = SignIn {
        // No trusted-browser cookie: a program lives on its refresh token, not on password
        // grants, so strangers' failures do not stand in its way (ARCHITECTURE.md).
        credentials: Credentials {
            email: &email,
            password: &password,
            ip: &origin.ip,
            browser: None,
        },
        origin,
        session: SessionSpec::Api {
            client_name: client_name.clone(),
        },
        replaces: None,
    };
    let signed = match signin::sign_in(app, request).await {
        Ok(Passed::SignedIn(signed)) => signed,
        Ok(Passed::CodeNext(user)) => {
            let session = SessionSpec::Api { client_name };
            let otp = p.otp.as_deref().map(str::trim).filter(|o| !o.is_empty());
            with_code(app, user, otp, &email, origin, session).await?
        }
        Ok(Passed::VerifyFirst(user)) => {
            tracing::info!(user = %user.id, "API sign-in refused: the address is not verified");
            return Err(ApiError::EmailNotVerified);
        }
        Err(SignInError::WrongCredentials) => {
            tracing::info!("API sign-in refused: wrong credentials");
            return Err(ApiError::InvalidGrant);
        }
        Err(SignInError::Throttled(t)) => return Err(AppError::from(t).into()),
        Err(SignInError::Failed(e)) => return Err(e.into()),
    };
    let (user_id, session) = (signed.user.id, signed.session);
    answer(
        tokens,
        &user_id,
        RefreshToken::new(user_id, session.sid, session.secret),
    )
}

/// The password was right and the account has a second factor: the grant's `otp`
/// decides.
async fn with_code(
    app: Services<'_>,
    user: User,
    otp: Option<&str>,
    email: &Email,
    origin: &Origin,
    session: SessionSpec,
) -> Result<SignedIn, ApiError> {
    let Some(otp) = otp else {
        return Err(ApiError::CodeRequired(OTP_MISSING));
    };
    match two_step::sign_in_with_code(app, user, otp, email, origin, session).await {
        Ok(signed) => Ok(signed),
        Err(CodeError::Wrong) => Err(ApiError::CodeRequired(OTP_WRONG)),
        Err(CodeError::Stale) => Err(ApiError::InvalidGrant),
        Err(CodeError::Throttled(t)) => Err(AppError::from(t).into()),
        Err(CodeError::Failed(e)) => Err(e.into()),
    }
}

/// RFC 6749 §6 with rotation (`crate::services::sessions::refresh`): the current token
/// and, within the grace window, the previous one get the session's current successor;
/// an older one ends the session.
async fn refresh_grant(
    p: TokenParams,
    app: &Services<'_>,
    tokens: &AccessTokens,
) -> Result<TokenAnswer, ApiError> {
    let presented = required(p.refresh_token, "refresh_token")?;
    let Some(old) = RefreshToken::parse(&presented) else {
        return Err(ApiError::InvalidGrant);
    };
    match refresh::refresh(app.store, app.settings, &old, now_ms()).await? {
        Refreshed::Current(next) => answer(tokens, &old.user_id, next),
        Refreshed::Replayed => {
            tracing::warn!(user = %old.user_id, sid = %old.sid, "a spent refresh token was replayed: session ended");
            Err(ApiError::InvalidGrant)
        }
        Refreshed::Refused => Err(ApiError::InvalidGrant),
    }
}
