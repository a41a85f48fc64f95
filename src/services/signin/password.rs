//! Signing in, written once for the sign-in page, the change-password page and the
//! API's password grant: the account → who the attempt counts against (a trusted
//! device or a stranger) → the limiter → a hashing slot → the password (Argon2id; a
//! dummy hash when the account does not exist, so both answers cost the same) → taking
//! back the failure → a new session with a fresh secret → the new-device notice. And
//! replacing a password, which ends the other sessions.
//!
//! An account with a second factor signs in in two steps: a right password is
//! `Passed::CodeNext`, no session; `crate::services::signin::two_step` checks the code
//! (on the code page for a browser, from the password grant's `otp` for the API) and
//! then starts the session through [`start_session`].
//!
//! The callers only turn the outcome into their own answer (a page, a redirect, an
//! OAuth error); none of them repeats a step.

use uuid::Uuid;

use super::limits::{self, Throttled};
use super::new_device::{self, Device};
use super::trusted_browsers::{self, BrowserClaim};
use crate::accounts::{AccountError, HashError, Slot, User, Work};
use crate::services::activity::{self, EndedBy, Event, Kind};
use crate::services::second_factor::has_second_factor;
use crate::services::sessions::{self, Origin, SessionSpec, Started};
use crate::services::verification::must_verify_first;
use crate::services::{ServiceError, Services};
use crate::store::{Amr, Sessions, StoreError};
use crate::support::clock::now_ms;
use crate::support::input::{Email, NewPassword};
use crate::support::metrics::SignInOutcome;

/// Passwords longer than this are not worth hashing: no account has one.
const MAX_PASSWORD_INPUT: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("too many sign-in attempts")]
    Throttled(#[from] Throttled),
    /// Wrong email or password, a disabled account, or the password changed while
    /// this one was checked: the same answer for all four.
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

/// A password to check: whose, which, and where from.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub email: &'a Email,
    pub password: &'a str,
    pub ip: &'a str,
    /// This browser's trusted-browser cookie, if it sent one.
    pub browser: Option<&'a BrowserClaim>,
}

/// A sign-in to run: the credentials, where it comes from, the session it starts.
pub struct SignIn<'a> {
    pub credentials: Credentials<'a>,
    pub origin: &'a Origin,
    pub session: SessionSpec,
    /// The session this browser already had (ended, never reused: no fixation).
    pub replaces: Option<(Uuid, String)>,
}

/// A session to start for an account whose credentials passed.
pub struct SessionStart<'a> {
    pub origin: &'a Origin,
    pub session: SessionSpec,
    /// The session this browser already had: ended first.
    pub replaces: Option<(Uuid, String)>,
    /// This browser's trusted-browser cookie, if it sent one (browser sessions only).
    pub browser: Option<&'a BrowserClaim>,
    /// How the account proved itself.
    pub amr: Amr,
}

/// What a right password leads to.
pub enum Passed {
    SignedIn(SignedIn),
    /// The account has a second factor: no session yet. A browser goes on to the code
    /// page (`two_step::begin`); the API checks the grant's `otp`
    /// (`two_step::sign_in_with_code`).
    CodeNext(User),
    /// An API sign-in (the password grant) of an account whose address is not
    /// verified, where `require_verified_email` asks for one: no session. Only a right
    /// password learns it.
    VerifyFirst(User),
}

pub struct SignedIn {
    pub user: User,
    pub session: Started,
    /// The trusted-browser cookie to set (browser sessions only).
    pub browser: Option<BrowserClaim>,
}

/// A password that was right, and the hashing slot it was checked in (a password
/// change hashes the new one in it).
pub struct Verified {
    pub user: User,
    pub slot: Slot,
}

/// Limiter → slot → password → take back the failure. The account when the password
/// is right. Every check counts against the client IP's hashing budget; a failure also
/// against the account, IP and network, or against this browser's own device budget.
pub async fn check_password(
    app: Services<'_>,
    c: Credentials<'_>,
) -> Result<Verified, SignInError> {
    let user = app.accounts.find_by_email(c.email).await?;
    let source =
        trusted_browsers::source(app.store, c.browser, user.as_ref(), c.email, c.ip).await?;
    let attempt = match limits::sign_in(app.store, &app.settings.limits, source).await? {
        Ok(attempt) => attempt,
        Err(throttled) => {
            if let Some(user) = &user {
                activity::record_later(app, user.id, Event::new(Kind::LockedOut).ip(c.ip));
            }
            return Err(throttled.into());
        }
    };
    if c.password.chars().count() > MAX_PASSWORD_INPUT {
        return Err(SignInError::WrongCredentials);
    }
    let slot = match app.hasher.slot(Work::SignIn).await {
        Ok(slot) => slot,
        Err(e) => {
            // Nothing was checked: nothing counts.
            attempt.abandoned(app.store).await;
            return Err(e.into());
        }
    };
    let hash = user.as_ref().map(|u| u.password_hash.as_str());
    if !slot.verify(c.password, hash).await? {
        if let Some(user) = &user {
            let failed = Event::new(Kind::SignInFailed).ip(c.ip).detail("password");
            activity::record_later(app, user.id, failed);
        }
        return Err(SignInError::WrongCredentials);
    }
    // A disabled account answers as a wrong password would, after the same work, and
    // its attempt still counts.
    let Some(user) = user.filter(|u| u.disabled_at.is_none()) else {
        return Err(SignInError::WrongCredentials);
    };
    attempt.succeeded(app.store).await;
    Ok(Verified { user, slot })
}

