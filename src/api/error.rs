//! How the API says no. What it adds to the app's one error table (`crate::http::error`):
//! its own OAuth 2.0 codes (RFC 6749 §5.2: `invalid_grant`, `unsupported_grant_type`)
//! and the Bearer challenge on every 401 (RFC 6750 §3.1), also for the 401s Rocket
//! answers when the Bearer guard refuses a request (the catcher below).

use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket::Catcher;

use super::guard::{cached_failure, AuthFailure};
use crate::accounts::AccountError;
use crate::http::error::{Answer, AppError};
use crate::services::sessions::access_tokens::TokenError;
use crate::services::ServiceError;
use crate::store::StoreError;

/// The realm named in every Bearer challenge.
const REALM: &str = "latchkey";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a parameter is missing, repeated, of the wrong type, or the body unreadable.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// 400: a `grant_type` this server does not offer.
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    /// 401: wrong credentials, or a refresh token that is unknown, rotated or ended.
    #[error("invalid grant")]
    InvalidGrant,
    /// 401 `invalid_grant`: the password was right, but the account has a second
    /// factor and the one-time code (`otp`) was missing or not right; the text says which.
    #[error("one-time code required")]
    CodeRequired(&'static str),
    /// 403 `email_not_verified`: the password was right, but the account's address is
    /// not verified and `require_verified_email` asks for it.
    #[error("email not verified")]
    EmailNotVerified,
    /// 401: the Bearer credentials were refused.
    #[error("unauthorized: {0:?}")]
    Unauthorized(AuthFailure),
    #[error("payload too large")]
    TooLarge,
    /// Not found, throttling, outages: the app's own answers.
    #[error(transparent)]
    App(#[from] AppError),
}

macro_rules! app_error_from {
    ($($cause:ty),*) => {$(
        impl From<$cause> for ApiError {
            fn from(e: $cause) -> Self {
                ApiError::App(e.into())
            }
        }
    )*};
}
app_error_from!(StoreError, AccountError, ServiceError, TokenError);

/// RFC 6750 §3.1: a request that carried no Bearer token gets a bare challenge; one
/// that carried a bad token is told `invalid_token`.
fn bearer_challenge(failure: &AuthFailure) -> String {
    match failure {
        AuthFailure::Missing => format!("Bearer realm=\"{REALM}\""),
        other => format!(
            "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{}\"",
            other.description()
        ),
    }
}

impl ApiError {
    fn answer(self, path: &str) -> Answer {
        match self {
            ApiError::InvalidRequest(m) => Answer::new(Status::BadRequest).message(m),
            ApiError::UnsupportedGrantType => Answer::new(Status::BadRequest)
                .code("unsupported_grant_type")
                .message("grant_type must be \"password\" or \"refresh_token\"."),
            // RFC 7235 §3.1: every 401 carries a challenge. No error code in it: the
            // token endpoint takes credentials in the body, not in a Bearer header.
            ApiError::InvalidGrant => Answer::new(Status::Unauthorized)
                .code("invalid_grant")
                .message("The credentials or refresh token are invalid, expired or revoked.")
                .challenge(format!("Bearer realm=\"{REALM}\"")),
            ApiError::CodeRequired(why) => Answer::new(Status::Unauthorized)
                .code("invalid_grant")
                .message(why)
                .challenge(format!("Bearer realm=\"{REALM}\"")),
            ApiError::EmailNotVerified => Answer::new(Status::Forbidden)
                .code("email_not_verified")
                .message("Verify the account's email address first: use the code or link mailed to it (sign in on the web to send a new one)."),
            ApiError::Unauthorized(f) => Answer::new(Status::Unauthorized)
                .message(f.description())
                .challenge(bearer_challenge(&f)),
            ApiError::TooLarge => Answer::new(Status::PayloadTooLarge),
            ApiError::App(e) => e.answer(path),
        }
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        self.answer(req.uri().path().as_str()).respond_to(req)
    }
}

/// A 401 under `/api`: the Bearer guard's refusal, with its challenge.
#[rocket::catch(401)]
fn unauthorized(req: &Request<'_>) -> ApiError {
    ApiError::Unauthorized(cached_failure(req).unwrap_or(AuthFailure::Missing))
}

pub fn catchers() -> Vec<Catcher> {
    rocket::catchers![unauthorized]
}
