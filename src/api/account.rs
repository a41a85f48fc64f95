//! The signed-in API: who am I, my sessions (browser and API alike), ending them,
//! signing this token out, and the account's activity.

use rocket::http::{ContentType, Status};
use rocket::serde::json::Json;
use rocket::{delete, get, post, State};
use serde::Serialize;

use super::error::ApiError;
use super::guard::ApiSession;
use crate::http::error::AppError;
use crate::http::request::RequestOrigin;
use crate::services::activity::{self as log, EndedBy, Event, EventPage};
use crate::services::sessions::{self, SessionView};
use crate::services::Services;
use crate::store::{Store, Tokens};
use crate::support::clock::now_ms;

#[derive(Debug, Serialize)]
pub struct Me {
    user_id: String,
    email: String,
    /// Whether the account proved it holds `email`.
    email_verified: bool,
    session_id: String,
}

/// Answered from the session check alone: closing an account (deleting or disabling
/// it) ends its sessions at once, so a live session is a live account.
#[get("/me")]
pub fn me(session: ApiSession) -> Json<Me> {
    Json(Me {
        user_id: session.user_id.to_string(),
        email: session.email,
        email_verified: session.email_verified,
        session_id: session.sid,
    })
}

#[get("/sessions")]
pub async fn list(
    session: ApiSession,
    store: &State<Store>,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let all = sessions::list(store, &session.user_id).await?;
    Ok(Json(
        all.iter()
            .map(|s| SessionView::new(s, &session.sid))
            .collect(),
    ))
}

#[delete("/sessions/<id>")]
pub async fn revoke(
    id: &str,
    session: ApiSession,
    app: Services<'_>,
    origin: RequestOrigin,
) -> Result<Status, ApiError> {
    // Another user's session id answers 404 like one that never existed.
    if !sessions::end(app.store, &session.user_id, id).await? {
        return Err(AppError::NotFound.into());
    }
    let by = if id == session.sid {
        EndedBy::ThisDevice
    } else {
        EndedBy::AnotherDevice
    };
    let ended = Event::session_ended(Some(id), by).from(&origin.0);
    log::record(app, &session.user_id, ended).await;
    Ok(Status::NoContent)
}

#[delete("/sessions")]
pub async fn revoke_others(
    session: ApiSession,
    app: Services<'_>,
    origin: RequestOrigin,
) -> Result<Status, ApiError> {
    let n = sessions::end_others(app.store, &session.user_id, &session.sid).await?;
    tracing::info!(user = %session.user_id, ended = n, "API: other sessions ended");
    let here = Event::session_ended(None, EndedBy::AnotherDevice).from(&origin.0);
    if let Some(ended) = here.ended(EndedBy::AnotherDevice, n) {
        log::record(app, &session.user_id, ended).await;
    }
    Ok(Status::NoContent)
}

#[post("/logout")]
pub async fn logout(
    session: ApiSession,
    app: Services<'_>,
    origin: RequestOrigin,
) -> Result<Status, ApiError> {
    let claims = &session.claims;
    app.store
        .api_logout(
            &session.user_id,
            &session.sid,
            &claims.jti,
            claims.remaining_ms(),
            now_ms(),
        )
        .await?;
    let ended = Event::session_ended(Some(&session.sid), EndedBy::ThisDevice).from(&origin.0);
    log::record(app, &session.user_id, ended).await;
    Ok(Status::NoContent)
}

/// The account's activity, newest first: `limit` events (at most 100, 25 when not
/// given) older than the cursor `before`; `next` is the cursor of the page after.
#[get("/activity?<before>&<limit>")]
pub async fn activity(
    session: ApiSession,
    app: Services<'_>,
    before: Option<&str>,
    limit: Option<&str>,
) -> Result<Json<EventPage>, ApiError> {
    let before = match before {
        None => None,
        Some(raw) => Some(log::parse_cursor(raw).ok_or_else(|| {
            ApiError::InvalidRequest("before must be a cursor from a previous page.".into())
        })?),
    };
    let limit = match limit {
        None => log::PAGE_SIZE,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=log::MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::InvalidRequest(format!(
                    "limit must be a whole number from 1 to {}.",
                    log::MAX_LIMIT
                ))
            })?,
    };
    let page = log::page(
        app.accounts,
        &app.settings.activity,
        &session.user_id,
        before,
        limit,
    )
    .await?;
    Ok(Json(page))
}

/// The OpenAPI 3.0 description of this API, written by hand and checked against the
/// mounted routes by the tests.
pub const OPENAPI: &str = include_str!("openapi.json");

#[get("/openapi.json")]
pub fn openapi() -> (ContentType, &'static str) {
    (ContentType::JSON, OPENAPI)
}
