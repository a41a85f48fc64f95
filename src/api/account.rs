//! The signed-in API: who am I, my sessions (browser and API alike), ending them,
//! and signing this token out.

use rocket::http::{ContentType, Status};
use rocket::serde::json::Json;
use rocket::{delete, get, post, State};
use serde::Serialize;

use super::error::ApiError;
use super::guard::ApiSession;
use crate::http::error::AppError;
use crate::services::sessions::{self, SessionView};
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
    store: &State<Store>,
) -> Result<Status, ApiError> {
    // Another user's session id answers 404 like one that never existed.
    if !sessions::end(store, &session.user_id, id).await? {
        return Err(AppError::NotFound.into());
    }
    Ok(Status::NoContent)
}

#[delete("/sessions")]
pub async fn revoke_others(session: ApiSession, store: &State<Store>) -> Result<Status, ApiError> {
    let n = sessions::end_others(store, &session.user_id, &session.sid).await?;
    tracing::info!(user = %session.user_id, ended = n, "API: other sessions ended");
    Ok(Status::NoContent)
}

#[post("/logout")]
pub async fn logout(session: ApiSession, store: &State<Store>) -> Result<Status, ApiError> {
    let claims = &session.claims;
    store
        .api_logout(
            &session.user_id,
            &session.sid,
            &claims.jti,
            claims.remaining_ms(),
            now_ms(),
        )
        .await?;
    Ok(Status::NoContent)
}

/// The OpenAPI 3.0 description of this API, written by hand and checked against the
/// mounted routes by the tests.
pub const OPENAPI: &str = include_str!("openapi.json");

#[get("/openapi.json")]
pub fn openapi() -> (ContentType, &'static str) {
    (ContentType::JSON, OPENAPI)
}
