//! Signing in, written once for the sign-in page, the change-password page and the
//! API's password grant: the limiter (`login:acct` + `login:ip`) → the password
//! (Argon2id; a dummy hash when the account does not exist, so both answers cost the
//! same) → taking back the attempt → a new session with a fresh secret → the
//! new-device notice. And replacing a password, which ends the other sessions.
//!
//! The callers only turn the outcome into their own answer (a page, a redirect, an
//! OAuth error); none of them repeats a step.

use uuid::Uuid;

use crate::accounts::{AccountError, HashError, User};
use crate::clock::now_ms;
use crate::domain::{Email, NewPassword};
use crate::limits::{self, Throttled};
use crate::notices::{self, Device};
use crate::services::{ServiceError, Services};
use crate::sessions::{self, Origin, SessionSpec, Started};
use crate::store::StoreError;

/// Passwords longer than this are not worth hashing: no account has one.
const MAX_PASSWORD_INPUT: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("too many sign-in attempts")]
    Throttled(#[from] Throttled),
    /// Wrong email or password, or the password changed while this one was checked:
    /// the same answer for all three.
    #[error("wrong email or password")]
    WrongCredentials,
    #[error("sign-in could not finish")]
    Failed(#[source] ServiceError),
}

macro_rules! failed_from {
    ($($cause:ty),*) => {$(
        impl From<$cause> for SignInError {
            fn from(e: $cause) -> Self {
                SignInError::Failed(e.into())
            }
        }
    )*};
}
failed_from!(ServiceError, StoreError, AccountError, HashError);

/// A sign-in to run: the credentials, where it comes from, the session it starts.
pub struct SignIn<'a> {
    pub email: &'a Email,
    pub password: &'a str,
    pub origin: &'a Origin,
    pub session: SessionSpec,
    /// The session this browser already had (ended, never reused: no fixation).
    pub replaces: Option<(Uuid, String)>,
}

pub struct SignedIn {
    pub user: User,
    pub session: Started,
}

/// Limiter → password → take back the attempt. The account when the password is right.
pub async fn check_password(
    app: Services<'_>,
    email: &Email,
    password: &str,
    ip: &str,
) -> Result<User, SignInError> {
    let attempt = limits::sign_in(app.store, &app.settings.limits, email, ip).await??;
    let user = app.accounts.find_by_email(email).await?;
    if password.chars().count() > MAX_PASSWORD_INPUT {
        return Err(SignInError::WrongCredentials);
    }
    let hash = user.as_ref().map(|u| u.password_hash.as_str());
    if !app.hasher.verify(password, hash).await? {
        return Err(SignInError::WrongCredentials);
    }
    attempt.succeeded(app.store).await;
    user.ok_or(SignInError::WrongCredentials)
}

/// The whole sign-in: `check_password`, then the replaced session ends, a new one
/// starts, and the owner is told when the device is new.
pub async fn sign_in(app: Services<'_>, req: SignIn<'_>) -> Result<SignedIn, SignInError> {
    let user = check_password(app, req.email, req.password, &req.origin.ip).await?;
    if let Some((user_id, sid)) = &req.replaces {
        app.store.revoke_session(user_id, sid, now_ms()).await?;
    }
    let client_name = match &req.session {
        SessionSpec::Api { client_name } => client_name.clone(),
        SessionSpec::Browser { .. } => None,
    };
    let started = sessions::start(app.store, app.settings, &user, req.origin, req.session).await?;
    // None: the password changed while this one was being checked.
    let session = started.ok_or(SignInError::WrongCredentials)?;
    let seen = Device {
        origin: req.origin,
        client_name: client_name.as_deref(),
    };
    notices::after_sign_in(app, &user, &seen).await;
    tracing::info!(user = %user.id, "signed in");
    Ok(SignedIn { user, session })
}

/// Stores a new password and ends every session of the user but `keep`, raising the
/// password version so a sign-in checked against the old password cannot land later;
/// a reset code mailed before ends with it. Answers how many sessions ended.
pub async fn replace_password(
    app: Services<'_>,
    user: &User,
    password: &NewPassword,
    keep: Option<&str>,
) -> Result<u32, ServiceError> {
    let hash = app.hasher.hash(password.expose()).await?;
    let version = app.accounts.set_password(user, &hash).await?;
    let ended = app
        .store
        .revoke_sessions(&user.id, keep, Some(version), now_ms())
        .await?;
    tracing::info!(user = %user.id, ended, "password replaced; sessions ended");
    Ok(ended)
}
