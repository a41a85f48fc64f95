//! Changing an account's address, in three steps:
//!
//! 1. `start`: the owner (password, and second factor when on, already checked by the
//!    caller) names a new address; a 6-digit code (a CSPRNG, stored as a keyed hash
//!    bound to the account, `codes` TTL and tries) is mailed to it. When the address
//!    belongs to another account the change waits all the same and nothing is mailed:
//!    the answer, its timing class and the stored state are the same, so the page
//!    tells nobody whether an address has an account, and the code never arrives.
//! 2. `confirm`: the right code moves the account to the new address (one conditional
//!    `UPDATE`; another account holding it by then answers as a wrong code) and marks
//!    it verified (the code proved the mailbox), the sessions carry on under it, and
//!    the old address is mailed an undo link.
//! 3. `undo`: the link (`UID.TOKEN`, only the token's hash stored; 7 days; single use:
//!    it ends every undo link and waiting change of the account) puts the old address
//!    back and ends every session, for an owner whose account was taken over.

use secrecy::ExposeSecret;
use uuid::Uuid;

use super::mail::{self, AccountMail, Actor};
use crate::accounts::{AccountError, User};
use crate::services::activity::{self, Event, Kind};
use crate::services::signin::limits::{self, Throttled};
use crate::services::signin::password_reset::new_code;
use crate::services::{ServiceError, Services};
use crate::store::{email_field, EmailChangeCheck, EmailChanges, Sessions};
use crate::support::clock::now_ms;
use crate::support::crypto::{hmac_hex, random_token, sha256_hex, uid_and_token};
use crate::support::input::Email;

/// How long the old address's undo link works.
pub const UNDO_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// The keyed hash an address change's code is stored as: bound to the account and to
/// this use, so neither another account's code nor a reset code is worth anything here.
fn code_mac(app: Services<'_>, user_id: &Uuid, code: &str) -> String {
    hmac_hex(
        app.settings.tokens.jwt_secret.expose_secret(),
        format!("latchkey email change code\n{user_id}\n{code}").as_bytes(),
    )
}

/// Starts a change of `user`'s address to `to` (replacing any change waiting), and
/// mails the code to `to` unless another account holds it. Answers the same either way;
/// `Throttled` past [`limits::EMAIL_CHANGES_PER_HOUR`] changes of this account (then
/// nothing is stored or mailed).
pub async fn start(
    app: Services<'_>,
    user: &User,
    to: &Email,
    actor: &Actor<'_>,
) -> Result<Result<(), Throttled>, ServiceError> {
    if let Err(t) = limits::email_change(app.store, &user.id).await? {
        return Ok(Err(t));
    }
    let code = new_code();
    let ttl = app.settings.codes.ttl;
    let mac = code_mac(app, &user.id, &code);
    app.store
        .start_email_change(
            &user.id,
            to.as_str(),
            &mac,
            ttl.as_millis() as i64,
            now_ms(),
        )
        .await?;
    let holder = app.accounts.find_by_email(to).await?;
    if holder.is_some_and(|h| h.id != user.id) {
        tracing::info!(user = %user.id, "address change to an address in use: no code mailed");
        return Ok(Ok(()));
    }
    let minutes = ttl.as_secs().div_ceil(60);
    let code_mail = AccountMail::ChangeCode {
        code: &code,
        minutes,
    };
    mail::send(app.settings, app.mailer, to.as_str(), &code_mail, actor);
    tracing::info!(user = %user.id, "address change started; code mailed");
    Ok(Ok(()))
}

/// The address a change of `user`'s waits to move to.
pub async fn waiting(app: Services<'_>, user: &User) -> Result<Option<String>, ServiceError> {
    Ok(app.store.pending_email_change(&user.id, now_ms()).await?)
}

/// How a confirmation ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// The account's address is now `to`.
    Changed { to: String },
    /// A wrong code (it can be tried again), or a right one for an address another
    /// account took meanwhile: the same answer.
    Wrong,
    /// No change waits any more: never started, expired, used, or burned by this try.
    Missing,
}

