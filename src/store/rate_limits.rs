//! Rate limits (`P:rl:SCOPE:KEY`): sliding-window logs of attempts, with the trait
//! over them (`RateLimits`). The quotas themselves are named in
//! `crate::services::signin::limits`.

use std::time::Duration;

use super::aggregate::aggregate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    Limited { retry_after: Duration },
}

/// One quota: at most `limit` attempts in any `window`.
#[derive(Debug, Clone)]
pub struct RateKey {
    pub key: String,
    pub limit: u32,
    pub window_ms: i64,
}

aggregate! {
    /// What the store does with rate limits.
    pub trait RateLimits {
        /// The sliding-window limiter: forgets attempts older than each quota's window;
        /// when any quota is full answers how long until its oldest counted attempt
        /// leaves the window, else records `member` in every quota. All or nothing.
        fn rate_acquire(&self, quotas: &[RateKey], member: &str, now_ms: i64) -> RateDecision;

        /// Takes back an attempt (a successful sign-in is not a failure).
        fn rate_release(&self, quotas: &[RateKey], member: &str) -> ();
    }
}
