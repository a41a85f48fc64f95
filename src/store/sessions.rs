//! The sessions aggregate: a session's hash (`P:{UID}:s:SID`: its fields, kind, how it
//! signed in), the user hash beside it (`P:{UID}:u`: each session's expiry and the
//! account's email) and the password version (`P:{UID}:pwv`), with the one trait that
//! says what the store does with them (`Sessions`).

use uuid::Uuid;

use super::aggregate::aggregate;
use super::handle::Store;

/// How often "last seen" is written back on a session that is in use.
pub const SEEN_REFRESH_MS: i64 = 60_000;
/// Whether a use of a session must write (slide its idle timeout, and write `seen`
/// when that is `SEEN_REFRESH_MS` old) rather than only read: once `seen` is a
/// minute old, or half the idle timeout when that is shorter. Between two writes a
/// use only reads, so an idle session ends between `idle - SEEN_REFRESH_MS` and
/// `idle` after its last use, and the hot path is a read in all other requests.
pub fn slide_due(now_ms: i64, seen_ms: i64, idle_ms: i64) -> bool {
    now_ms - seen_ms >= SEEN_REFRESH_MS.min(idle_ms / 2)
}

/// How long a password version is remembered: far longer than any sign-in takes.
pub const PASSWORD_VERSION_TTL_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    Browser,
    Api,
    /// An app signed in through OpenID Connect.
    App,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Browser => "browser",
            SessionKind::Api => "api",
            SessionKind::App => "app",
        }
    }

    /// The kind as a session hash records it: field `k`, `a` for an API session, `o`
    /// for an app (OpenID Connect), absent (or `b`) for a browser.
    pub(super) fn from_field(k: Option<&str>) -> Option<Self> {
        match k {
            None | Some("b") => Some(SessionKind::Browser),
            Some("a") => Some(SessionKind::Api),
            Some("o") => Some(SessionKind::App),
            Some(_) => None,
        }
    }

    pub(super) fn field_value(self) -> Option<&'static str> {
        match self {
            SessionKind::Browser => None,
            SessionKind::Api => Some("a"),
            SessionKind::App => Some("o"),
        }
    }
}

/// The fields of a session hash. Names are one or two letters and every value stays
/// within Redis's `hash-max-listpack-value` (64 bytes), so the hash is kept as a
/// compact listpack: only what the devices page shows and what expiry needs.
pub mod field {
    /// `a` for an API session, `o` for an app; absent for a browser.
    pub const KIND: &str = "k";
    /// Apps: the client id of the app the session belongs to.
    pub const CLIENT: &str = "c";
    /// The device label (at most [`crate::support::device_label::MAX_LABEL_BYTES`]).
    pub const LABEL: &str = "l";
    /// `1` for a phone or tablet; absent otherwise.
    pub const MOBILE: &str = "m";
    pub const IP: &str = "ip";
    /// Signed in at (unix ms).
    pub const CREATED: &str = "t";
    /// Last seen (unix ms), written at most once per `SEEN_REFRESH_MS`.
    pub const SEEN: &str = "s";
    /// Absolute expiry (unix ms).
    pub const ABSOLUTE: &str = "a";
    /// Idle timeout (ms).
    pub const IDLE: &str = "i";
    /// API sessions: SHA-256 (hex) of the current refresh secret; `p1`..`p5` hold the
    /// earlier ones, one per field.
    pub const REFRESH: &str = "r";
    /// API sessions: when `r` became current (unix ms), which starts `p1`'s grace
    /// window; absent until the first rotation.
    pub const ROTATED: &str = "g";
    /// How the session signed in (`Amr::field`): `1` after a second factor (a one-time
    /// code), `2` a passkey alone, `3` a password and a passkey, absent for a password
    /// alone, so a password-only hash is no larger than
    /// before and a two-step one only 4 bytes larger.
    pub const AMR: &str = "o";
}

