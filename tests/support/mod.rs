//! The one test harness. Every test gets its own app (`TestApp`): real Redis under a key
//! prefix of its own, its own SQLite file (or PostgreSQL database: `database`) and its
//! own mail outbox, so tests run in parallel and never see each other. The fixtures take
//! the set-up out of the tests, and register what they make through the pages, as a
//! person does:
//!
//! - `TestApp::new()` / `TestApp::on(db).await`: an app (settings with `.set(..)`);
//! - `app.browser()`: a signed-out browser (a cookie-keeping client, one profile);
//! - `app.account()`: the address of a new account; `app.signed_in_browser()`: a
//!   browser signed in to a new account, and its address;
//! - `app.two_step_account()`: an account with the authenticator app turned on, its
//!   secret and recovery codes at hand (`two_step`), and the browser that did it;
//! - `app.registered_app(..)`: an OpenID Connect client; `Provider` (`provider`) serves
//!   the app as the real binary for the OIDC flows, `p.signed_in_jar()` a signed-in
//!   browser's cookies there (`Provider::start_with` with settings of the test's),
//!   and `app_calls` what an app's server sends it (`As`, `revoke`, `tokens_for`);
//! - `on_both_databases!`: one test body on SQLite and on PostgreSQL.
//!
//! ```text
//! let app = TestApp::new().set("login_limit_account", 3);
//! let (b, email) = app.signed_in_browser().await;
//! ```
//!
//! Beside them: the API client's calls (`api_client`), the mailbox (`mail`), Redis read
//! directly (`keys`), the processes a test starts (`process`: SMTP, its own Redis, the
//! server binary), Chromium (`chromium`, imported by name: its helpers are called
//! `fill`, `submit`, `text`…; its screenshots are checked by axe-core, `accessibility`,
//! whose `assert_accessible` it re-exports), and `paths`, the one place the crate's own
//! paths are written.

pub mod accessibility;
mod api_client;
mod app;
mod app_calls;
mod authenticator;
mod browser;
pub mod chromium;
mod database;
mod keys;
mod mail;
mod paths;
mod process;
mod provider;
mod two_step;

pub use self::api_client::*;
pub use self::app::*;
pub use self::app_calls::*;
pub use self::authenticator::*;
pub use self::browser::*;
pub use self::database::*;
pub use self::keys::*;
pub use self::mail::*;
pub use self::paths::*;
pub use self::process::*;
pub use self::provider::*;
pub use self::two_step::*;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// The password of every account a fixture makes.
pub const PASSWORD: &str = "correct horse battery staple";
/// The password a test changes to.
pub const NEW_PASSWORD: &str = "a brand new passphrase";
pub const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
pub const SAFARI_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
pub const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// A new address nobody has used (`user-…@example.com`).
pub fn email() -> String {
    format!("{}@example.com", unique("user"))
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A directory of the test's own under `target/test-data/`.
pub fn test_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("test-data")
        .join(unique("t"));
    std::fs::create_dir_all(&dir).expect("test data dir");
    dir
}

/// Where the Chromium tests save their screenshots: `target/screenshots/` (ignored by
/// git). `docs/screenshots/` holds committed copies, refreshed by hand (README, Tests).
pub fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("screenshots");
    std::fs::create_dir_all(&dir).expect("target/screenshots");
    dir
}

/// Undoes Tera's HTML escaping of a text node or attribute value.
pub fn unescape(s: &str) -> String {
    s.replace("&#x2F;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of the attribute `name` of a `Set-Cookie` header's value (`""` for a flag
/// such as `Secure`), if it has it.
pub fn cookie_attribute<'a>(cookie: &'a str, name: &str) -> Option<&'a str> {
    cookie.split(';').skip(1).map(str::trim).find_map(|a| {
        let (k, v) = a.split_once('=').unwrap_or((a, ""));
        k.eq_ignore_ascii_case(name).then_some(v)
    })
}

/// Whether a `Set-Cookie` header's value has `attribute` (`Secure`, `SameSite=Lax`),
/// its name and value compared without regard to case.
pub fn has_cookie_attribute(cookie: &str, attribute: &str) -> bool {
    let (name, value) = attribute.split_once('=').unwrap_or((attribute, ""));
    cookie_attribute(cookie, name).is_some_and(|v| v.eq_ignore_ascii_case(value))
}
