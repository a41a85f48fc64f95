//! One-time password-reset codes: 6 digits from a CSPRNG, stored only as a keyed hash
//! (HMAC under a server secret), valid `reset_code_ttl`, single use, burned after
//! `reset_code_max_tries` wrong tries (counted in the same script that checks).
//!
//! Asking for a code (`send_reset_code`) and using one (`reset_password`: the IP
//! limiter → the code → the new password, ending every session) are written here once.

use secrecy::ExposeSecret;
use serde_json::json;
use uuid::Uuid;

use super::limits::{self, Throttled};
use super::password::replace_password;
use crate::accounts::Work;
use crate::config::Settings;
use crate::services::activity::{Event, Kind};
use crate::services::passkeys::mail as passkey_mail;
use crate::services::{ServiceError, Services};
use crate::store::{PasswordResets, ResetCheck};
use crate::support::clock::now_ms;
pub use crate::support::codes::{new_code, parse_code};
use crate::support::crypto::hmac_hex;
use crate::support::input::{Email, NewPassword};

/// The keyed hash a code is stored as; bound to the user, so a code is worth nothing
/// for another account.
pub fn code_mac(settings: &Settings, user_id: &Uuid, code: &str) -> String {
    hmac_hex(
        settings.tokens.jwt_secret.expose_secret(),
        format!("latchkey reset code\n{user_id}\n{code}").as_bytes(),
    )
}

/// Stores a fresh code (replacing any earlier one) and mails it, when the account exists.
pub async fn send_reset_code(app: Services<'_>, email: &Email) -> Result<(), ServiceError> {
    // No code for a disabled account: it cannot sign in with a new password either.
    let Some(user) = app
        .accounts
        .find_by_email(email)
        .await?
        .filter(|u| u.disabled_at.is_none())
    else {
        return Ok(());
    };
    let code = new_code();
    let ttl = app.settings.codes.ttl;
    let mac = code_mac(app.settings, &user.id, &code);
    app.store
        .store_reset_code(&user.id, &mac, ttl.as_millis() as i64, now_ms())
        .await?;
    let public_url = &app.settings.server.public_url;
    let ctx = json!({
        "code": code,
        "minutes": ttl.as_secs().div_ceil(60),
        "reset_url": format!("{public_url}/password/reset?email={}", urlencode(&user.email)),
        "email": user.email,
    });
    app.mailer.compose_and_send(
        &user.email,
        "Your Latchkey password reset code",
        "reset_code",
        &ctx,
    );
    tracing::info!(user = %user.id, "password-reset code sent");
    Ok(())
}

/// How a reset attempt ended.
#[derive(Debug)]
pub enum Reset {
    /// The password is set and every session of the account has ended.
    Done,
    Throttled(Throttled),
    /// A wrong code; it can be tried again.
    Wrong,
    /// A wrong code that was the last allowed try: the code is gone.
    Burned,
    /// No code: never asked for, expired, used or burned, or no such account.
    Missing,
}

/// Uses a code: the client IP's sign-in budget → a hashing slot → the code → the new
/// password, which ends every session of the account → the address verified
/// (`verification::after_reset`). The slot is taken before the
/// code is looked at, so a busy hasher refuses the attempt while the code still works.
/// An unknown account checks a code too (under an id no account has), so both answers
/// take the same path.
pub async fn reset_password(
    app: Services<'_>,
    email: &Email,
    code: &str,
    password: &NewPassword,
    ip: &str,
) -> Result<Reset, ServiceError> {
    let attempt = match limits::reset_code_try(app.store, &app.settings.limits, ip).await? {
        Ok(a) => a,
        Err(t) => return Ok(Reset::Throttled(t)),
    };
    let slot = match app.hasher.slot(Work::SignIn).await {
        Ok(slot) => slot,
        Err(e) => {
            attempt.abandoned(app.store).await;
            return Err(e.into());
        }
    };
    let user = app.accounts.find_by_email(email).await?;
    let uid = user.as_ref().map(|u| u.id).unwrap_or(Uuid::nil());
    let mac = code_mac(app.settings, &uid, code);
    let max_tries = app.settings.codes.max_tries;
    let check = app
        .store
        .check_reset_code(&uid, &mac, max_tries, now_ms())
        .await?;
    let user = match (check, user) {
        (ResetCheck::Right, Some(user)) => user,
        (ResetCheck::Wrong, _) => return Ok(Reset::Wrong),
        (ResetCheck::Burned, _) => return Ok(Reset::Burned),
        _ => return Ok(Reset::Missing),
    };
    attempt.succeeded(app.store).await;
    let event = Event::new(Kind::PasswordReset).ip(ip);
    replace_password(app, &slot, &user, password, None, event).await?;
    // The code came from the mailbox: the address is verified, and an account someone
    // else registered with it is the owner's now.
    crate::services::verification::after_reset(app, &user).await?;
    // A new password does not remove passkeys: the owner is told which still sign in.
    let remaining = app.accounts.passkeys(&user.id).await?;
    if !remaining.is_empty() {
        let names = remaining.into_iter().map(|p| p.name).collect();
        passkey_mail::mail_owner(&app, &user, passkey_mail::Notice::ResetKept { names });
    }
    Ok(Reset::Done)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
