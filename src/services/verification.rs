//! Verified addresses: an account proves it holds its address with a 6-digit code or a
//! one-click link, both mailed together (at registration, and again on request), and
//! both used up by either. A password reset by emailed code proves the same mailbox,
//! and takes over an account someone else registered with the address (`after_reset`).
//!
//! The code is the reset code's machinery (6 digits from a CSPRNG, stored only as a
//! keyed hash, single use, burned after `reset_code_max_tries` wrong tries, each try
//! counted against the client IP's sign-in budget); the link names the account and a
//! 256-bit secret, stored only as a keyed hash. Both hashes are bound to the account
//! and to the address they were mailed to: another account's code or link is worth
//! nothing here, and so is one mailed to an address the account no longer has.
//!
//! Mails: at most [`limits::VERIFICATION_MAILS_PER_HOUR`] an hour per account, and a resend
//! counts against the asking client's address like a reset request; a refused one is
//! answered as a sent one.
//!
//! `stage()` runs the sweep (`account_admin::sweep_unverified`) in the background of
//! every server, every quarter of `unverified_account_ttl` (at least every second, at
//! most every hour); servers sharing a database may sweep at once, each deletion is
//! conditional.

use std::time::Duration;

use rocket::fairing::AdHoc;
use secrecy::ExposeSecret;
use serde_json::json;
use uuid::Uuid;

use crate::accounts::{Accounts, User};
use crate::config::Settings;
use crate::services::activity::{self, Event, Kind};
use crate::services::sessions::Origin;
use crate::services::signin::limits::{self, Throttled};
use crate::services::{ServiceError, Services};
use crate::store::{email_field, EmailVerifications, ResetCheck, Sessions, Store};
use crate::support::clock::{exact_time, now_ms};
use crate::support::codes::{new_code, parse_code};
use crate::support::crypto::{hmac_hex, random_token, uid_and_token};
use crate::support::report::Report;

/// How long a mailed code and link work.
pub const VERIFICATION_TTL: Duration = Duration::from_secs(24 * 3600);

/// The keyed hash of a code or link secret (`what`), bound to the account and the
/// address it was mailed to.
fn mac(settings: &Settings, what: &str, user: &User, secret: &str) -> String {
    let address = user.email.to_lowercase();
    hmac_hex(
        settings.tokens.jwt_secret.expose_secret(),
        format!("latchkey verify {what}\n{}\n{address}\n{secret}", user.id).as_bytes(),
    )
}

