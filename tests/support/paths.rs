//! Every item of the `latchkey` crate the tests name, re-exported from here and named
//! nowhere else: when the crate's modules move, this file is the one to change (and the
//! tests keep the names below). An item whose name is too plain to stand alone in a
//! test (`disable`, `enable`, `verify`) keeps its module as a namespace here. The one
//! place that builds a crate type field by field (`Services`) is here too.

use rocket::{Orbit, Rocket};

pub use latchkey::accounts::{AccountError, Accounts, ClientRecord, Hasher, User, SLOT_WAIT};
pub use latchkey::config::{figment as default_figment, Settings};
pub use latchkey::http::request::ClientIp;
pub use latchkey::services::oidc::Keyring;
pub use latchkey::services::sessions::{is_sid, sid_for, SessionCookie};
pub use latchkey::services::signin::limits::quota_key;
pub use latchkey::services::{ServiceError, Services};
pub use latchkey::store::email_field;
/// The store's key builder (the names of an instance's Redis keys).
pub use latchkey::store::KeyNames;
pub use latchkey::store::{
    Amr, AuthCodeState, Created, EmailChangeCheck, MemoryStore, NewSession, PendingFailure,
    PendingSignIn, RateDecision, RateKey, Redeemed, RedisStore, ResetCheck, Rotated, Rotation,
    SessionCaps, SessionKind, Store,
};
/// The store's aggregates, one trait each: in scope for their methods only.
pub use latchkey::store::{
    AuthCodes as _, Ceremonies as _, EmailChanges as _, EmailVerifications as _,
    PasswordResets as _, PendingSignIns as _, RateLimits as _, Sessions as _, Tokens as _,
    TrustedBrowsers as _,
};
pub use latchkey::support::clock::now_ms;
pub use latchkey::support::crypto::{random_token, sha256_hex};
pub use latchkey::support::input::{common_password_count, Email};
pub use latchkey::{app_with, server::launch as serve_forever};

/// The app's API descriptions, as the crate embeds them.
pub mod openapi {
    pub use latchkey::api::oauth_ends::OPENAPI as OAUTH2;
    pub use latchkey::api::{BASE as API_BASE, OPENAPI as API};
}

/// What an operator does to an account (`latchkey users disable|enable|delete`).
pub mod account_admin {
    pub use latchkey::services::account_admin::{delete, disable, enable};
}

/// The second factor's service: enrolment, codes, recovery codes, the sealing key.
pub mod second_factor {
    /// The keys that seal the secrets (not the store's `KeyNames`).
    pub use latchkey::services::second_factor::SealingKeys;
    pub use latchkey::services::second_factor::{
        check_key, code_at, enable, enrolled, replace_recovery_codes, verify, Enrolment, Purpose,
        SecondFactorError, Verified,
    };
}

/// The OpenID Connect provider's token pieces.
pub mod oidc {
    pub use latchkey::services::oidc::{claims, grants, keys};
}

/// The app's services as a handler of `rocket` gets them, from what it manages.
pub fn services_of(rocket: &Rocket<Orbit>) -> Services<'_> {
    Services {
        settings: managed(rocket),
        store: managed(rocket),
        accounts: managed(rocket),
        hasher: managed(rocket),
        mailer: managed(rocket),
        metrics: managed(rocket),
    }
}

fn managed<T: Send + Sync + 'static>(rocket: &Rocket<Orbit>) -> &T {
    rocket
        .state::<T>()
        .unwrap_or_else(|| panic!("the app manages a {}", std::any::type_name::<T>()))
}

/// The account's activity log, as the service and the database give it.
pub mod activity {
    pub use latchkey::accounts::{Bounds, NewEvent};
    pub use latchkey::services::activity::{page, EventView};
}

/// The newest 100 events of `user`'s log (what the page and the API show).
pub async fn activity_page(accounts: &Accounts, user: &User) -> Vec<activity::EventView> {
    let settings = Settings::from_figment(&default_figment()).expect("settings");
    activity::page(accounts, &settings.activity, &user.id, None, 100)
        .await
        .expect("the log reads")
        .events
}

/// An event of `kind` to write straight to the database.
pub fn activity_event(kind: &str) -> activity::NewEvent<'_> {
    activity::NewEvent {
        kind,
        label: "",
        ip: "",
        session_id: None,
        detail: "",
        group_key: None,
        count: 1,
    }
}

/// Bounds of a log: `max_events`, and nothing at or before `oldest_ms`.
pub fn activity_bounds(max_events: u32, oldest_ms: i64) -> activity::Bounds {
    activity::Bounds {
        max_events,
        oldest_ms,
    }
}