/// The whole sign-in: `check_password`; for an account with a second factor, on to
/// its code (`Passed::CodeNext`), else [`start_session`]. Each finished sign-in and
/// each refusal is counted for `/metrics` (a right password that waits for its code
/// is counted when the code step ends, by `two_step`).
pub async fn sign_in(app: Services<'_>, req: SignIn<'_>) -> Result<Passed, SignInError> {
    let result = sign_in_steps(app, req).await;
    let outcome = match &result {
        Ok(Passed::SignedIn(_)) => Some(SignInOutcome::Ok),
        Ok(Passed::CodeNext(_) | Passed::VerifyFirst(_)) | Err(SignInError::Failed(_)) => None,
        Err(SignInError::WrongCredentials) => Some(SignInOutcome::Wrong),
        Err(SignInError::Throttled(_)) => Some(SignInOutcome::Throttled),
    };
    if let Some(outcome) = outcome {
        app.metrics.sign_in(outcome);
    }
    result
}

async fn sign_in_steps(app: Services<'_>, req: SignIn<'_>) -> Result<Passed, SignInError> {
    let Verified { user, slot } = check_password(app, req.credentials).await?;
    drop(slot);
    let api = matches!(req.session, SessionSpec::Api { .. });
    if api && must_verify_first(app.settings, user.email_verified()) {
        return Ok(Passed::VerifyFirst(user));
    }
    if has_second_factor(app, &user).await? {
        return Ok(Passed::CodeNext(user));
    }
    let start = SessionStart {
        origin: req.origin,
        session: req.session,
        replaces: req.replaces,
        browser: req.credentials.browser,
        amr: Amr::Password,
    };
    start_session(app, user, start).await.map(Passed::SignedIn)
}

/// After the credentials passed (a password, and a code where the account has a
/// second factor): the replaced session ends, a new one starts (refused as stale when
/// the password changed since it was checked), a browser is trusted as this account's
/// device, and the owner is told when the device is new.
pub async fn start_session(
    app: Services<'_>,
    user: User,
    s: SessionStart<'_>,
) -> Result<SignedIn, SignInError> {
    if let Some((user_id, sid)) = &s.replaces {
        app.store.revoke_session(user_id, sid, now_ms()).await?;
    }
    let client_name = match &s.session {
        SessionSpec::Api { client_name } => client_name.clone(),
        SessionSpec::Browser { .. } => None,
        SessionSpec::App { name, .. } => Some(name.clone()),
    };
    let is_browser = matches!(s.session, SessionSpec::Browser { .. });
    let method = activity::sign_in_method(s.amr, !is_browser);
    let started =
        sessions::start(app.store, app.settings, &user, s.origin, s.session, s.amr).await?;
    // None: the password changed while this one was being checked.
    let session = started.ok_or(SignInError::WrongCredentials)?;
    crate::services::verification::note_used(app.accounts, &user).await;
    let browser = if is_browser {
        trusted_browsers::remember(app.store, &user, s.browser).await
    } else {
        None
    };
    let seen = Device {
        origin: s.origin,
        client_name: client_name.as_ref(),
    };
    new_device::after_sign_in(app, &user, &seen).await;
    let mut event = Event::new(Kind::SignIn)
        .from(s.origin)
        .session(&session.sid)
        .detail(method);
    if let Some(name) = &client_name {
        event = event.label(name.as_str());
    }
    activity::record(app, &user.id, event).await;
    tracing::info!(user = %user.id, amr = ?s.amr.values(), "signed in");
    Ok(SignedIn {
        user,
        session,
        browser,
    })
}

/// Stores a new password (hashed in `slot`) and ends every session of the user but
/// `keep`, raising the password version so a sign-in checked against the old password
/// cannot land later; any outstanding reset code and every trusted browser of the
/// account end with it. `event` (`password_changed` or `password_reset`, with where
/// it came from) is recorded, and the sessions it ended. Answers how many ended.
pub async fn replace_password(
    app: Services<'_>,
    slot: &Slot,
    user: &User,
    password: &NewPassword,
    keep: Option<&str>,
    event: Event,
) -> Result<u32, ServiceError> {
    let hash = slot.hash(password.expose()).await?;
    let version = app.accounts.set_password(user, &hash).await?;
    let ended = app
        .store
        .revoke_sessions(&user.id, keep, Some(version), now_ms())
        .await?;
    tracing::info!(user = %user.id, ended, "password replaced; sessions ended");
    let by = if event.kind() == Kind::PasswordReset {
        EndedBy::PasswordReset
    } else {
        EndedBy::PasswordChange
    };
    let ended_event = event.clone().ended(by, ended);
    activity::record(app, &user.id, event).await;
    if let Some(ended_event) = ended_event {
        activity::record(app, &user.id, ended_event).await;
    }
    Ok(ended)
}
