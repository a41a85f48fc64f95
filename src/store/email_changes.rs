//! Address changes waiting for their code (`P:{UID}:email`: the new address, the
//! code's keyed hash and its wrong tries) and the undo links of changes made
//! (`P:{UID}:eundo`: token hash → the address to put back and until when), with the
//! trait over them (`EmailChanges`).

use uuid::Uuid;

use super::aggregate::aggregate;

/// What checking an address change's code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailChangeCheck {
    /// Right: the change is used up; this is the new address.
    Right(String),
    Wrong,
    /// Wrong, and that was the last allowed try: the change is gone.
    Burned,
    /// No change waiting: never asked for, expired, used or burned.
    Missing,
}

aggregate! {
    /// What the store does with address changes: at most one waiting per account; any
    /// number of undo links, each for its own time, all of which one undo uses up.
    pub trait EmailChanges {
        /// Stores a waiting change to `new_email` with its code's keyed hash for
        /// `ttl_ms`, replacing any earlier one and its count of wrong tries.
        fn start_email_change(
            &self,
            user_id: &Uuid,
            new_email: &str,
            mac: &str,
            ttl_ms: i64,
            now_ms: i64,
        ) -> ();

        /// The address a waiting change would move to, if one waits.
        fn pending_email_change(&self, user_id: &Uuid, now_ms: i64) -> Option<String>;

        /// Checks a code in constant time: right → used up, and the new address
        /// answered; wrong → counted, and the `max_tries`th wrong try burns the change.
        fn confirm_email_change(
            &self,
            user_id: &Uuid,
            mac: &str,
            max_tries: u32,
            now_ms: i64,
        ) -> EmailChangeCheck;

        /// Keeps an undo link (its token's hash) that puts `old_email` back until
        /// `now + ttl_ms`.
        fn keep_email_undo(
            &self,
            user_id: &Uuid,
            token_hash: &str,
            old_email: &str,
            ttl_ms: i64,
            now_ms: i64,
        ) -> ();

        /// Uses an undo link once: when it lives, every undo link of the account and
        /// any waiting change end with it, and the address to put back is answered.
        fn take_email_undo(&self, user_id: &Uuid, token_hash: &str, now_ms: i64) -> Option<String>;

        /// Forgets the account's waiting change and undo links (a deleted account).
        fn forget_email_changes(&self, user_id: &Uuid) -> ();
    }
}
