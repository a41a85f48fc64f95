//! The mails about the account itself: the code that confirms a new address, the
//! notice (with its undo link) to the address it replaced, the notice that an undo put
//! the old address back, and the goodbye when the account is deleted. Each names the
//! device and network address that made the change and says what to do if it was not
//! the reader; each has a plain-text and an HTML part.

use lettre::Message;
use serde_json::{json, Value};

use crate::config::Settings;
use crate::mail::{MailError, Mailer};
use crate::services::sessions::Origin;
use crate::support::clock::{exact_time, now_ms};
use crate::support::report::Report;

/// Who made a change: a browser (its device label and network address), or the
/// operator's command line.
#[derive(Debug, Clone)]
pub enum Actor<'a> {
    Browser(&'a Origin),
    Operator,
}

/// A mail about the account.
pub enum AccountMail<'a> {
    /// To the new address: the code that confirms it.
    ChangeCode { code: &'a str, minutes: u64 },
    /// To the address that was replaced: what it was replaced by, and the undo link.
    Changed {
        new_email: &'a str,
        undo_url: &'a str,
    },
    /// To the address an undo link put back: every device was signed out.
    Restored { ended: u32 },
    /// To the address of a deleted account.
    Deleted,
}

impl AccountMail<'_> {
    fn parts(&self) -> (&'static str, &'static str, Value) {
        match self {
            AccountMail::ChangeCode { code, minutes } => (
                "Confirm your new Latchkey address",
                "email_change_code",
                json!({ "code": code, "minutes": minutes }),
            ),
            AccountMail::Changed {
                new_email,
                undo_url,
            } => (
                "Your Latchkey address was changed",
                "email_changed",
                json!({ "new_email": new_email, "undo_url": undo_url, "days": 7 }),
            ),
            AccountMail::Restored { ended } => (
                "Your Latchkey address was changed back",
                "email_restored",
                json!({ "ended": ended }),
            ),
            AccountMail::Deleted => (
                "Your Latchkey account was deleted",
                "account_deleted",
                json!({}),
            ),
        }
    }
}

/// The mail to `to`, ready to send.
pub fn compose(
    settings: &Settings,
    mailer: &Mailer,
    to: &str,
    mail: &AccountMail<'_>,
    actor: &Actor<'_>,
) -> Result<Message, MailError> {
    let (subject, template, extra) = mail.parts();
    let public_url = &settings.server.public_url;
    let (device, ip) = match actor {
        Actor::Browser(origin) => (origin.label.to_string(), origin.ip.clone()),
        Actor::Operator => (
            "the administrator's command line".to_string(),
            String::new(),
        ),
    };
    let mut ctx = json!({
        "email": to,
        "when": exact_time(now_ms()),
        "device": device,
        "ip": ip,
        "by_operator": matches!(actor, Actor::Operator),
        "reset_url": format!("{public_url}/password/forgot"),
        "security_url": format!("{public_url}/account/security"),
        "register_url": format!("{public_url}/register"),
    });
    if let (Some(ctx), Some(extra)) = (ctx.as_object_mut(), extra.as_object()) {
        ctx.extend(extra.clone());
    }
    mailer.compose(to, subject, template, &ctx)
}

/// Composes and sends in the background; a failure is logged, the change stands.
pub fn send(
    settings: &Settings,
    mailer: &Mailer,
    to: &str,
    mail: &AccountMail<'_>,
    actor: &Actor<'_>,
) {
    match compose(settings, mailer, to, mail, actor) {
        Ok(message) => mailer.send(message),
        Err(e) => tracing::error!(error = %Report(&e), "account mail not sent"),
    }
}
