//! Checking a code an account's owner typed (`check`: an authenticator code for a
//! later time step, spent at once; or an unused recovery code), using up a recovery
//! code once the caller is sure (`use_up`), and what an account has (`enrolled`,
//! `has_second_factor`).

use uuid::Uuid;

use super::mail::{tell_owner, Notice};
use super::sealing::{stored_context, SealingKeys};
use super::totp::{matching_step, parse_code, Typed};
use crate::accounts::{AccountError, User};
use crate::services::activity::{self, Event, Kind};
use crate::services::{ServiceError, Services};
use crate::store::StoreError;
use crate::support::clock::now_ms;

/// Whether an account's second factor is on, and what it has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Unix ms when it was turned on.
    pub enabled_at: i64,
    pub recovery_codes_left: u32,
}

/// Which factor a right code was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// A code from the authenticator app, for a time step not accepted before.
    Totp,
    /// A recovery code, now used up (the owner was mailed); `left` are still unused.
    RecoveryCode { left: u32 },
}

/// A code that did not pass, or why nothing could be checked. Only `Failed` is the
/// server's fault; every other case is the client's answer (a 4xx).
#[derive(Debug, thiserror::Error)]
pub enum SecondFactorError {
    /// Neither 6 digits nor a recovery code's 16 characters.
    #[error("enter the 6-digit code from your authenticator app, or a recovery code")]
    Malformed,
    /// Not a current code, and not an unused recovery code of this account.
    #[error("that code is not right")]
    WrongCode,
    /// A right code for a time step already accepted (a replay, or the same code a
    /// second time): refused, as NIST SP 800-63B §5.1.4.2 asks.
    #[error("that code was already used; wait for the next one")]
    Replayed,
    /// The account has no second factor.
    #[error("the second factor is not on")]
    NotEnrolled,
    /// The account already has one (turning on twice).
    #[error("the second factor is already on")]
    AlreadyEnrolled,
    #[error("the second factor could not be checked")]
    Failed(#[source] ServiceError),
}

impl SecondFactorError {
    /// A code that did not pass (malformed, wrong or replayed): what a limiter counts.
    pub fn is_wrong_code(&self) -> bool {
        matches!(
            self,
            SecondFactorError::Malformed
                | SecondFactorError::WrongCode
                | SecondFactorError::Replayed
        )
    }
}

impl From<AccountError> for SecondFactorError {
    fn from(e: AccountError) -> Self {
        SecondFactorError::Failed(e.into())
    }
}

impl From<StoreError> for SecondFactorError {
    fn from(e: StoreError) -> Self {
        SecondFactorError::Failed(e.into())
    }
}

/// Whether the account's second factor is on, and how many recovery codes it has
/// left.
pub async fn enrolled(
    services: &Services<'_>,
    user_id: &Uuid,
) -> Result<Option<Status>, SecondFactorError> {
    let Some(row) = services.accounts.second_factor(user_id).await? else {
        return Ok(None);
    };
    let left = services.accounts.recovery_codes_left(user_id).await?;
    Ok(Some(Status {
        enabled_at: row.enabled_at,
        recovery_codes_left: left,
    }))
}

/// Whether the account has a second factor turned on: one read of its row (not the
/// recovery-code count `enrolled` adds), at every right password. A
/// database failure is an error, never "off".
pub async fn has_second_factor(app: Services<'_>, user: &User) -> Result<bool, ServiceError> {
    Ok(app.accounts.second_factor(&user.id).await?.is_some())
}

/// A right code, checked. An authenticator code's time step is already spent (no
/// replay); a recovery code is still unused until [`use_up`]: a caller that may yet
/// refuse the sign-in (the code page, whose pending sign-in another request may take
/// first) uses it up only once the sign-in is certain, so a recovery code is never
/// spent on a sign-in that does not happen.
#[derive(Debug)]
pub enum Accepted {
    Totp,
    Recovery { mac: String },
}

/// What a code is checked for. A recovery code used to sign in mails the owner; one
/// used to turn the second factor off does not (the turning-off mail says it all, and
/// the other codes go with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    SignIn,
    TurnOff,
    /// Confirming a change to the account (a new address, deleting it): that change's
    /// own mail says what happened.
    AccountChange,
}

/// Checks a code an account's owner typed: a current authenticator code for a time
/// step later than the last accepted one (recorded atomically, so a code passes
/// once), or one of the account's unused recovery codes (not yet used up: see
/// [`Accepted`]).
pub async fn check(
    services: &Services<'_>,
    user_id: &Uuid,
    code: &str,
) -> Result<Accepted, SecondFactorError> {
    let typed = parse_code(code).ok_or(SecondFactorError::Malformed)?;
    let row = services
        .accounts
        .second_factor(user_id)
        .await?
        .ok_or(SecondFactorError::NotEnrolled)?;
    let keys = SealingKeys::new(&services.settings.second_factor);
    match typed {
        Typed::Totp(code) => {
            let secret = keys
                .open(&stored_context(user_id), &row.secret_sealed)
                .ok_or_else(unreadable)?;
            let step =
                matching_step(&secret, &code, now_ms()).ok_or(SecondFactorError::WrongCode)?;
            if step <= row.last_step
                || !services
                    .accounts
                    .advance_second_factor_step(user_id, step)
                    .await?
            {
                return Err(SecondFactorError::Replayed);
            }
            Ok(Accepted::Totp)
        }
        Typed::Recovery(code) => {
            let mac = keys.recovery_mac(user_id, &code);
            if !services.accounts.has_recovery_code(user_id, &mac).await? {
                return Err(SecondFactorError::WrongCode);
            }
            Ok(Accepted::Recovery { mac })
        }
    }
}

/// Finishes an accepted code: a recovery code is used up now (atomically: of two
/// requests with one code, one passes; the other is `WrongCode`), and the owner is
/// mailed when it signed in.
pub async fn use_up(
    services: &Services<'_>,
    user_id: &Uuid,
    accepted: Accepted,
    purpose: Purpose,
) -> Result<Verified, SecondFactorError> {
    let Accepted::Recovery { mac } = accepted else {
        return Ok(Verified::Totp);
    };
    if !services.accounts.use_recovery_code(user_id, &mac).await? {
        return Err(SecondFactorError::WrongCode);
    }
    let left = services.accounts.recovery_codes_left(user_id).await?;
    let used = Event::new(Kind::RecoveryCodeUsed).detail(&format!("{left} left"));
    activity::record(*services, user_id, used).await;
    if purpose == Purpose::SignIn {
        tell_owner(services, user_id, Notice::RecoveryCodeUsed { left }).await;
    }
    Ok(Verified::RecoveryCode { left })
}

/// [`check`] and [`use_up`] at once, for a caller with nothing left to refuse.
pub async fn verify(
    services: &Services<'_>,
    user_id: &Uuid,
    code: &str,
    purpose: Purpose,
) -> Result<Verified, SecondFactorError> {
    let accepted = check(services, user_id, code).await?;
    use_up(services, user_id, accepted, purpose).await
}

/// A stored secret the key does not open (or a secret that could not be sealed): the
/// start checks the key, so only a row changed by hand gets here. A 500, logged.
pub(super) fn unreadable() -> SecondFactorError {
    SecondFactorError::Failed(ServiceError::Accounts(AccountError::Unsealable))
}
