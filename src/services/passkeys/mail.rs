//! What the owner is told by mail about the account's passkeys.

use serde_json::json;

use crate::accounts::User;
use crate::services::Services;
use crate::support::clock::{exact_time, now_ms};

/// A change to the account's passkeys the owner is told about.
pub enum Notice {
    Added {
        name: String,
    },
    Removed {
        name: String,
    },
    /// An assertion's counter went backwards: the passkey may have been copied.
    Cloned {
        name: String,
    },
    /// The password was reset by an emailed code; these passkeys still sign in.
    ResetKept {
        names: Vec<String>,
    },
}

/// Mails `user` about `notice` (in the background; a failure is logged, the change
/// stands).
pub fn mail_owner(app: &Services<'_>, user: &User, notice: Notice) {
    let public_url = &app.settings.server.public_url;
    let (subject, template, names) = match notice {
        Notice::Added { name } => (
            "A passkey was added to your account",
            "passkey_added",
            vec![name],
        ),
        Notice::Removed { name } => (
            "A passkey was removed from your account",
            "passkey_removed",
            vec![name],
        ),
        Notice::Cloned { name } => (
            "One of your passkeys may have been copied",
            "passkey_cloned",
            vec![name],
        ),
        Notice::ResetKept { names } => (
            "Your password was reset; your passkeys still sign you in",
            "passkeys_after_reset",
            names,
        ),
    };
    let ctx = json!({
        "when": exact_time(now_ms()),
        "name": names.first().cloned().unwrap_or_default(),
        "names": names,
        "security_url": format!("{public_url}/account/security"),
        "reset_url": format!("{public_url}/password/forgot"),
        "devices_url": format!("{public_url}/devices"),
    });
    app.mailer
        .compose_and_send(&user.email, subject, template, &ctx);
}
