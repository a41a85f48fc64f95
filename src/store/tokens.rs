//! The state behind API and app tokens: a session's refresh-token hashes (fields of
//! its hash: the current one, when it became current, the earlier ones) and revoked
//! access tokens (`P:{UID}:jti:JTI`), with the trait over them (`Tokens`).

use uuid::Uuid;

use super::aggregate::aggregate;
use super::handle::Store;

/// How many earlier refresh-token hashes are kept to recognise a replay.
pub const REFRESH_HISTORY: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotated {
    Yes,
    /// The previous secret came again within the grace window, and the successor it
    /// derives is still current: nothing changed but the expiry.
    Again,
    /// An earlier secret was presented (or the previous one after the window): the
    /// session has been ended.
    Reused,
    Invalid,
}

/// One refresh of an API or app session: the hash of the secret presented, the hash
/// of the successor it derives (`services::sessions::refresh`: the same for every
/// presentation of one secret, so a retry within the window is answered with the same
/// successor and the store never holds it), and the grace window (0: none).
#[derive(Debug, Clone, Copy)]
pub struct Rotation<'a> {
    pub presented_hash: &'a str,
    pub successor_hash: &'a str,
    pub grace_ms: i64,
}

aggregate! {
    /// What the store does with refresh and access tokens. Only API and app sessions
    /// of an open account have refresh tokens.
    pub trait Tokens {
        /// API and app refresh (see `Rotation`): when `presented_hash` is the session's
        /// current refresh hash, replaces it with `successor_hash` (keeping
        /// `REFRESH_HISTORY` earlier ones), records when, slides the expiry and answers
        /// `Yes`. When it is the immediately previous one, less than `grace_ms` after its
        /// rotation, and `successor_hash` is current, slides the expiry and answers
        /// `Again`. When it is an earlier one, or the previous one after the window,
        /// ends the session (a replayed secret: theft) and answers `Reused`; else
        /// `Invalid`.
        fn rotate_refresh(
            &self,
            user_id: &Uuid,
            sid: &str,
            rotation: &Rotation<'_>,
            now_ms: i64,
        ) -> Rotated => count_reused;

        /// Ends an API session and marks its access token's `jti` revoked for
        /// `token_ttl_ms` (nothing to mark when it is 0); true when the session lived.
        fn api_logout(
            &self,
            user_id: &Uuid,
            sid: &str,
            jti: &str,
            token_ttl_ms: i64,
            now_ms: i64,
        ) -> bool => count_one_ended;

        /// Marks one access token (its `jti`) revoked for `token_ttl_ms`, its remaining
        /// life (nothing to mark when it is 0 or less); its session goes on (RFC 7009
        /// revocation of an access token).
        fn revoke_access(&self, user_id: &Uuid, jti: &str, token_ttl_ms: i64, now_ms: i64) -> ();

        /// Ends the session `sid` when `presented_hash` is its current refresh hash or
        /// one of the `REFRESH_HISTORY` before it (RFC 7009 revocation of a refresh
        /// token); true when a session ended.
        fn revoke_refresh(
            &self,
            user_id: &Uuid,
            sid: &str,
            presented_hash: &str,
            now_ms: i64,
        ) -> bool => count_one_ended;

        /// When `presented_hash` is the current refresh hash of the live API or app
        /// session `sid` of an open account, the time (ms) it was issued; else `None`.
        /// Changes nothing (RFC 7662 introspection).
        fn refresh_status(
            &self,
            user_id: &Uuid,
            sid: &str,
            presented_hash: &str,
            now_ms: i64,
        ) -> Option<i64>;
    }
}

fn count_reused(store: &Store, rotated: &Rotated) {
    store.count_ended(u64::from(*rotated == Rotated::Reused));
}

fn count_one_ended(store: &Store, ended: &bool) {
    store.count_ended(u64::from(*ended));
}
