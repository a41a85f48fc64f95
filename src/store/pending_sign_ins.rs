//! Pending sign-ins (`P:{UID}:2fa:PID`): a right password waiting for its second
//! factor, with the trait over them (`PendingSignIns`).

use uuid::Uuid;

use super::aggregate::aggregate;

/// A sign-in whose password was right, waiting for its second factor (a browser
/// between `POST /login` and `POST /login/second-factor`). Its key is named by a
/// secret only the browser's cookie holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    /// "Keep me signed in", as ticked on the password step.
    pub remember: bool,
    /// Where the sign-in goes once done: a checked local `next` path or `rd` URL;
    /// empty for the devices page.
    pub target: String,
    /// The password version the password was checked against: a sign-in whose
    /// password changed since is stale.
    pub password_version: i64,
    /// When the password step passed (ms).
    pub created_ms: i64,
    /// When it ends (ms), whatever happens.
    pub expires_ms: i64,
    /// Wrong codes so far.
    pub wrong: u32,
}

/// The fields of a pending sign-in's hash (`P:{UID}:2fa:PID`).
pub(super) mod pending_field {
    pub const REMEMBER: &str = "r";
    pub const TARGET: &str = "to";
    pub const PASSWORD_VERSION: &str = "v";
    pub const CREATED: &str = "t";
    pub const EXPIRES: &str = "x";
    pub const WRONG: &str = "w";
}

impl PendingSignIn {
    pub(super) fn fields(&self) -> Vec<(&'static str, String)> {
        use pending_field::*;
        vec![
            (REMEMBER, if self.remember { "1" } else { "0" }.into()),
            (TARGET, self.target.clone()),
            (PASSWORD_VERSION, self.password_version.to_string()),
            (CREATED, self.created_ms.to_string()),
            (EXPIRES, self.expires_ms.to_string()),
            (WRONG, self.wrong.to_string()),
        ]
    }

    /// The pending sign-in from its hash's fields; `None` when one is missing or it
    /// has expired by `now_ms`.
    pub(super) fn read<'a>(get: impl Fn(&str) -> Option<&'a str>, now_ms: i64) -> Option<Self> {
        use pending_field::*;
        let num = |k: &str| get(k).and_then(|v| v.parse::<i64>().ok());
        let p = PendingSignIn {
            remember: get(REMEMBER)? == "1",
            target: get(TARGET)?.to_string(),
            password_version: num(PASSWORD_VERSION)?,
            created_ms: num(CREATED)?,
            expires_ms: num(EXPIRES)?,
            wrong: u32::try_from(num(WRONG)?).ok()?,
        };
        (p.expires_ms > now_ms).then_some(p)
    }
}

/// What a wrong code did to a pending sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingFailure {
    /// Counted; this many wrong codes are left before it ends.
    Counted { left: u32 },
    /// That was the last wrong code allowed: it has ended.
    Ended,
    /// There was none (expired, used, ended, or never started).
    Missing,
}

aggregate! {
    /// What the store does with pending sign-ins. Each ends at its `expires_ms`
    /// whatever happens, and is used at most once.
    pub trait PendingSignIns {
        /// Starts a pending sign-in under `pid` (replacing any of that id), to end at
        /// `pending.expires_ms` whatever happens.
        fn start_pending(
            &self,
            user_id: &Uuid,
            pid: &str,
            pending: &PendingSignIn,
            now_ms: i64,
        ) -> ();

        /// The pending sign-in `pid` of the user, while it lives.
        fn read_pending(&self, user_id: &Uuid, pid: &str, now_ms: i64) -> Option<PendingSignIn>;

        /// Counts a wrong code against a live pending sign-in; the `max_wrong`th ends it.
        fn fail_pending(
            &self,
            user_id: &Uuid,
            pid: &str,
            max_wrong: u32,
            now_ms: i64,
        ) -> PendingFailure;

        /// Ends the pending sign-in `pid` and answers it when it was live: of two
        /// concurrent takes, one gets it. Used once, never again.
        fn take_pending(&self, user_id: &Uuid, pid: &str, now_ms: i64) -> Option<PendingSignIn>;
    }
}
