//! The second step of signing in to an account with a second factor: the pending
//! sign-in a right password leaves in a browser, and the one-time code that turns it
//! into a session (the sign-in page's second page); and the code check itself, which
//! the API's password grant (`otp`) shares.
//!
//! - **Pending, not signed in.** A right password makes a pending sign-in in the store
//!   (`P:{UID}:2fa:PID`: remember, where to go, the password version checked, created,
//!   expiry, wrong codes) and no session. The browser holds `UID.TOKEN` (TOKEN: 256
//!   random bits) in a private cookie (encrypted and authenticated under `secret_key`);
//!   the store knows it only as PID, the first 128 bits of SHA-256(TOKEN), so neither a
//!   dump of Redis nor another browser can continue it.
//! - **Ends** after [`CodeSettings::second_factor_timeout`] (5 minutes), after
//!   [`MAX_WRONG_CODES`] wrong codes, when it is used (taken atomically: of two
//!   concurrent right codes, one signs in; a recovery code is used up only after its
//!   request took the pending sign-in, so the losing one keeps its code), and when the
//!   password changed, the account was disabled or the second factor turned off since
//!   the password step.
//! - **Codes count** against the sign-in failure quotas (`limits::second_factor`):
//!   the account, the client IP and its network, or this browser's device budget,
//!   exactly as a wrong password would.
//!
//! [`CodeSettings::second_factor_timeout`]: crate::config::CodeSettings

use uuid::Uuid;
use webauthn_rs::prelude::PublicKeyCredential;

use super::limits::{self, Source, Throttled};
use super::password::{start_session, SessionStart, SignInError, SignedIn};
use super::trusted_browsers::{self, BrowserClaim};
use crate::accounts::User;
use crate::services::activity::{self, Event, Kind};
use crate::services::passkeys::sign_in as passkey_sign_in;
use crate::services::passkeys::{CeremonyCookie, PasskeyError};
use crate::services::second_factor::{self, Accepted, Purpose, SecondFactorError};
use crate::services::sessions::{sid_for, Origin, SessionSpec};
use crate::services::{ServiceError, Services};
use crate::store::{Amr, PendingFailure, PendingSignIn, PendingSignIns, StoreError};
use crate::support::clock::now_ms;
use crate::support::crypto::random_token;
use crate::support::input::Email;
use crate::support::metrics::SignInOutcome;

/// Wrong codes that end a pending sign-in.
pub const MAX_WRONG_CODES: u32 = 5;
/// The longest code worth checking (a recovery code with its dashes and spaces).
const MAX_CODE_INPUT: usize = 64;

/// What the browser's pending-sign-in cookie says: whose, and the secret that names
/// it in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCookie {
    pub user_id: Uuid,
    token: String,
}

impl PendingCookie {
    /// Parses `UID.TOKEN` (the decrypted cookie value); anything else is none.
    pub fn parse(value: &str) -> Option<PendingCookie> {
        let (user_id, token) = crate::support::crypto::uid_and_token(value)?;
        Some(PendingCookie {
            user_id,
            token: token.to_string(),
        })
    }

    pub fn value(&self) -> String {
        format!("{}.{}", self.user_id, self.token)
    }

    /// The id the store knows it by.
    fn pid(&self) -> String {
        sid_for(&self.token)
    }
}

/// Whether `code` is a right one-time code of the account: an authenticator code for
/// a time step later than the last accepted one (that step now spent), or an unused
/// recovery code (not used up yet: `second_factor::use_up`). Wrong, replayed and
/// malformed codes are all `None`.
async fn code_is_right(
    app: Services<'_>,
    user_id: &Uuid,
    code: &str,
) -> Result<Option<Accepted>, ServiceError> {
    match second_factor::check(&app, user_id, code).await {
        Ok(accepted) => Ok(Some(accepted)),
        Err(SecondFactorError::Failed(e)) => Err(e),
        // Wrong, replayed, malformed, or the factor turned off meanwhile.
        Err(_) => Ok(None),
    }
}

