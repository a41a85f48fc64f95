//! WebAuthn ceremonies in progress (`P:wa:CID`: the state of one passkey registration
//! or sign-in between its options and the browser's answer), with the trait over them
//! (`Ceremonies`).
//!
//! The browser holds a random token in a cookie; the store knows the ceremony only by
//! CID, the first 128 bits of SHA-256 of that token, so a dump of Redis does not
//! continue one and another browser cannot name it.

use super::aggregate::aggregate;

aggregate! {
    /// What the store does with ceremonies: each is put once and taken at most once.
    pub trait Ceremonies {
        /// Stores a ceremony's state (JSON) under `cid` for `ttl_ms`, replacing any
        /// earlier one of that id.
        fn put_ceremony(&self, cid: &str, state: &str, ttl_ms: i64, now_ms: i64) -> ();

        /// Takes a ceremony: its state, and it is gone (a second take, a replay of the
        /// same answer, finds nothing); `None` when it expired, was taken or never
        /// existed.
        fn take_ceremony(&self, cid: &str, now_ms: i64) -> Option<String>;
    }
}