/// Checks `code` against `user`'s waiting change; right, moves the account and mails
/// the old address its undo link.
pub async fn confirm(
    app: Services<'_>,
    user: &User,
    code: &str,
    actor: &Actor<'_>,
) -> Result<Confirmed, ServiceError> {
    let mac = code_mac(app, &user.id, code);
    let max_tries = app.settings.codes.max_tries;
    let check = app
        .store
        .confirm_email_change(&user.id, &mac, max_tries, now_ms())
        .await?;
    let to = match check {
        EmailChangeCheck::Right(to) => to,
        EmailChangeCheck::Wrong => return Ok(Confirmed::Wrong),
        EmailChangeCheck::Burned | EmailChangeCheck::Missing => return Ok(Confirmed::Missing),
    };
    let (Ok(from), Ok(to)) = (Email::parse(&user.email), Email::parse(&to)) else {
        return Ok(Confirmed::Missing);
    };
    match app.accounts.change_email(&user.id, &from, &to).await {
        Ok(true) => {}
        Ok(false) => return Ok(Confirmed::Missing),
        Err(AccountError::Duplicate) => {
            tracing::info!(user = %user.id, "address change: the address was taken meanwhile");
            return Ok(Confirmed::Wrong);
        }
        Err(e) => return Err(e.into()),
    }
    // The code proved the new mailbox: the address is verified.
    app.accounts
        .mark_verified(&user.id, Some(&to.normalized()))
        .await?;
    app.store
        .set_account_email(&user.id, &email_field(to.as_str(), true))
        .await?;
    let token = random_token();
    app.store
        .keep_email_undo(
            &user.id,
            &sha256_hex(token.as_bytes()),
            from.as_str(),
            UNDO_TTL_MS,
            now_ms(),
        )
        .await?;
    let public_url = &app.settings.server.public_url;
    let undo_url = format!("{public_url}/account/email/undo/{}.{token}", user.id);
    let notice = AccountMail::Changed {
        new_email: to.as_str(),
        undo_url: &undo_url,
    };
    mail::send(app.settings, app.mailer, from.as_str(), &notice, actor);
    tracing::info!(user = %user.id, "address changed; the old address was mailed an undo link");
    let changed = actor_event(Event::new(Kind::EmailChanged), actor);
    activity::record(app, &user.id, changed).await;
    Ok(Confirmed::Changed {
        to: to.as_str().to_string(),
    })
}

/// How an undo link ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Undone {
    /// The old address is back and `ended` sessions ended.
    Restored { email: String, ended: u32 },
    /// Unknown, used, expired, or the account is gone.
    Unknown,
    /// The old address belongs to another account now: nothing changed (the link is
    /// used up).
    Taken,
}

/// Uses the undo link `link` (`UID.TOKEN`).
pub async fn undo(
    app: Services<'_>,
    link: &str,
    actor: &Actor<'_>,
) -> Result<Undone, ServiceError> {
    let Some((user_id, token)) = uid_and_token(link) else {
        return Ok(Undone::Unknown);
    };
    let Some(user) = app.accounts.find_by_id(&user_id).await? else {
        return Ok(Undone::Unknown);
    };
    let hash = sha256_hex(token.as_bytes());
    let Some(old) = app.store.take_email_undo(&user_id, &hash, now_ms()).await? else {
        return Ok(Undone::Unknown);
    };
    let (Ok(current), Ok(old)) = (Email::parse(&user.email), Email::parse(&old)) else {
        return Ok(Undone::Unknown);
    };
    match app.accounts.change_email(&user_id, &current, &old).await {
        Ok(true) => {}
        Ok(false) => return Ok(Undone::Unknown),
        Err(AccountError::Duplicate) => return Ok(Undone::Taken),
        Err(e) => return Err(e.into()),
    }
    // The link was opened from the old mailbox: that address is proven too.
    app.accounts
        .mark_verified(&user_id, Some(&old.normalized()))
        .await?;
    let ended = crate::services::sessions::end_all(app.store, &user_id).await?;
    let notice = AccountMail::Restored { ended };
    mail::send(app.settings, app.mailer, old.as_str(), &notice, actor);
    tracing::info!(user = %user_id, ended, "address change undone; every session ended");
    let undone = actor_event(Event::new(Kind::EmailChanged).detail("undo"), actor);
    activity::record(app, &user_id, undone).await;
    Ok(Undone::Restored {
        email: old.as_str().to_string(),
        ended,
    })
}

/// The event, from the browser that made the change (the operator has none).
fn actor_event(event: Event, actor: &Actor<'_>) -> Event {
    match actor {
        Actor::Browser(origin) => event.from(origin),
        Actor::Operator => event,
    }
}