/// Uses up an accepted code (a recovery code goes, the owner is mailed). `Wrong`
/// when another request used the same recovery code first.
async fn use_up(app: Services<'_>, user_id: &Uuid, accepted: Accepted) -> Result<(), CodeError> {
    match second_factor::use_up(&app, user_id, accepted, Purpose::SignIn).await {
        Ok(verified) => {
            tracing::info!(user = %user_id, ?verified, "sign-in: second factor passed");
            Ok(())
        }
        Err(SecondFactorError::Failed(e)) => Err(CodeError::Failed(e)),
        Err(_) => Err(CodeError::Wrong),
    }
}

/// Why a one-time code was not taken.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error("too many sign-in attempts")]
    Throttled(Throttled),
    /// Wrong, already used (a replayed authenticator code, a spent recovery code), or
    /// not a code at all: one answer for all.
    #[error("wrong one-time code")]
    Wrong,
    /// The code was right, but the password changed (or the account was closed) since
    /// it was checked: no session.
    #[error("the password changed during the sign-in")]
    Stale,
    #[error("the code could not be checked")]
    Failed(#[source] ServiceError),
}

/// A store or database failure is `Failed`, its cause kept.
macro_rules! failed_from {
    ($error:ident: $($cause:ty),*) => {$(
        impl From<$cause> for $error {
            fn from(e: $cause) -> Self {
                $error::Failed(e.into())
            }
        }
    )*};
}
failed_from!(CodeError: ServiceError, StoreError);

/// Checks a one-time code of `user` (an authenticator-app code or an unused recovery
/// code) under the sign-in failure quotas of `source`: a wrong one counts as a failed
/// sign-in, a right one is taken back. A code accepted once is never accepted again;
/// a recovery code is used up only by [`use_up`], once the sign-in is certain.
async fn check_code(
    app: Services<'_>,
    user: &User,
    code: &str,
    source: Source<'_>,
) -> Result<Accepted, CodeError> {
    let ip = source.ip();
    let attempt = match limits::second_factor(app.store, &app.settings.limits, source).await? {
        Ok(attempt) => attempt,
        Err(throttled) => {
            let locked = Event::new(Kind::LockedOut).ip(ip);
            activity::record_later(app, user.id, locked);
            return Err(CodeError::Throttled(throttled));
        }
    };
    if code.len() > MAX_CODE_INPUT {
        return Err(CodeError::Wrong);
    }
    let Some(accepted) = code_is_right(app, &user.id, code).await? else {
        tracing::info!(user = %user.id, "sign-in: wrong one-time code");
        let failed = Event::new(Kind::SignInFailed).ip(ip).detail("code");
        activity::record_later(app, user.id, failed);
        return Err(CodeError::Wrong);
    };
    attempt.succeeded(app.store).await;
    Ok(accepted)
}

/// A code typed on an account page (turning the second factor off, after the current
/// password): under the same sign-in failure quotas as at sign-in (this browser's
/// trusted-browser cookie, or a stranger's account, address and network quotas), so a stolen
/// session whose password is known cannot guess the code there instead, where no
/// pending sign-in counts its tries.
pub async fn check_account_code(
    app: Services<'_>,
    user: &User,
    code: &str,
    browser: Option<&BrowserClaim>,
    ip: &str,
) -> Result<Accepted, CodeError> {
    let email = Email::parse(&user.email).map_err(|_| CodeError::Wrong)?;
    let source = trusted_browsers::source(app.store, browser, Some(user), &email, ip).await?;
    check_code(app, user, code, source).await
}

