//! Password-reset codes (`P:{UID}:reset`: the code's keyed hash and its wrong tries),
//! with the trait over them (`PasswordResets`).

use uuid::Uuid;

use super::aggregate::aggregate;

/// What checking a reset code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetCheck {
    Right,
    Wrong,
    /// Wrong, and that was the last allowed try: the code is gone.
    Burned,
    /// No code: never asked for, expired, used or burned.
    Missing,
}

aggregate! {
    /// What the store does with reset codes: at most one per account.
    pub trait PasswordResets {
        /// Stores a reset code's keyed hash for `ttl_ms`, replacing any earlier code
        /// and its count of wrong tries.
        fn store_reset_code(&self, user_id: &Uuid, mac: &str, ttl_ms: i64, now_ms: i64) -> ();

        /// Checks a code in constant time: right → used up; wrong → counted, and the
        /// `max_tries`th wrong try burns the code; no live code → `Missing`.
        fn check_reset_code(
            &self,
            user_id: &Uuid,
            mac: &str,
            max_tries: u32,
            now_ms: i64,
        ) -> ResetCheck;
    }
}
