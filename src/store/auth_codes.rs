//! OpenID Connect authorization codes (`P:{UID}:ac:ID`), unused or used, with the
//! trait over them (`AuthCodes`).

use uuid::Uuid;

use super::aggregate::aggregate;
use super::handle::Store;

/// An authorization code as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthCodeState {
    /// Not used yet: the request it answers (JSON).
    Unused(String),
    /// Used once, by the app session `sid`; `request` is the request it answered
    /// (JSON; empty for a code used before it was kept), so a replay is checked as a
    /// first use would be.
    Used { sid: String, request: String },
}

/// What `redeem_auth_code` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeemed {
    /// The first use: the code now names the new session.
    Yes,
    /// Used before: the session of the first use and the new one are ended.
    Replayed,
    /// No such code (expired, never issued): the new session is ended.
    Gone,
    /// The browser session that allowed the code has ended since: the code is
    /// deleted and the new session ended.
    AllowedByEnded,
}

/// How long a used authorization code is remembered, to recognise its replay.
pub const USED_CODE_TTL_MS: i64 = 10 * 60 * 1000;

aggregate! {
    /// What the store does with authorization codes.
    pub trait AuthCodes {
        /// Stores an unused authorization code (its request as JSON) for `ttl_ms`.
        fn put_auth_code(
            &self,
            user_id: &Uuid,
            id: &str,
            request: &str,
            ttl_ms: i64,
            now_ms: i64,
        ) -> ();

        /// An authorization code: unused (its request), used (by which session, and
        /// the request it answered), or none.
        fn get_auth_code(&self, user_id: &Uuid, id: &str, now_ms: i64) -> Option<AuthCodeState>;

        /// Uses a code, in one step: unused → when the browser session that allowed
        /// it (`allowed_by`, when known) has ended, the code is deleted and `new_sid`
        /// ended, `AllowedByEnded`; else it now names `new_sid` and keeps its request
        /// (remembered `USED_CODE_TTL_MS`), `Yes`; used before → the session of its
        /// first use and `new_sid` are ended, `Replayed`; no code → `new_sid` is ended,
        /// `Gone`. With `new_sid` `None` an unused code is left as it is (`Gone`).
        fn redeem_auth_code(
            &self,
            user_id: &Uuid,
            id: &str,
            new_sid: Option<&str>,
            allowed_by: Option<&str>,
            now_ms: i64,
        ) -> Redeemed => count_replayed;
    }
}

/// A code's stored value: its request while unused, `u:SID`, a newline and its
/// request once used.
pub(super) fn code_state(v: &str) -> AuthCodeState {
    match v.strip_prefix("u:") {
        Some(used) => {
            let (sid, request) = used.split_once('\n').unwrap_or((used, ""));
            AuthCodeState::Used {
                sid: sid.to_string(),
                request: request.to_string(),
            }
        }
        None => AuthCodeState::Unused(v.to_string()),
    }
}

fn count_replayed(store: &Store, redeemed: &Redeemed) {
    store.count_ended(u64::from(*redeemed == Redeemed::Replayed));
}
