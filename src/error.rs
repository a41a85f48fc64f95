//! The one error type of the request path, and the one place errors become
//! responses: an HTML page for pages, the JSON error body for `/api`.

use std::time::Duration;

use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::Catcher;
use rocket_dyn_templates::Template;
use serde_json::json;

use crate::accounts::AccountError;
use crate::accounts::HashError;
use crate::clock::{retry_after_secs, wait_in_words};
use crate::report::Report;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("the account database is read-only")]
    ReadOnly,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("forbidden")]
    Csrf,
    #[error("not found")]
    NotFound,
    #[error("too many attempts")]
    Throttled { retry_after: Duration },
    #[error("internal error: {0}")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Unavailable(Report(&e).to_string())
    }
}

impl From<AccountError> for AppError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::ReadOnly(_) => AppError::ReadOnly,
            AccountError::Duplicate => AppError::BadRequest(e.to_string()),
            AccountError::Unavailable(e) => AppError::Unavailable(e.to_string()),
        }
    }
}

impl From<HashError> for AppError {
    fn from(e: HashError) -> Self {
        AppError::Internal(e.to_string())
    }
}

struct Described {
    status: Status,
    code: &'static str,
    title: &'static str,
    message: String,
    retry_after: Option<Duration>,
}

fn describe(status: Status) -> Described {
    let (code, title, message) = match status.code {
        400 => ("invalid_request", "Bad request", "The request could not be understood."),
        401 => ("unauthorized", "Please sign in", "Your session has ended. Please sign in again."),
        403 => (
            "forbidden",
            "This form has expired",
            "The form you sent was out of date or did not come from this site, so nothing was changed. Go back, reload the page and try again.",
        ),
        404 => ("not_found", "Page not found", "There is nothing at this address."),
        405 => ("method_not_allowed", "Not allowed", "This address does not accept that kind of request."),
        413 => ("payload_too_large", "Too large", "What you sent is larger than this service accepts."),
        415 => ("unsupported_media_type", "Unsupported content", "This content type is not accepted here."),
        422 => ("invalid_request", "Invalid input", "Some of what you sent could not be read. Please check the form and try again."),
        429 => ("too_many_requests", "Too many attempts", "Please wait a moment before trying again."),
        503 => (
            "temporarily_unavailable",
            "Temporarily unavailable",
            "Latchkey is temporarily unavailable. Please try again in a moment.",
        ),
        _ => ("server_error", "Something went wrong", "Something went wrong on our side. Please try again."),
    };
    Described {
        status,
        code,
        title,
        message: message.to_string(),
        retry_after: None,
    }
}

fn respond(req: &Request<'_>, d: Described) -> response::Result<'static> {
    let mut res = if req.uri().path().starts_with("/api/") {
        let body = Json(json!({ "error": d.code, "error_description": d.message }));
        let mut res = body.respond_to(req)?;
        if d.status == Status::Unauthorized {
            res.set_header(Header::new(
                "WWW-Authenticate",
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    d.message
                ),
            ));
        }
        res
    } else {
        let ctx = json!({
            "status": d.status.code,
            "title": d.title,
            "message": d.message,
            "retry_after_text": d.retry_after.map(wait_in_words),
        });
        Template::render("error", ctx).respond_to(req)?
    };
    res.set_status(d.status);
    if let Some(wait) = d.retry_after {
        res.set_header(Header::new(
            "Retry-After",
            retry_after_secs(wait).to_string(),
        ));
    }
    Ok(res)
}

impl<'r> Responder<'r, 'static> for AppError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let d = match &self {
            AppError::Unavailable(detail) => {
                tracing::warn!(%detail, path = %req.uri().path(), "answering 503");
                describe(Status::ServiceUnavailable)
            }
            AppError::ReadOnly => {
                tracing::error!(path = %req.uri().path(), "the account database is read-only");
                Described {
                    message: "New accounts and password changes cannot be saved right now. Existing accounts can still sign in. Please try again later.".into(),
                    ..describe(Status::ServiceUnavailable)
                }
            }
            AppError::BadRequest(m) => Described {
                message: m.clone(),
                ..describe(Status::BadRequest)
            },
            AppError::Csrf => describe(Status::Forbidden),
            AppError::NotFound => describe(Status::NotFound),
            AppError::Throttled { retry_after } => Described {
                message: format!(
                    "Too many attempts. Please wait {} before trying again.",
                    wait_in_words(*retry_after)
                ),
                retry_after: Some(*retry_after),
                ..describe(Status::TooManyRequests)
            },
            AppError::Internal(detail) => {
                tracing::error!(%detail, path = %req.uri().path(), "answering 500");
                describe(Status::InternalServerError)
            }
        };
        respond(req, d)
    }
}

#[rocket::catch(default)]
fn default_catcher(status: Status, req: &Request<'_>) -> CatcherResponse {
    CatcherResponse(status, req.uri().path().starts_with("/api/"))
}

/// Renders Rocket's own errors (no route, bad form, too large, failed guard) the same
/// way as ours.
struct CatcherResponse(Status, bool);

impl<'r> Responder<'r, 'static> for CatcherResponse {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut d = describe(self.0);
        // A page that needs a session was asked for without one: say so plainly.
        if self.0 == Status::Unauthorized && self.1 {
            d.message = "The access token is missing, invalid, expired or revoked.".into();
        }
        respond(req, d)
    }
}

pub fn catchers() -> Vec<Catcher> {
    rocket::catchers![default_catcher]
}