/// Who asked for the mail.
pub enum Asked<'a> {
    /// The account was just made from this device.
    Registration(&'a Origin),
    /// Someone signed in as the account asked again, from this device.
    Resend(&'a Origin),
}

/// Mails the account a fresh code and link (the earlier ones stop working), unless
/// it is verified already or the hour's mails are used up. True when mailed; a caller
/// answers the same either way.
pub async fn send(app: Services<'_>, user: &User, asked: Asked<'_>) -> Result<bool, ServiceError> {
    if user.email_verified() {
        return Ok(false);
    }
    let (origin, ip) = match asked {
        Asked::Registration(o) => (o, None),
        Asked::Resend(o) => (o, Some(o.ip.as_str())),
    };
    if let Err(t) = limits::verification_mail(app.store, &app.settings.limits, &user.id, ip).await?
    {
        tracing::info!(user = %user.id, retry_after = ?t.retry_after, "verification mail not sent: limit reached");
        return Ok(false);
    }
    let code = new_code();
    let secret = random_token();
    let ttl = VERIFICATION_TTL;
    app.store
        .store_verification(
            &user.id,
            &mac(app.settings, "code", user, &code),
            &mac(app.settings, "link", user, &secret),
            ttl.as_millis() as i64,
            now_ms(),
        )
        .await?;
    let public_url = &app.settings.server.public_url;
    let ctx = json!({
        "code": code,
        "hours": ttl.as_secs() / 3600,
        "link_url": format!("{public_url}/account/verify/{}.{secret}", user.id),
        "code_url": format!("{public_url}/account/verify"),
        "forgot_url": format!("{public_url}/password/forgot"),
        "email": user.email,
        "label": origin.label,
        "ip": origin.ip,
        "when": exact_time(now_ms()),
        "registration": matches!(asked, Asked::Registration(_)),
        "ttl_days": app.settings.verification.unverified_account_ttl.as_secs().div_ceil(86_400),
    });
    app.mailer.compose_and_send(
        &user.email,
        "Verify your email address for Latchkey",
        "verify_email",
        &ctx,
    );
    tracing::info!(user = %user.id, "verification code and link sent");
    Ok(true)
}

/// How a typed code ended.
#[derive(Debug)]
pub enum CodeCheck {
    /// The address is verified now (or already was).
    Verified,
    /// Not six digits, wrong (it can be tried again), or no live code.
    Wrong,
    /// A wrong code that was the last allowed try: the code and link are gone.
    Burned,
    Throttled(Throttled),
}

/// Checks a code typed by the signed-in account `user_id`: the client IP's budget →
/// the code (constant time, counted, burned at `reset_code_max_tries`) → verified.
pub async fn check_code(
    app: Services<'_>,
    user_id: &Uuid,
    typed: &str,
    ip: &str,
) -> Result<CodeCheck, ServiceError> {
    let attempt = match limits::reset_code_try(app.store, &app.settings.limits, ip).await? {
        Ok(a) => a,
        Err(t) => return Ok(CodeCheck::Throttled(t)),
    };
    let Some(user) = app.accounts.find_by_id(user_id).await? else {
        return Ok(CodeCheck::Wrong);
    };
    if user.email_verified() {
        attempt.succeeded(app.store).await;
        return Ok(CodeCheck::Verified);
    }
    // A malformed code is a wrong try like any other.
    let code = parse_code(typed).unwrap_or_default();
    let check = app
        .store
        .check_verification_code(
            &user.id,
            &mac(app.settings, "code", &user, &code),
            app.settings.codes.max_tries,
            now_ms(),
        )
        .await?;
    match check {
        ResetCheck::Right => {
            attempt.succeeded(app.store).await;
            if mark_verified(app.store, app.accounts, &user).await? {
                let verified = Event::new(Kind::EmailVerified).ip(ip).detail("code");
                activity::record(app, &user.id, verified).await;
            }
            Ok(CodeCheck::Verified)
        }
        ResetCheck::Burned => Ok(CodeCheck::Burned),
        ResetCheck::Wrong | ResetCheck::Missing => Ok(CodeCheck::Wrong),
    }
}

/// Uses a mailed link (`UID.SECRET`): the account it names is verified when the secret
/// is its live one. The account on success; `None` for a link that is malformed,
/// used, replaced, expired or another account's.
pub async fn use_link(app: Services<'_>, token: &str) -> Result<Option<User>, ServiceError> {
    let Some((user_id, secret)) = uid_and_token(token) else {
        return Ok(None);
    };
    let Some(user) = app.accounts.find_by_id(&user_id).await? else {
        return Ok(None);
    };
    let link = mac(app.settings, "link", &user, secret);
    if !app
        .store
        .take_verification_link(&user.id, &link, now_ms())
        .await?
    {
        return Ok(None);
    }
    if mark_verified(app.store, app.accounts, &user).await? {
        let verified = Event::new(Kind::EmailVerified).detail("link");
        activity::record(app, &user.id, verified).await;
    }
    Ok(Some(user))
}

/// Marks the account's address verified: in the database (only while it is still the
/// address the account has), then beside its sessions, so they answer
/// `email_verified` at their next check; its pending code and link end. True when it
/// was unverified. Also `latchkey users verify`.
pub async fn mark_verified(
    store: &Store,
    accounts: &Accounts,
    user: &User,
) -> Result<bool, ServiceError> {
    let changed = accounts
        .mark_verified(&user.id, Some(&user.email.to_lowercase()))
        .await?;
    store
        .set_account_email(&user.id, &email_field(&user.email, true))
        .await?;
    store.forget_verification(&user.id).await?;
    if changed {
        tracing::info!(user = %user.id, "address verified");
    }
    Ok(changed)
}

/// After a password reset by emailed code (every session has ended): the reset proved
/// the mailbox, so the address is verified. An account that was unverified may have
/// been registered by someone else with the owner's address: its second factor and
/// the apps it allowed go too, so nothing the registrant set up stays between the
/// owner and the account.
pub async fn after_reset(app: Services<'_>, user: &User) -> Result<(), ServiceError> {
    if !user.email_verified() {
        if app.accounts.disable_second_factor(&user.id).await? {
            tracing::info!(user = %user.id, "reset of an unverified account: its second factor is off");
        }
        app.accounts.forget_consents(&user.id).await?;
    }
    if mark_verified(app.store, app.accounts, user).await? {
        let verified = Event::new(Kind::EmailVerified).detail("reset");
        activity::record(app, &user.id, verified).await;
    }
    Ok(())
}

/// Records a sign-in as a use of the account (it keeps an unverified account from
/// the sweep). Never fails the sign-in: a database problem is logged.
pub async fn note_used(accounts: &Accounts, user: &User) {
    if let Err(e) = accounts.note_used(&user.id).await {
        tracing::warn!(error = %Report(&e), user = %user.id, "could not record the account's use");
    }
}

/// Whether `require_verified_email` keeps this account from apps, forward
/// authentication and the password grant.
pub fn must_verify_first(settings: &Settings, email_verified: bool) -> bool {
    settings.verification.require_verified_email && !email_verified
}

/// How often the sweep runs for a given `unverified_account_ttl`.
fn sweep_period(ttl: Duration) -> Duration {
    (ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// Starts the sweep of unused unverified accounts once the app is up (a server, or a
/// test's local client); it stops when the app shuts down.
pub fn stage() -> AdHoc {
    AdHoc::on_liftoff("Unverified-account sweep", |rocket| {
        Box::pin(async move {
            let (Some(settings), Some(store), Some(accounts)) = (
                rocket.state::<Settings>(),
                rocket.state::<Store>(),
                rocket.state::<Accounts>(),
            ) else {
                return;
            };
            let ttl = settings.verification.unverified_account_ttl;
            let (store, accounts) = (store.clone(), accounts.clone());
            let shutdown = rocket.shutdown();
            tokio::spawn(async move {
                let mut shutdown = std::pin::pin!(shutdown);
                let mut every = tokio::time::interval(sweep_period(ttl));
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                every.tick().await;
                loop {
                    tokio::select! {
                        _ = &mut shutdown => return,
                        _ = every.tick() => {}
                    }
                    let swept =
                        crate::services::account_admin::sweep_unverified(&store, &accounts, ttl);
                    if let Err(e) = swept.await {
                        tracing::warn!(error = %Report(&e), "the unverified-account sweep failed; it runs again later");
                    }
                }
            });
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_runs_a_quarter_of_the_ttl_apart_within_a_second_and_an_hour() {
        assert_eq!(sweep_period(Duration::from_secs(1)), Duration::from_secs(1));
        assert_eq!(
            sweep_period(Duration::from_secs(40)),
            Duration::from_secs(10)
        );
        assert_eq!(
            sweep_period(Duration::from_secs(604_800)),
            Duration::from_secs(3600)
        );
    }
}