/// How a session signed in: the `amr` values of RFC 8176. A recovery code is a
/// one-time password, so it counts as `otp` like an authenticator-app code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Amr {
    /// A password alone (`["pwd"]`).
    #[default]
    Password,
    /// A password and a second factor: an authenticator-app code or a recovery code
    /// (`["pwd", "otp"]`).
    PasswordAndOtp,
    /// A passkey alone, its authenticator having verified the user (`["hwk", "user"]`):
    /// two factors in one.
    Passkey,
    /// A password, then a passkey as the second step (`["pwd", "hwk", "user"]`).
    PasswordAndPasskey,
}

impl Amr {
    /// The RFC 8176 values, as an OpenID Connect `amr` claim lists them.
    pub fn values(self) -> &'static [&'static str] {
        match self {
            Amr::Password => &["pwd"],
            Amr::PasswordAndOtp => &["pwd", "otp"],
            Amr::Passkey => &["hwk", "user"],
            Amr::PasswordAndPasskey => &["pwd", "hwk", "user"],
        }
    }

    /// Read back from the values `values` gave (an authorization code keeps them as
    /// its id_token will carry them). Anything without `otp` or `hwk` is `Password`.
    pub fn from_values<S: AsRef<str>>(values: &[S]) -> Amr {
        let has = |name: &str| values.iter().any(|v| v.as_ref() == name);
        match (has("hwk"), has("pwd"), has("otp")) {
            (true, true, _) => Amr::PasswordAndPasskey,
            (true, false, _) => Amr::Passkey,
            (false, _, true) => Amr::PasswordAndOtp,
            (false, _, false) => Amr::Password,
        }
    }

    /// In words, for the devices page.
    pub fn in_words(self) -> &'static str {
        match self {
            Amr::Password => "password",
            Amr::PasswordAndOtp => "password + authenticator",
            Amr::Passkey => "passkey",
            Amr::PasswordAndPasskey => "password + passkey",
        }
    }

    /// The session hash's `o` value; `None`: the field is left out.
    pub(super) fn field(self) -> Option<&'static str> {
        match self {
            Amr::Password => None,
            Amr::PasswordAndOtp => Some("1"),
            Amr::Passkey => Some("2"),
            Amr::PasswordAndPasskey => Some("3"),
        }
    }

    /// The `o` field as stored. Anything unknown reads as the weaker `Password`: a
    /// session is never said to have passed a factor it did not record.
    pub(super) fn from_field(v: Option<&str>) -> Amr {
        match v {
            Some("1") => Amr::PasswordAndOtp,
            Some("2") => Amr::Passkey,
            Some("3") => Amr::PasswordAndPasskey,
            _ => Amr::Password,
        }
    }
}

impl serde::Serialize for Amr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.values().serialize(s)
    }
}

/// How many sessions a user may have at once (`Sessions::create_session`): browser and
/// API sessions together, `per_user` (the least recently seen ends first); an app's
/// sessions apart, `per_app` for each app (its oldest ends first). App sessions never
/// count towards `per_user` nor end a browser or API session: an app signing in again
/// and again, each in its own session, must not push the user's devices out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCaps {
    pub per_user: u32,
    pub per_app: u32,
}

/// Everything a new session hash holds.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub user_id: Uuid,
    /// The account's email and whether it is verified, as [`email_field`] writes
    /// them, kept once per user beside the sessions (not in each hash) so a session
    /// check can answer both without the database.
    pub email: String,
    pub sid: String,
    pub kind: SessionKind,
    /// At most [`crate::support::device_label::MAX_LABEL_BYTES`].
    pub label: String,
    pub mobile: bool,
    pub ip: String,
    pub refresh_hash: Option<String>,
    /// Apps: the client id.
    pub client_id: Option<String>,
    /// How it signed in.
    pub amr: Amr,
    /// Sliding idle timeout.
    pub idle_ms: i64,
    /// Absolute expiry (unix ms): the session never outlives it.
    pub absolute_expiry_ms: i64,
}