/// The API's password grant for an account with a second factor, once the password
/// was right: the grant's `otp` under a stranger's quotas (a program has no device
/// cookie), then the session, with `amr` `pwd otp`. Counted for `/metrics`.
pub async fn sign_in_with_code(
    app: Services<'_>,
    user: User,
    code: &str,
    email: &Email,
    origin: &Origin,
    session: SessionSpec,
) -> Result<SignedIn, CodeError> {
    let source = Source::Stranger {
        email,
        ip: &origin.ip,
    };
    let checked = match check_code(app, &user, code, source).await {
        Ok(accepted) => use_up(app, &user.id, accepted).await,
        Err(e) => Err(e),
    };
    let result = match checked {
        Ok(()) => {
            let start = SessionStart {
                origin,
                session,
                replaces: None,
                browser: None,
                amr: Amr::PasswordAndOtp,
            };
            start_session(app, user, start).await.map_err(|e| match e {
                SignInError::Failed(e) => CodeError::Failed(e),
                _ => CodeError::Stale,
            })
        }
        Err(e) => Err(e),
    };
    count(
        app,
        result.as_ref().err().map(|e| match e {
            CodeError::Throttled(_) => Some(SignInOutcome::Throttled),
            CodeError::Wrong | CodeError::Stale => Some(SignInOutcome::Wrong),
            CodeError::Failed(_) => None,
        }),
    );
    result
}

/// Counts the end of a sign-in's code step: `None` a success, `Some(None)` nothing
/// to count (the store failed), else the refusal.
impl StepError {
    /// How a refused second step counts for `/metrics` (`None`: not a sign-in attempt).
    fn outcome(&self) -> Option<SignInOutcome> {
        match self {
            StepError::Throttled(_) => Some(SignInOutcome::Throttled),
            StepError::Wrong { .. } | StepError::Ended => Some(SignInOutcome::Wrong),
            StepError::NoPending | StepError::Failed(_) => None,
        }
    }
}

fn count(app: Services<'_>, refused: Option<Option<SignInOutcome>>) {
    match refused {
        None => app.metrics.sign_in(SignInOutcome::Ok),
        Some(Some(outcome)) => app.metrics.sign_in(outcome),
        Some(None) => {}
    }
}

/// After a right password in a browser, for an account with a second factor: a new
/// pending sign-in, and the cookie that names it. `target` is where the sign-in goes
/// once the code is right (already checked; empty for the devices page).
pub async fn begin(
    app: Services<'_>,
    user: &User,
    remember: bool,
    target: String,
) -> Result<PendingCookie, ServiceError> {
    let now = now_ms();
    let cookie = PendingCookie {
        user_id: user.id,
        token: random_token(),
    };
    let ttl = app.settings.codes.second_factor_timeout;
    let pending = PendingSignIn {
        remember,
        target,
        password_version: user.password_changed_at,
        created_ms: now,
        expires_ms: now + ttl.as_millis() as i64,
        wrong: 0,
    };
    app.store
        .start_pending(&user.id, &cookie.pid(), &pending, now)
        .await?;
    tracing::info!(user = %user.id, "password right; waiting for the second factor");
    Ok(cookie)
}

/// The pending sign-in `cookie` names, while it lives.
pub async fn pending(
    app: Services<'_>,
    cookie: &PendingCookie,
) -> Result<Option<PendingSignIn>, ServiceError> {
    Ok(app
        .store
        .read_pending(&cookie.user_id, &cookie.pid(), now_ms())
        .await?)
}

/// The code step, as the browser sends it.
pub struct CodeStep<'a> {
    pub cookie: &'a PendingCookie,
    pub code: &'a str,
    pub origin: &'a Origin,
    /// This browser's trusted-browser cookie, if it sent one.
    pub browser: Option<&'a BrowserClaim>,
    /// "Keep me signed in", as ticked on the code page.
    pub remember: bool,
    /// The session this browser already had (ended when the new one starts).
    pub replaces: Option<(Uuid, String)>,
}

/// Why the code step did not sign in.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// No pending sign-in: it expired, was used or ended, never existed, or no longer
    /// holds (the password changed, the account was disabled, the second factor was
    /// turned off). The browser starts again with its password.
    #[error("no pending sign-in")]
    NoPending,
    #[error("too many sign-in attempts")]
    Throttled(Throttled),
    /// A wrong code; `left` more are allowed before the pending sign-in ends.
    #[error("wrong one-time code")]
    Wrong { left: u32 },
    /// A wrong code, and the last one allowed: the pending sign-in has ended.
    #[error("too many wrong one-time codes")]
    Ended,
    #[error("the sign-in could not finish")]
    Failed(#[source] ServiceError),
}

