//! Errors at the HTTP edge, and the one place they become responses.
//!
//! `STATUS_TEXT` is the one table: for each status, the code the JSON API answers
//! with (OAuth 2.0 codes, RFC 6749 §5.2) and the title and message a person reads.
//! `Answer` renders a row: the HTML error page, or under `/api` the JSON body
//! `{"error", "error_description"}`. `AppError` (what a route fails with, its cause kept
//! as `source()`), Rocket's own failures (the default catcher) and the API's refusals
//! (`api::ApiError`, which adds its OAuth codes and the Bearer challenge) all end here.
//! A server-side failure is logged once, with its whole cause chain.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::Catcher;
use rocket_dyn_templates::Template;
use serde_json::json;

use crate::accounts::{AccountError, HashError};
use crate::services::sessions::access_tokens::TokenError;
use crate::services::signin::limits::Throttled;
use crate::services::ServiceError;
use crate::store::StoreError;
use crate::support::clock::{retry_after_secs, wait_in_words};
use crate::support::report::Report;

/// What a route can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Shared, because one failed store lookup may be handed to several guards.
    #[error("the session store is unavailable")]
    Store(#[source] Arc<StoreError>),
    #[error("the account database failed")]
    Accounts(#[source] AccountError),
    #[error("password hashing failed")]
    Hash(#[source] HashError),
    #[error("an access token could not be issued")]
    Token(#[from] TokenError),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("the form's CSRF token did not match")]
    Csrf,
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Throttled(#[from] Throttled),
    /// Something that cannot happen did: a bug, not an outage.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

pub type AppResult<T> = Result<T, AppError>;

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Store(Arc::new(e))
    }
}

impl From<AccountError> for AppError {
    fn from(e: AccountError) -> Self {
        AppError::Accounts(e)
    }
}

impl From<HashError> for AppError {
    fn from(e: HashError) -> Self {
        AppError::Hash(e)
    }
}

impl From<ServiceError> for AppError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Store(e) => e.into(),
            ServiceError::Accounts(e) => e.into(),
            ServiceError::Hash(e) => e.into(),
        }
    }
}

/// One row of the table.
struct StatusText {
    code: &'static str,
    title: &'static str,
    message: &'static str,
}

const fn row(code: &'static str, title: &'static str, message: &'static str) -> StatusText {
    StatusText {
        code,
        title,
        message,
    }
}

/// The one table of statuses: the API's code, the page's title, and the message both
/// show. A status not listed reads as its class (`4xx`, `5xx`).
const STATUS_TEXT: &[(u16, StatusText)] = &[
    (400, row("invalid_request", "Bad request", "The request could not be understood.")),
    (401, row("invalid_token", "Please sign in", "Your session has ended. Please sign in again.")),
    (403, row(
        "forbidden",
        "This form has expired",
        "The form you sent was out of date or did not come from this site, so nothing was changed. Go back, reload the page and try again.",
    )),
    (404, row("not_found", "Page not found", "There is nothing at this address.")),
    (405, row("invalid_request", "Not allowed", "This address does not accept that kind of request.")),
    (408, row("invalid_request", "Too slow", "The request took too long to arrive.")),
    (413, row("invalid_request", "Too large", "What you sent is larger than this service accepts.")),
    (415, row("invalid_request", "Unsupported content", "This content type is not accepted here.")),
    (422, row(
        "invalid_request",
        "Invalid input",
        "Some of what you sent could not be read. Please check the form and try again.",
    )),
    (429, row("too_many_requests", "Too many attempts", "Please wait a moment before trying again.")),
    (503, row(
        "temporarily_unavailable",
        "Temporarily unavailable",
        "Latchkey is temporarily unavailable. Please try again in a moment.",
    )),
];

const OTHER_CLIENT_ERROR: StatusText =
    row("invalid_request", "Bad request", "The request was refused.");
const OTHER_SERVER_ERROR: StatusText = row(
    "server_error",
    "Something went wrong",
    "Something went wrong on our side. Please try again.",
);

fn status_text(status: Status) -> &'static StatusText {
    STATUS_TEXT
        .iter()
        .find(|(code, _)| *code == status.code)
        .map(|(_, text)| text)
        .unwrap_or(if (400..500).contains(&status.code) {
            &OTHER_CLIENT_ERROR
        } else {
            &OTHER_SERVER_ERROR
        })
}

/// Whether a path is the JSON API's: its errors are JSON, never a page. The OpenID
/// Connect endpoints an app calls (`/oauth2/token`, `/userinfo`, …) are too; the two a
/// browser visits (`/oauth2/authorize`, `/oauth2/logout`) are pages.
pub fn is_api_path(path: &str) -> bool {
    path == "/api"
        || path.starts_with("/api/")
        || (path.starts_with("/oauth2/") && !matches!(path, "/oauth2/authorize" | "/oauth2/logout"))
}

