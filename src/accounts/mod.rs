//! The account database: `Accounts`, the repository of the `users` and
//! `known_devices` tables (`users.rs`), the OpenID Connect tables (`oidc.rs`), the
//! second factor's (`second_factor.rs`), the verified address (`verification.rs`),
//! the passkeys' (`passkeys.rs`) and the activity log (`activity.rs`), over a SQLite or
//! PostgreSQL pool opened and migrated at start (`database.rs`); its errors (`error.rs`);
//! and Argon2id password hashing in bounded slots (`password.rs`).

mod activity;
mod database;
mod error;
mod oidc;
mod passkeys;
mod password;
mod second_factor;
mod users;
mod verification;

use rocket::fairing::AdHoc;
use secrecy::ExposeSecret;

pub use self::activity::{Bounds, EventRow, NewEvent};
pub use self::error::AccountError;
pub use self::oidc::{ClientRecord, SigningKeyRow};
pub use self::passkeys::{NewPasskey, PasskeyRow, PasskeyUse};
pub use self::password::{HashError, Hasher, Slot, Work, SLOT_WAIT};
pub use self::second_factor::FactorRow;
pub use self::users::{Accounts, User, KNOWN_DEVICES_PER_ACCOUNT};
use crate::config::Settings;
use crate::support::metrics::Metrics;

/// Opens the account database and the hasher, and manages both.
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Accounts", |rocket| async move {
        let Some(settings) = rocket.state::<Settings>() else {
            return Err(rocket);
        };
        match Accounts::open(settings.storage.database_url.expose_secret()).await {
            Ok(accounts) => {
                let mut hasher = Hasher::new().await;
                if let Some(metrics) = rocket.state::<Metrics>() {
                    hasher = hasher.observed_by(metrics.argon2_wait.clone());
                }
                tracing::info!(backend = accounts.backend_name(), "account database ready");
                Ok(rocket.manage(accounts).manage(hasher))
            }
            Err(msg) => {
                tracing::error!("{msg}");
                eprintln!("latchkey: {msg}");
                Err(rocket)
            }
        }
    })
}