failed_from!(StepError: ServiceError, StoreError);

/// A finished two-step sign-in: the session, and where to go (empty: the devices page).
pub struct Completed {
    pub signed: SignedIn,
    pub target: String,
    /// "Keep me signed in": the session cookie outlives the browser.
    pub remember: bool,
}

/// The code step: the pending sign-in → the account, still as it was → the limiter →
/// the code → the pending sign-in used up → the session (`signin::start_session`, as
/// after a password alone, with `amr` `pwd otp`). Counted for `/metrics` as a sign-in.
pub async fn complete(app: Services<'_>, step: CodeStep<'_>) -> Result<Completed, StepError> {
    let result = complete_steps(app, step).await;
    count(app, result.as_ref().err().map(StepError::outcome));
    result
}

async fn complete_steps(app: Services<'_>, step: CodeStep<'_>) -> Result<Completed, StepError> {
    let (user_id, pid) = (&step.cookie.user_id, step.cookie.pid());
    let user = standing_account(app, user_id, &pid).await?;
    let accepted = pending_code(app, &step, &user, &pid).await?;
    // Used once: of two right codes sent together, one takes it. Only then is a
    // recovery code used up, so the one that lost keeps its code.
    let Some(pending) = app.store.take_pending(user_id, &pid, now_ms()).await? else {
        return Err(StepError::NoPending);
    };
    match use_up(app, user_id, accepted).await {
        Ok(()) => {}
        Err(CodeError::Failed(e)) => return Err(StepError::Failed(e)),
        // The same recovery code used by another request meanwhile: this pending
        // sign-in was taken, so the browser starts again.
        Err(_) => return Err(StepError::NoPending),
    }
    let start = SessionStart {
        origin: step.origin,
        session: SessionSpec::Browser {
            remember: step.remember,
        },
        replaces: step.replaces,
        browser: step.browser,
        amr: Amr::PasswordAndOtp,
    };
    finish(app, user, start, pending.target, step.remember).await
}

/// The second step done with a passkey instead of a code, as the browser sends it.
pub struct PasskeyStep<'a> {
    pub cookie: &'a PendingCookie,
    pub ceremony: Option<&'a CeremonyCookie>,
    pub answer: &'a PublicKeyCredential,
    pub origin: &'a Origin,
    pub browser: Option<&'a BrowserClaim>,
    pub replaces: Option<(Uuid, String)>,
}

/// The second step with a passkey: the pending sign-in → the account, still as it was
/// → the assertion (one of this account's passkeys, under the same failure quotas; a
/// refused one also counts against the pending sign-in's own tries) → the pending
/// sign-in used up → the session, `amr` `pwd hwk user`. Counted for `/metrics`.
pub async fn complete_with_passkey(
    app: Services<'_>,
    step: PasskeyStep<'_>,
) -> Result<Completed, StepError> {
    let result = passkey_steps(app, step).await;
    count(app, result.as_ref().err().map(StepError::outcome));
    result
}

