//! Trusted browsers (`P:{UID}:dev`: the nonces of browsers that signed in to the
//! account, each with the time it stays trusted until), with the trait over them
//! (`TrustedBrowsers`).

use uuid::Uuid;

use super::aggregate::aggregate;

aggregate! {
    /// What the store does with trusted browsers. A new password ends every one of
    /// the account's (`Sessions::revoke_sessions` with a password version).
    pub trait TrustedBrowsers {
        /// Trusts the browser `nonce` for the user until `now + ttl_ms` (renewing it
        /// when it was trusted already); of the user's browsers, the `max_browsers`
        /// renewed most recently stay, the rest are dropped.
        fn trust_browser(
            &self,
            user_id: &Uuid,
            nonce: &str,
            max_browsers: u32,
            ttl_ms: i64,
            now_ms: i64,
        ) -> ();

        /// Whether the user trusts the browser `nonce` now.
        fn browser_trusted(&self, user_id: &Uuid, nonce: &str, now_ms: i64) -> bool;
    }
}
