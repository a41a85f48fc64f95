//! The "new sign-in to your account" mail: sent when an account signs in from a
//! device (label and IP) it has not used in the last 30 days.

use serde_json::json;

use crate::accounts::{Accounts, User};
use crate::clock::{exact_time, now_ms};
use crate::config::Settings;
use crate::crypto::sha256_hex;
use crate::mail::Mailer;
use crate::report::Report;
use crate::sessions::Origin;

pub const KNOWN_DEVICE_WINDOW_MS: i64 = 30 * 86_400_000;

fn device_fingerprint(origin: &Origin) -> String {
    sha256_hex(format!("{}\n{}", origin.label, origin.ip).as_bytes())
}

/// A new account's first device is known from the start: no "new sign-in" mail for it.
pub async fn first_device(accounts: &Accounts, user: &User, origin: &Origin) {
    let fingerprint = device_fingerprint(origin);
    if let Err(e) = accounts
        .note_device(&user.id, &fingerprint, KNOWN_DEVICE_WINDOW_MS)
        .await
    {
        tracing::warn!(error = %Report(&e), user = %user.id, "could not record the first device");
    }
}

/// Records the device and mails the account owner when it is new. Never fails the
/// sign-in: a database or mail problem is logged.
pub async fn after_sign_in(
    accounts: &Accounts,
    mailer: &Mailer,
    settings: &Settings,
    user: &User,
    origin: &Origin,
) {
    let fingerprint = device_fingerprint(origin);
    let new_device = match accounts
        .note_device(&user.id, &fingerprint, KNOWN_DEVICE_WINDOW_MS)
        .await
    {
        Ok(new) => new,
        Err(e) => {
            tracing::warn!(error = %Report(&e), user = %user.id, "could not record the sign-in device");
            return;
        }
    };
    if !new_device || !settings.mail.new_device_mail {
        return;
    }
    let ctx = json!({
        "label": origin.label,
        "ip": origin.ip,
        "when": exact_time(now_ms()),
        "reset_url": format!("{}/password/forgot", settings.server.public_url),
        "devices_url": format!("{}/devices", settings.server.public_url),
    });
    mailer.compose_and_send(
        &user.email,
        "New sign-in to your Latchkey account",
        "new_device",
        &ctx,
    );
}
