//! The "new sign-in to your account" mail: sent when an account signs in from a device
//! (label and IP) it has not used in the last 30 days, at most
//! [`NEW_DEVICE_MAILS_PER_HOUR`](super::limits::NEW_DEVICE_MAILS_PER_HOUR) times an
//! hour per account (every sign-in is still on the devices page). An API client's own
//! name is quoted in it as the app's claim, never as a fact.

use serde_json::json;

use super::limits::{self, NEW_DEVICE_MAILS_PER_HOUR};
use crate::accounts::{Accounts, User};
use crate::services::sessions::Origin;
use crate::services::Services;
use crate::support::clock::{exact_time, now_ms};
use crate::support::crypto::sha256_hex;
use crate::support::input::Label;
use crate::support::report::Report;

pub const KNOWN_DEVICE_WINDOW_MS: i64 = 30 * 86_400_000;

/// The device a sign-in came from, as the notice names it.
pub struct Device<'a> {
    pub origin: &'a Origin,
    /// What an API client calls itself, when it gave a name.
    pub client_name: Option<&'a Label>,
}

impl Device<'_> {
    fn fingerprint(&self) -> String {
        let label = self.client_name.unwrap_or(&self.origin.label);
        sha256_hex(format!("{label}\n{}", self.origin.ip).as_bytes())
    }
}

/// A new account's first device is known from the start: no "new sign-in" mail for it.
pub async fn first_device(accounts: &Accounts, user: &User, origin: &Origin) {
    let device = Device {
        origin,
        client_name: None,
    };
    if let Err(e) = accounts
        .note_device(&user.id, &device.fingerprint(), KNOWN_DEVICE_WINDOW_MS)
        .await
    {
        tracing::warn!(error = %Report(&e), user = %user.id, "could not record the first device");
    }
}

/// Records the device and mails the account owner when it is new and the hour's
/// mails are not used up. Never fails the sign-in: a database, store or mail problem
/// is logged.
pub async fn after_sign_in(app: Services<'_>, user: &User, device: &Device<'_>) {
    let new_device = match app
        .accounts
        .note_device(&user.id, &device.fingerprint(), KNOWN_DEVICE_WINDOW_MS)
        .await
    {
        Ok(new) => new,
        Err(e) => {
            tracing::warn!(error = %Report(&e), user = %user.id, "could not record the sign-in device");
            return;
        }
    };
    if !new_device || !app.settings.mail.new_device_mail || !mail_allowed(app, user).await {
        return;
    }
    let public_url = &app.settings.server.public_url;
    let ctx = json!({
        "label": device.origin.label,
        "client_name": device.client_name,
        "ip": device.origin.ip,
        "when": exact_time(now_ms()),
        "reset_url": format!("{public_url}/password/forgot"),
        "devices_url": format!("{public_url}/devices"),
    });
    app.mailer.compose_and_send(
        &user.email,
        "New sign-in to your Latchkey account",
        "new_device",
        &ctx,
    );
}

/// Whether this account may get another new-device mail this hour. When the store
/// does not answer, the mail goes: a missed warning is worse than one more mail.
async fn mail_allowed(app: Services<'_>, user: &User) -> bool {
    match limits::new_device_mail(app.store, &user.id).await {
        Ok(Ok(_)) => true,
        Ok(Err(_)) => {
            tracing::info!(user = %user.id, "new-device mail not sent: {NEW_DEVICE_MAILS_PER_HOUR} already sent this hour");
            false
        }
        Err(e) => {
            tracing::warn!(error = %Report(&e), user = %user.id, "new-device mail limit unknown");
            true
        }
    }
}
