//! The second factor: an authenticator app (TOTP, RFC 6238: 160-bit secret, SHA-1,
//! 6 digits, 30 s steps, one step of drift either way) and ten single-use recovery
//! codes. Turning it on, checking a code, replacing the recovery codes and turning it
//! off, for the account pages and the sign-in alike.
//!
//! - The secret is stored sealed (AES-256-GCM, the user id as associated data, so a
//!   sealed secret copied to another account's row does not open) under a key derived
//!   from `second_factor_key`; a set-up not yet confirmed travels sealed the same way
//!   (with its expiry, under another associated data) in a cookie, never in the clear.
//! - A code is accepted only for a time step later than the last one accepted
//!   (NIST SP 800-63B §5.1.4.2): the account's row keeps it, and accepting is one
//!   conditional `UPDATE`, so of two concurrent requests with one code one passes.
//! - Recovery codes are stored as HMAC-SHA256 (a second derived key, the user id in
//!   the message); using one deletes its row (one request wins) and mails the owner.
//! - The start checks that the key is the one that sealed the stored secrets, so a
//!   changed or lost key stops the start with a message, never a 500 at sign-in.
//!
//! Here: the checks (`checks.rs`), turning it on and off and new recovery codes
//! (`enrolment.rs`), the codes themselves (`totp.rs`), the sealing keys and the
//! start's key check (`sealing.rs`), and the owner's mails (`mail.rs`).

mod checks;
mod enrolment;
mod mail;
mod sealing;
mod totp;

use rocket::fairing::AdHoc;

pub use self::checks::{
    check, enrolled, has_second_factor, use_up, verify, Accepted, Purpose, SecondFactorError,
    Status, Verified,
};
pub use self::enrolment::{disable, enable, replace_recovery_codes, Enrolment, SETUP_TTL_MS};
pub use self::mail::{mail_owner, notice_mail, tell_owner, Notice};
pub use self::sealing::{check_key, SealingKeys};
pub use self::totp::{code_at, ISSUER, RECOVERY_CODES, STEP_SECONDS};
use crate::accounts::Accounts;
use crate::config::Settings;

/// Checks the key against the database before the server listens.
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Second factor", |rocket| async move {
        let (Some(settings), Some(accounts)) =
            (rocket.state::<Settings>(), rocket.state::<Accounts>())
        else {
            return Err(rocket);
        };
        if settings.second_factor.development_key {
            tracing::warn!("`second_factor_key` is unset: using the published development key (debug profile only)");
        }
        match check_key(settings, accounts).await {
            Ok(()) => Ok(rocket),
            Err(msg) => {
                tracing::error!("{msg}");
                eprintln!("latchkey: {msg}");
                Err(rocket)
            }
        }
    })
}
