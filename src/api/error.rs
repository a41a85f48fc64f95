//! How the API says no: the JSON error body `{"error","error_description"}` with
//! OAuth 2.0 codes (RFC 6749 §5.2, RFC 6750 §3.1), and the `/api` catcher that gives
//! Rocket's own failures (no route, unreadable body, failed guard) the same shape.

use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::Catcher;
use serde_json::json;

use super::guard::{cached_failure, AuthFailure};
use crate::accounts::AccountError;
use crate::error::AppError;
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
    /// 401: the Bearer guard refused the request.
    #[error("unauthorized: {0:?}")]
    Unauthorized(AuthFailure),
    #[error("not found")]
    NotFound,
    #[error("payload too large")]
    TooLarge,
    /// Throttling, outages and internal errors keep the app's own rendering.
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::App(e.into())
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        ApiError::App(e.into())
    }
}

/// The JSON error body with a status, and a challenge on 401.
fn render(
    req: &Request<'_>,
    status: Status,
    code: &str,
    description: &str,
    challenge: Option<String>,
) -> response::Result<'static> {
    let mut res =
        Json(json!({ "error": code, "error_description": description })).respond_to(req)?;
    res.set_status(status);
    if let Some(c) = challenge {
        res.set_header(Header::new("WWW-Authenticate", c));
    }
    Ok(res)
}

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

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        match self {
            ApiError::InvalidRequest(m) => {
                render(req, Status::BadRequest, "invalid_request", &m, None)
            }
            ApiError::UnsupportedGrantType => render(
                req,
                Status::BadRequest,
                "unsupported_grant_type",
                "grant_type must be \"password\" or \"refresh_token\".",
                None,
            ),
            // RFC 7235 §3.1: every 401 carries a challenge. No error code in it: the
            // token endpoint takes credentials in the body, not in a Bearer header.
            ApiError::InvalidGrant => render(
                req,
                Status::Unauthorized,
                "invalid_grant",
                "The credentials or refresh token are invalid, expired or revoked.",
                Some(format!("Bearer realm=\"{REALM}\"")),
            ),
            ApiError::Unauthorized(f) => render(
                req,
                Status::Unauthorized,
                "invalid_token",
                f.description(),
                Some(bearer_challenge(&f)),
            ),
            ApiError::NotFound => render(
                req,
                Status::NotFound,
                "not_found",
                "There is no such resource.",
                None,
            ),
            ApiError::TooLarge => render(
                req,
                Status::PayloadTooLarge,
                "invalid_request",
                "The request body is too large.",
                None,
            ),
            ApiError::App(e) => e.respond_to(req),
        }
    }
}

/// Every status Rocket produces under `/api`, as the JSON error body.
#[rocket::catch(default)]
fn api_catcher(status: Status, req: &Request<'_>) -> ApiCaught {
    ApiCaught(status, cached_failure(req))
}

struct ApiCaught(Status, Option<AuthFailure>);

impl<'r> Responder<'r, 'static> for ApiCaught {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let status = self.0;
        if status == Status::Unauthorized {
            let failure = self.1.unwrap_or(AuthFailure::Missing);
            return ApiError::Unauthorized(failure).respond_to(req);
        }
        let (code, description) = match status.code {
            400 => ("invalid_request", "The request could not be understood."),
            404 => (
                "not_found",
                "There is nothing at this address, or not for this method.",
            ),
            405 => (
                "invalid_request",
                "This address does not accept that method.",
            ),
            413 => ("invalid_request", "The request body is too large."),
            415 => ("invalid_request", "This content type is not accepted here."),
            422 => ("invalid_request", "The request body could not be read."),
            429 => ("too_many_requests", "Please wait before trying again."),
            503 => (
                "temporarily_unavailable",
                "The service is temporarily unavailable. Please try again in a moment.",
            ),
            c if (400..500).contains(&c) => ("invalid_request", "The request was refused."),
            _ => ("server_error", "Something went wrong on our side."),
        };
        if status.code >= 500 && status != Status::ServiceUnavailable {
            tracing::error!(status = status.code, path = %req.uri().path(), "API answered a server error");
        }
        render(req, status, code, description, None)
    }
}

pub fn catchers() -> Vec<Catcher> {
    rocket::catchers![api_catcher]
}
