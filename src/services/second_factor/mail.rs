//! What the owner is told by mail about a change to the account's sign-in.

use serde_json::json;
use uuid::Uuid;

use crate::accounts::User;
use crate::config::Settings;
use crate::services::Services;
use crate::support::clock::{exact_time, now_ms};
use crate::support::report::Report;

/// A change to the account's sign-in the owner is told about by mail.
pub enum Notice {
    Enabled,
    Disabled {
        ended: u32,
    },
    /// Turned off by the operator (`latchkey users reset-second-factor`).
    Reset {
        ended: u32,
    },
    RecoveryCodesReplaced,
    RecoveryCodeUsed {
        left: u32,
    },
    PasswordChanged {
        ended: u32,
    },
}

/// Mails the owner about `notice` (in the background; a failure is logged, the change
/// stands).
pub async fn tell_owner(services: &Services<'_>, user_id: &Uuid, notice: Notice) {
    let user = match services.accounts.find_by_id(user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %Report(&e), user = %user_id, "owner not mailed");
            return;
        }
    };
    mail_owner(services, &user, notice);
}

/// Mails `user` about `notice`.
pub fn mail_owner(services: &Services<'_>, user: &User, notice: Notice) {
    let (subject, template, ctx) = notice_mail(services.settings, notice);
    services
        .mailer
        .compose_and_send(&user.email, subject, template, &ctx);
}

/// The subject, template and context of the mail about `notice`.
pub fn notice_mail(
    settings: &Settings,
    notice: Notice,
) -> (&'static str, &'static str, serde_json::Value) {
    let public_url = &settings.server.public_url;
    let (subject, template, extra) = match notice {
        Notice::Enabled => ("Two-step sign-in turned on", "second_factor_on", json!({})),
        Notice::Disabled { ended } => (
            "Two-step sign-in turned off",
            "second_factor_off",
            json!({ "ended": ended }),
        ),
        Notice::Reset { ended } => (
            "Two-step sign-in turned off by an administrator",
            "second_factor_reset",
            json!({ "ended": ended }),
        ),
        Notice::RecoveryCodesReplaced => (
            "New recovery codes made",
            "recovery_codes_replaced",
            json!({}),
        ),
        Notice::RecoveryCodeUsed { left } => (
            "A recovery code was used to sign in",
            "recovery_code_used",
            json!({ "left": left }),
        ),
        Notice::PasswordChanged { ended } => (
            "Your password was changed",
            "password_changed",
            json!({ "ended": ended }),
        ),
    };
    let mut ctx = json!({
        "when": exact_time(now_ms()),
        "security_url": format!("{public_url}/account/security"),
        "reset_url": format!("{public_url}/password/forgot"),
        "devices_url": format!("{public_url}/devices"),
    });
    if let (Some(ctx), Some(extra)) = (ctx.as_object_mut(), extra.as_object()) {
        ctx.extend(extra.clone());
    }
    (subject, template, ctx)
}
