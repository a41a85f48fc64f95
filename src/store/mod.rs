//! The state that lives outside the accounts database, by what it stores: sessions
//! (`sessions`), the state behind API and app tokens (`tokens`), pending sign-ins
//! (`pending_sign_ins`), authorization codes (`auth_codes`), rate limits
//! (`rate_limits`), password-reset codes (`password_reset`), address verifications
//! (`email_verification`), trusted browsers (`trusted_browsers`), WebAuthn ceremonies
//! in progress (`ceremonies`) and address changes with their undo links
//! (`email_changes`). Each of those files holds its types and one trait whose
//! documentation is the contract; `Store` (`handle`) implements every trait by
//! dispatching to its backend (`aggregate`: the trait is written once).
//!
//! Two backends behave the same: Redis (`redis/`: production and tests, one Lua script
//! per multi-key operation, in `redis/lua/`) and an embedded in-process map
//! (`memory/`, `redis_url = "memory"`), each with one file per aggregate. The
//! behaviour suite (`tests/store_behaviour.rs`) holds memory, Redis and Redis Cluster
//! to each contract. Also here: the one key builder (`key_names`), the errors
//! (`error`) and connecting the configured store (`connect`).

mod aggregate;
mod auth_codes;
mod ceremonies;
mod connect;
mod email_changes;
mod email_verification;
mod error;
mod handle;
mod key_names;
mod memory;
mod password_reset;
mod pending_sign_ins;
mod rate_limits;
mod redis;
mod sessions;
mod tokens;
mod trusted_browsers;

pub use self::auth_codes::{AuthCodeState, AuthCodes, Redeemed, USED_CODE_TTL_MS};
pub use self::ceremonies::Ceremonies;
pub use self::connect::{connect, stage};
pub use self::email_changes::{EmailChangeCheck, EmailChanges};
pub use self::email_verification::EmailVerifications;
pub use self::error::{ConnectError, StoreError, StoreResult};
pub use self::handle::Store;
pub use self::key_names::KeyNames;
pub use self::memory::MemoryStore;
pub use self::password_reset::{PasswordResets, ResetCheck};
pub use self::pending_sign_ins::{PendingFailure, PendingSignIn, PendingSignIns};
pub use self::rate_limits::{RateDecision, RateKey, RateLimits};
pub use self::redis::{RedisStore, CALL_BUDGET, CLUSTER_SLOTS};
pub use self::sessions::{
    email_field, field, slide_due, Amr, Created, LiveSession, NewSession, SessionCaps, SessionKind,
    SessionRecord, Sessions, PASSWORD_VERSION_TTL_MS, SEEN_REFRESH_MS,
};
pub use self::tokens::{Rotated, Rotation, Tokens, REFRESH_HISTORY};
pub use self::trusted_browsers::TrustedBrowsers;
