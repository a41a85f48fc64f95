//! Settings: `Rocket.toml` (per profile) with `LATCHKEY_<NAME>` overrides, validated at
//! start. A wrong setting stops the server with one line naming it and the problem.
//!
//! `Settings` (`settings.rs`) is one section per concern, each in a file of its own
//! (`storage`, `server` with `allowed_host`, `sessions`, `limits`, `codes`, `mail`,
//! `tokens`, `second_factor`, `verification`, `passkeys`, `activity`), read through
//! `Reader` (`reader.rs`). A rule about one value's kind (positive seconds, a count above
//! zero) is checked as it is read; a section's other rules (URL schemes, lengths, one
//! value against another) in its `validate()`. Every setting's name is written once: on
//! the line that reads it.
//! Secrets (`jwt_secret`, `second_factor_key`, `smtp_url`, `database_url`) are
//! `secrecy` types, so no `Debug`, log line or panic message prints them. `assets.rs`
//! holds Rocket's figment (with the request data limits as code defaults) and where
//! `templates/` and `static/` are found.

mod activity;
mod allowed_host;
mod assets;
mod codes;
mod limits;
mod mail;
mod passkeys;
mod reader;
mod second_factor;
mod server;
mod sessions;
mod settings;
mod storage;
mod tokens;
mod verification;

use rocket::fairing::AdHoc;

pub use self::activity::ActivitySettings;
pub use self::allowed_host::AllowedHost;
pub use self::assets::{asset_root, check_assets, figment, DATA_LIMITS};
pub use self::codes::CodeSettings;
pub use self::limits::{LimitSettings, Quota};
pub use self::mail::MailSettings;
pub use self::passkeys::PasskeySettings;
pub use self::reader::SettingError;
pub use self::second_factor::{SecondFactorSettings, DEVELOPMENT_SECOND_FACTOR_KEY};
pub use self::server::{ServerSettings, MIN_METRICS_TOKEN_CHARS};
pub use self::sessions::SessionSettings;
pub use self::settings::Settings;
pub use self::storage::StorageSettings;
pub use self::tokens::{TokenSettings, MAX_REFRESH_GRACE_SECS};
pub use self::verification::VerificationSettings;

/// Validates the settings and manages them; a bad one stops the launch.
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Settings", |rocket| async move {
        let checked = check_assets(&asset_root())
            .and_then(|()| Settings::from_figment(rocket.figment()).map_err(|e| e.to_string()));
        match checked {
            Ok(settings) => Ok(rocket.manage(settings)),
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("latchkey: {e}");
                Err(rocket)
            }
        }
    })
}