/// An error answer: a row of the table, with what the failure adds to it.
pub struct Answer {
    pub status: Status,
    pub code: &'static str,
    pub message: Cow<'static, str>,
    /// `Retry-After`, for 429.
    pub retry_after: Option<Duration>,
    /// `WWW-Authenticate`, for the API's 401.
    pub challenge: Option<String>,
}

impl Answer {
    pub fn new(status: Status) -> Answer {
        let text = status_text(status);
        Answer {
            status,
            code: text.code,
            message: Cow::Borrowed(text.message),
            retry_after: None,
            challenge: None,
        }
    }

    pub fn message(mut self, message: impl Into<Cow<'static, str>>) -> Answer {
        self.message = message.into();
        self
    }

    /// The API's own OAuth code (`invalid_grant`, `unsupported_grant_type`, …).
    pub fn code(mut self, code: &'static str) -> Answer {
        self.code = code;
        self
    }

    pub fn challenge(mut self, challenge: String) -> Answer {
        self.challenge = Some(challenge);
        self
    }
}

impl<'r> Responder<'r, 'static> for Answer {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut res = if is_api_path(req.uri().path().as_str()) {
            let body = json!({ "error": self.code, "error_description": self.message });
            Json(body).respond_to(req)?
        } else {
            let ctx = json!({
                "status": self.status.code,
                "title": status_text(self.status).title,
                "message": self.message,
                "retry_after_text": self.retry_after.map(wait_in_words),
            });
            Template::render("error", ctx).respond_to(req)?
        };
        res.set_status(self.status);
        if let Some(wait) = self.retry_after {
            res.set_header(Header::new(
                "Retry-After",
                retry_after_secs(wait).to_string(),
            ));
        }
        if let Some(challenge) = self.challenge {
            res.set_header(Header::new("WWW-Authenticate", challenge));
        }
        Ok(res)
    }
}

const READ_ONLY: &str = "New accounts and password changes cannot be saved right now. \
    Existing accounts can still sign in. Please try again later.";

impl AppError {
    /// The answer this error gives; a server-side failure is logged here, once.
    pub fn answer(&self, path: &str) -> Answer {
        let unavailable = Answer::new(Status::ServiceUnavailable);
        match self {
            AppError::Store(_) | AppError::Accounts(AccountError::Unavailable(_)) => {
                tracing::warn!(error = %Report(self), path, "answering 503");
                unavailable
            }
            AppError::Accounts(AccountError::ReadOnly(_)) => {
                tracing::error!(error = %Report(self), path, "answering 503");
                unavailable.message(READ_ONLY)
            }
            AppError::Accounts(e @ AccountError::Duplicate) => {
                Answer::new(Status::BadRequest).message(e.to_string())
            }
            AppError::BadRequest(m) => Answer::new(Status::BadRequest).message(m.clone()),
            AppError::Csrf => Answer::new(Status::Forbidden),
            AppError::NotFound => Answer::new(Status::NotFound),
            AppError::Throttled(t) => Answer {
                retry_after: Some(t.retry_after),
                ..Answer::new(Status::TooManyRequests).message(format!(
                    "Too many attempts. Please wait {} before trying again.",
                    wait_in_words(t.retry_after)
                ))
            },
            AppError::Hash(e @ (HashError::Busy(_) | HashError::ClientGone)) => {
                no_hashing_slot(e, path)
            }
            AppError::Hash(_)
            | AppError::Token(_)
            | AppError::Internal(_)
            | AppError::Accounts(AccountError::Unsealable) => {
                tracing::error!(error = %Report(self), path, "answering 500");
                Answer::new(Status::InternalServerError)
            }
        }
    }
}

/// No password was hashed, so nothing changed: every slot stayed busy (503 with
/// `Retry-After`), or the client left (503 that nobody reads).
fn no_hashing_slot(e: &HashError, path: &str) -> Answer {
    let unavailable = Answer::new(Status::ServiceUnavailable);
    let HashError::Busy(wait) = e else {
        tracing::debug!(path, "the client left before its password was hashed");
        return unavailable;
    };
    tracing::warn!(path, "every password-hashing slot is busy: answering 503");
    Answer {
        retry_after: Some(*wait),
        ..unavailable.message(format!(
            "Latchkey is busy checking passwords. Nothing was changed; please try again in {}.",
            wait_in_words(*wait)
        ))
    }
}

impl<'r> Responder<'r, 'static> for AppError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        self.answer(req.uri().path().as_str()).respond_to(req)
    }
}

/// Rocket's own failures (no route, unreadable form, too large, a failed guard),
/// answered from the same table as ours. The API adds its Bearer challenge to 401
/// with a catcher of its own (`api::ApiError`).
#[rocket::catch(default)]
fn default_catcher(status: Status, req: &Request<'_>) -> Answer {
    if status.code >= 500 && status != Status::ServiceUnavailable {
        tracing::error!(status = status.code, path = %req.uri().path(), "answered a server error");
    }
    Answer::new(status)
}

pub fn catchers() -> Vec<Catcher> {
    rocket::catchers![default_catcher]
}