async fn passkey_steps(app: Services<'_>, step: PasskeyStep<'_>) -> Result<Completed, StepError> {
    let (user_id, pid) = (&step.cookie.user_id, step.cookie.pid());
    let user = standing_account(app, user_id, &pid).await?;
    let assertion = passkey_sign_in::Assertion {
        cookie: step.ceremony,
        answer: step.answer,
        ip: &step.origin.ip,
        browser: step.browser,
        second_step_of: Some(&user.id),
    };
    match passkey_sign_in::verify(app, assertion).await {
        Ok(_) => {}
        Err(PasskeyError::Throttled(t)) => return Err(StepError::Throttled(t)),
        Err(PasskeyError::Failed(e)) => return Err(StepError::Failed(e)),
        Err(_) => {
            let failed = app
                .store
                .fail_pending(user_id, &pid, MAX_WRONG_CODES, now_ms())
                .await?;
            return Err(match failed {
                PendingFailure::Counted { left } => StepError::Wrong { left },
                PendingFailure::Ended => StepError::Ended,
                PendingFailure::Missing => StepError::NoPending,
            });
        }
    }
    let Some(pending) = app.store.take_pending(user_id, &pid, now_ms()).await? else {
        return Err(StepError::NoPending);
    };
    let start = SessionStart {
        origin: step.origin,
        session: SessionSpec::Browser {
            remember: pending.remember,
        },
        replaces: step.replaces,
        browser: step.browser,
        amr: Amr::PasswordAndPasskey,
    };
    finish(app, user, start, pending.target, pending.remember).await
}

/// The session a second step that passed starts, and where the browser goes next.
async fn finish(
    app: Services<'_>,
    user: User,
    start: SessionStart<'_>,
    target: String,
    remember: bool,
) -> Result<Completed, StepError> {
    match start_session(app, user, start).await {
        Ok(signed) => Ok(Completed {
            signed,
            target,
            remember,
        }),
        Err(SignInError::Failed(e)) => Err(StepError::Failed(e)),
        // Refused as stale: the password changed between the check and now.
        Err(_) => Err(StepError::NoPending),
    }
}

/// The code of a pending sign-in, counted as a sign-in failure for whoever this
/// browser counts as (its trusted-browser cookie, or a stranger) and, when wrong, against the
/// pending sign-in's own five tries.
async fn pending_code(
    app: Services<'_>,
    step: &CodeStep<'_>,
    user: &User,
    pid: &str,
) -> Result<Accepted, StepError> {
    let email = Email::parse(&user.email).map_err(|_| StepError::NoPending)?;
    let ip = &step.origin.ip;
    let source = trusted_browsers::source(app.store, step.browser, Some(user), &email, ip).await?;
    match check_code(app, user, step.code, source).await {
        Ok(accepted) => Ok(accepted),
        Err(CodeError::Wrong) => {
            let now = now_ms();
            Err(
                match app
                    .store
                    .fail_pending(&user.id, pid, MAX_WRONG_CODES, now)
                    .await?
                {
                    PendingFailure::Counted { left } => StepError::Wrong { left },
                    PendingFailure::Ended => StepError::Ended,
                    PendingFailure::Missing => StepError::NoPending,
                },
            )
        }
        Err(CodeError::Throttled(t)) => Err(StepError::Throttled(t)),
        Err(CodeError::Stale) => Err(StepError::NoPending),
        Err(CodeError::Failed(e)) => Err(StepError::Failed(e)),
    }
}

/// The account of the pending sign-in `pid` of `user_id`, still as at the password
/// step; a pending sign-in that no longer stands is used up, and the browser starts
/// again.
async fn standing_account(app: Services<'_>, user_id: &Uuid, pid: &str) -> Result<User, StepError> {
    let Some(pending) = app.store.read_pending(user_id, pid, now_ms()).await? else {
        return Err(StepError::NoPending);
    };
    let Some(user) = still_valid(app, user_id, &pending).await? else {
        app.store.take_pending(user_id, pid, now_ms()).await?;
        return Err(StepError::NoPending);
    };
    Ok(user)
}

/// The account a pending sign-in was for, if it still stands as it did at the
/// password step: not deleted or disabled, the same password, the second factor on.
async fn still_valid(
    app: Services<'_>,
    user_id: &Uuid,
    pending: &PendingSignIn,
) -> Result<Option<User>, ServiceError> {
    let Some(user) = app.accounts.find_by_id(user_id).await? else {
        return Ok(None);
    };
    if user.disabled_at.is_some() || user.password_changed_at != pending.password_version {
        return Ok(None);
    }
    Ok(second_factor::has_second_factor(app, &user)
        .await?
        .then_some(user))
}