impl NewSession {
    pub(super) fn fields(&self, now_ms: i64) -> Vec<(&'static str, String)> {
        let mut f = vec![
            (field::LABEL, self.label.clone()),
            (field::IP, self.ip.clone()),
            (field::CREATED, now_ms.to_string()),
            (field::SEEN, now_ms.to_string()),
            (field::ABSOLUTE, self.absolute_expiry_ms.to_string()),
            (field::IDLE, self.idle_ms.to_string()),
        ];
        if let Some(k) = self.kind.field_value() {
            f.push((field::KIND, k.into()));
        }
        if let Some(c) = &self.client_id {
            f.push((field::CLIENT, c.clone()));
        }
        if self.mobile {
            f.push((field::MOBILE, "1".into()));
        }
        if let Some(h) = &self.refresh_hash {
            f.push((field::REFRESH, h.clone()));
        }
        if let Some(a) = self.amr.field() {
            f.push((field::AMR, a.into()));
        }
        f
    }

    pub(super) fn expiry(&self, now_ms: i64) -> i64 {
        (now_ms + self.idle_ms).min(self.absolute_expiry_ms)
    }
}

/// A session as the devices page and the sessions API show it.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub sid: String,
    pub kind: SessionKind,
    pub label: String,
    pub mobile: bool,
    pub ip: String,
    pub created_ms: i64,
    pub seen_ms: i64,
    pub amr: Amr,
    /// Apps: the client id of the app the session belongs to.
    pub client_id: Option<String>,
}

impl SessionRecord {
    /// The record from a session hash's fields, read through `get`; `None` when the
    /// hash is not one this version wrote.
    pub(super) fn read<'a>(sid: String, get: impl Fn(&str) -> Option<&'a str>) -> Option<Self> {
        let num = |k: &str| get(k).and_then(|v| v.parse::<i64>().ok());
        Some(SessionRecord {
            sid,
            kind: SessionKind::from_field(get(field::KIND))?,
            label: get(field::LABEL).unwrap_or_default().to_string(),
            mobile: get(field::MOBILE) == Some("1"),
            ip: get(field::IP).unwrap_or_default().to_string(),
            created_ms: num(field::CREATED)?,
            seen_ms: num(field::SEEN)?,
            amr: Amr::from_field(get(field::AMR)),
            client_id: get(field::CLIENT).map(str::to_string),
        })
    }
}

/// What the hot path hands to a request: enough to authorise it and to say who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    pub kind: SessionKind,
    /// The account's email, as the user hash holds it (set when a session starts, and
    /// by `set_account_email`).
    pub email: String,
    /// Whether the account's address is verified, from the same field.
    pub email_verified: bool,
    /// How the session signed in.
    pub amr: Amr,
    /// When it signed in (unix ms; its `t`), read with the rest: what an app's
    /// `auth_time` says, without listing the user's sessions.
    pub created_ms: i64,
}

/// What marks a verified address in the user hash's email field: `v ` before it. No
/// address the app accepts holds a space, and one written before addresses were
/// verified (no mark) reads as unverified, as its account is.
const VERIFIED_MARK: &str = "v ";

/// The user hash's email field for an account: its email, marked when verified.
pub fn email_field(email: &str, verified: bool) -> String {
    if verified {
        format!("{VERIFIED_MARK}{email}")
    } else {
        email.to_string()
    }
}

