//! Address-verification codes and links (`P:{UID}:verify`: the code's keyed hash, the
//! link's keyed hash and the code's wrong tries), with the trait over them
//! (`EmailVerifications`). One pending verification per account: a new one replaces
//! it, and using either the code or the link uses up both.

use uuid::Uuid;

use super::aggregate::aggregate;
use super::password_reset::ResetCheck;

aggregate! {
    /// What the store does with address verifications: at most one per account.
    pub trait EmailVerifications {
        /// Stores a verification's code and link hashes for `ttl_ms`, replacing any
        /// earlier one and its count of wrong tries.
        fn store_verification(
            &self,
            user_id: &Uuid,
            code_mac: &str,
            link_mac: &str,
            ttl_ms: i64,
            now_ms: i64,
        ) -> ();

        /// Checks a code in constant time, as `check_reset_code` does: right → the
        /// verification is used up (the link too); wrong → counted, and the
        /// `max_tries`th wrong try burns it; none live → `Missing`.
        fn check_verification_code(
            &self,
            user_id: &Uuid,
            code_mac: &str,
            max_tries: u32,
            now_ms: i64,
        ) -> ResetCheck;

        /// Takes the verification by its link, compared in constant time: true (and the
        /// verification, code too, is used up) when it is the live one's.
        fn take_verification_link(&self, user_id: &Uuid, link_mac: &str, now_ms: i64) -> bool;

        /// Forgets the account's pending verification (the account is verified or gone).
        fn forget_verification(&self, user_id: &Uuid) -> ();
    }
}