impl LiveSession {
    /// A live session from its kind, the user hash's email field, its `amr` and when it
    /// signed in (`t`).
    pub fn from_fields(
        kind: SessionKind,
        email_field: String,
        amr: Amr,
        created_ms: i64,
    ) -> LiveSession {
        let (email, email_verified) = match email_field.strip_prefix(VERIFIED_MARK) {
            Some(email) => (email.to_string(), true),
            None => (email_field, false),
        };
        LiveSession {
            kind,
            email,
            email_verified,
            amr,
            created_ms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The session exists; these SIDs were ended to stay under the cap.
    Yes { evicted: Vec<String> },
    /// The password changed after the credentials were checked: no session.
    Stale,
}

aggregate! {
    /// What the store does with sessions, Redis and in-process alike.
    ///
    /// - A session lives until `min(last use + idle, absolute expiry)`; reading it past
    ///   either ends it. Its entry in the user hash says a time no earlier than that
    ///   (rewritten with `seen`, at most once per `SEEN_REFRESH_MS`: the expiry plus
    ///   that interval), so a listing never misses a live session.
    /// - A session is live only while its account's email is recorded beside it (every
    ///   `create_session` records it, `close_account` removes it).
    /// - A user's keys are built from the user id the caller passes, never from input
    ///   alone: another user's session id names nothing.
    pub trait Sessions {
        /// Starts a session, all in one step: refuses it (`Stale`) when the user's
        /// password version has moved past `password_version` (the credentials were
        /// checked against an older password, or the account was closed since); drops
        /// expired entries of the user hash; makes room under `caps` (a browser or API
        /// session: while the user has `per_user` live browser and API sessions, ends
        /// the least recently seen of them; an app session: while the user has
        /// `per_app` live sessions of that app, ends the oldest of them); then writes
        /// the session with `created = seen = now` and expiry `min(now + idle,
        /// absolute)`, and the account's email beside it.
        fn create_session(
            &self,
            new: &NewSession,
            caps: SessionCaps,
            password_version: i64,
            now_ms: i64,
        ) -> Created => count_created;

        /// The hot path, one round trip: `None` when the session does not live, is past
        /// its absolute expiry (then it is ended), `revoked_jti` names a revoked access
        /// token, or the account was closed (`close_account`). Otherwise answers the
        /// session's kind, its account's email and its `amr`; when `slide_due`, it also
        /// slides the expiry to `min(now + idle, absolute)` and writes `seen` when that
        /// is older than `SEEN_REFRESH_MS` (ARCHITECTURE.md, "Decisions").
        fn touch_session(
            &self,
            user_id: &Uuid,
            sid: &str,
            revoked_jti: Option<&str>,
            now_ms: i64,
        ) -> Option<LiveSession>;

        /// `touch_session` and `list_sessions` in the same one step (the devices page:
        /// one round trip). The list is taken after the touch, so it shows this session
        /// as just seen.
        fn touch_and_list(
            &self,
            user_id: &Uuid,
            sid: &str,
            revoked_jti: Option<&str>,
            now_ms: i64,
        ) -> Option<(LiveSession, Vec<SessionRecord>)>;

        /// Every live session of the user (in no particular order); drops expired index
        /// entries on the way.
        fn list_sessions(&self, user_id: &Uuid, now_ms: i64) -> Vec<SessionRecord>;

        /// Ends one session of this user; false when the user has no such live session.
        fn revoke_session(&self, user_id: &Uuid, sid: &str, now_ms: i64) -> bool => count_one_ended;

        /// Ends every session of the user but `keep`, and answers how many live ones
        /// ended. With `password_version` (a new password), also records it (never
        /// lowering it), so a `create_session` checked against an older password is
        /// refused, and ends the user's reset code and trusted browsers.
        fn revoke_sessions(
            &self,
            user_id: &Uuid,
            keep: Option<&str>,
            password_version: Option<i64>,
            now_ms: i64,
        ) -> u32 => count_ended;

        /// The account is gone (deleted or disabled): ends every one of its sessions,
        /// forgets its email (so nothing of it passes `touch_session`), and records
        /// `version` as its password version, so a sign-in checked before this cannot
        /// start a session after it. Answers how many live sessions ended.
        fn close_account(&self, user_id: &Uuid, version: i64, now_ms: i64) -> u32 => count_ended;

        /// Replaces the account's email field beside its sessions ([`email_field`]: the
        /// address, and whether it is verified), so every live session answers the new
        /// one at its next check. Only while the field is there: a closed account stays
        /// closed.
        fn set_account_email(&self, user_id: &Uuid, email_field: &str) -> ();
    }
}

fn count_created(store: &Store, created: &Created) {
    if let Created::Yes { evicted } = created {
        store.count_started();
        store.count_ended(evicted.len() as u64);
    }
}

fn count_one_ended(store: &Store, ended: &bool) {
    store.count_ended(u64::from(*ended));
}

fn count_ended(store: &Store, ended: &u32) {
    store.count_ended(u64::from(*ended));
}
