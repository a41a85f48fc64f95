//! The state that lives outside the accounts database: sessions, API-token state,
//! reset codes and rate limits. One `Store` with two backends that behave the same:
//! Redis (production, tests) and an embedded in-process map (`redis_url = "memory"`).
//!
//! The contract is written once, on `Store`'s methods; both backends implement the
//! private `Backend` trait, so their signatures cannot drift apart, and the
//! `on_both_stores!` tests hold them to the same behaviour. Every operation that touches
//! more than one key is one Lua script on Redis and one critical section in memory.

mod keys;
mod memory;
mod redis;

use std::future::Future;
use std::time::Duration;

use rocket::fairing::AdHoc;
use thiserror::Error;
use uuid::Uuid;

pub use self::keys::Keys;
pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;
use crate::config::{Settings, StorageSettings};
use crate::support::metrics::{Metrics, StoreMetrics};
use crate::support::report::Report;

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

/// How many earlier refresh-token hashes are kept to recognise a replay.
pub const REFRESH_HISTORY: usize = 5;
/// How long a password version is remembered: far longer than any sign-in takes.
pub const PASSWORD_VERSION_TTL_MS: i64 = 24 * 3600 * 1000;

/// Why the store did not answer. Every variant is "unavailable" to a request (503);
/// the cause is kept for the log.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("a Redis command failed")]
    Command(#[from] ::redis::RedisError),
    #[error("Redis answered with an unreadable value")]
    Parse(#[from] ::redis::ParsingError),
    #[error("unexpected reply from {script}: {reply}")]
    Reply { script: &'static str, reply: String },
    #[error("the embedded store was left half-changed by a panic")]
    Poisoned,
}

/// Why a Redis store could not be set up (a bad URL).
#[derive(Debug, Error)]
pub enum ConnectError {
    #[error("not a usable Redis URL")]
    Url(#[source] ::redis::RedisError),
    #[error("cannot reach the Redis Cluster")]
    Cluster(#[source] ::redis::RedisError),
}

impl StoreError {
    /// Redis took too long: our call budget, or the client's own connect or response
    /// timeout, ran out.
    fn is_timeout(&self) -> bool {
        match self {
            StoreError::Timeout(_) => true,
            StoreError::Command(e) => e.is_timeout(),
            _ => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

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
    fn from_field(k: Option<&str>) -> Option<Self> {
        match k {
            None | Some("b") => Some(SessionKind::Browser),
            Some("a") => Some(SessionKind::Api),
            Some("o") => Some(SessionKind::App),
            Some(_) => None,
        }
    }

    fn field_value(self) -> Option<&'static str> {
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
    /// code), absent for a password alone, so a password-only hash is no larger than
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
}

impl Amr {
    /// The RFC 8176 values, as an OpenID Connect `amr` claim lists them.
    pub fn values(self) -> &'static [&'static str] {
        match self {
            Amr::Password => &["pwd"],
            Amr::PasswordAndOtp => &["pwd", "otp"],
        }
    }

    /// Read back from the values `values` gave (an authorization code keeps them as
    /// its id_token will carry them). Anything without `otp` is `Password`.
    pub fn from_values<S: AsRef<str>>(values: &[S]) -> Amr {
        if values.iter().any(|v| v.as_ref() == "otp") {
            Amr::PasswordAndOtp
        } else {
            Amr::Password
        }
    }

    /// In words, for the devices page.
    pub fn in_words(self) -> &'static str {
        match self {
            Amr::Password => "password",
            Amr::PasswordAndOtp => "password + authenticator",
        }
    }

    /// The session hash's `o` value; `None`: the field is left out.
    fn field(self) -> Option<&'static str> {
        match self {
            Amr::Password => None,
            Amr::PasswordAndOtp => Some("1"),
        }
    }

    /// The `o` field as stored. Anything unknown reads as the weaker `Password`: a
    /// session is never said to have passed a factor it did not record.
    fn from_field(v: Option<&str>) -> Amr {
        match v {
            Some("1") => Amr::PasswordAndOtp,
            _ => Amr::Password,
        }
    }
}

impl serde::Serialize for Amr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.values().serialize(s)
    }
}

/// Everything a new session hash holds.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub user_id: Uuid,
    /// The account's email, kept once per user beside the sessions (not in each
    /// hash) so a session check can answer it without the database.
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
    fn fields(&self, now_ms: i64) -> Vec<(&'static str, String)> {
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

    fn expiry(&self, now_ms: i64) -> i64 {
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
    fn read<'a>(sid: String, get: impl Fn(&str) -> Option<&'a str>) -> Option<Self> {
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
    /// The account's email, as it was when the session started.
    pub email: String,
    /// How the session signed in.
    pub amr: Amr,
}

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
mod pending_field {
    pub const REMEMBER: &str = "r";
    pub const TARGET: &str = "to";
    pub const PASSWORD_VERSION: &str = "v";
    pub const CREATED: &str = "t";
    pub const EXPIRES: &str = "x";
    pub const WRONG: &str = "w";
}

impl PendingSignIn {
    fn fields(&self) -> Vec<(&'static str, String)> {
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
    fn read<'a>(get: impl Fn(&str) -> Option<&'a str>, now_ms: i64) -> Option<Self> {
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The session exists; these SIDs were ended to stay under the cap.
    Yes { evicted: Vec<String> },
    /// The password changed after the credentials were checked: no session.
    Stale,
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    Right,
    Wrong,
    /// Wrong, and that was the last allowed try: the code is gone.
    Burned,
    /// No code: never asked for, expired, used or burned.
    Missing,
}

/// An authorization code as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeState {
    /// Not used yet: the request it answers (JSON).
    Unused(String),
    /// Used once, by this app session.
    Used(String),
}

/// What `redeem_code` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeemed {
    /// The first use: the code now names the new session.
    Yes,
    /// Used before: the session of the first use and the new one are ended.
    Replayed,
    /// No such code (expired, never issued): the new session is ended.
    Gone,
}

/// How long a used authorization code is remembered, to recognise its replay.
pub const USED_CODE_TTL_MS: i64 = 10 * 60 * 1000;

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

/// One refresh of an API session: the hash of the secret presented, the hash of the
/// successor it derives (`crate::services::sessions::refresh`: the same for every presentation of one
/// secret, so a retry within the window is answered with the same successor and the
/// store never holds it), and the grace window (0: none).
#[derive(Debug, Clone, Copy)]
pub struct Rotation<'a> {
    pub presented_hash: &'a str,
    pub successor_hash: &'a str,
    pub grace_ms: i64,
}

/// The store handle the app manages. Cheap to clone.
///
/// # The contract (both backends)
///
/// - Times come from the caller (`now_ms`, unix milliseconds), so both backends agree
///   on what has expired. Redis also keeps its own TTLs, set from the same numbers.
/// - Every method is one atomic step: concurrent calls never see half of one.
/// - A user's keys are built from the user id the caller passes, never from input
///   alone: another user's session id names nothing.
/// - A session lives until `min(last use + idle, absolute expiry)`; reading it past
///   either ends it. Its entry in the user hash says a time no earlier than that
///   (rewritten with `seen`, at most once per `SEEN_REFRESH_MS`: the expiry plus that
///   interval), so a listing never misses a live session.
/// - A session is live only while its account's email is recorded beside it (every
///   `create_session` records it, `close_account` removes it).
/// - `Err` means the store did not answer (503 for a request); nothing was changed
///   that the caller could see half of.
#[derive(Clone)]
pub enum Store {
    Redis(RedisStore),
    Memory(MemoryStore),
}

/// What each backend implements: the methods of `Store`, with the same meaning.
/// Private, so the contract is documented once (on `Store`), and a backend that
/// drifts from it does not compile.
trait Backend {
    fn keys(&self) -> &Keys;
    fn with_prefix(&self, prefix: &str) -> Self;
    fn metrics(&self) -> Option<&StoreMetrics>;
    fn set_metrics(&mut self, metrics: StoreMetrics);
    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send;
    fn create_session(
        &self,
        new: &NewSession,
        max_sessions: u32,
        password_version: i64,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<Created>> + Send;
    fn touch_session(
        &self,
        user_id: &Uuid,
        sid: &str,
        revoked_jti: Option<&str>,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<Option<LiveSession>>> + Send;
    fn touch_and_list(
        &self,
        user_id: &Uuid,
        sid: &str,
        revoked_jti: Option<&str>,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<Option<(LiveSession, Vec<SessionRecord>)>>> + Send;
    fn list_sessions(
        &self,
        user_id: &Uuid,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<Vec<SessionRecord>>> + Send;
    fn revoke_session(
        &self,
        user_id: &Uuid,
        sid: &str,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    fn revoke_sessions(
        &self,
        user_id: &Uuid,
        keep: Option<&str>,
        password_version: Option<i64>,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<u32>> + Send;
    fn close_account(
        &self,
        user_id: &Uuid,
        version: i64,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<u32>> + Send;
    fn rotate_refresh(
        &self,
        user_id: &Uuid,
        sid: &str,
        rotation: &Rotation<'_>,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<Rotated>> + Send;
    fn api_logout(
        &self,
        user_id: &Uuid,
        sid: &str,
        jti: &str,
        token_ttl_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    fn revoke_access(
        &self,
        user_id: &Uuid,
        jti: &str,
        token_ttl_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    fn revoke_refresh(
        &self,
        user_id: &Uuid,
        sid: &str,
        presented_hash: &str,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    fn refresh_status(
        &self,
        user_id: &Uuid,
        sid: &str,
        presented_hash: &str,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<Option<i64>>> + Send;
    fn put_code(
        &self,
        user_id: &Uuid,
        id: &str,
        request: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    fn get_code(
        &self,
        user_id: &Uuid,
        id: &str,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<Option<CodeState>>> + Send;
    fn redeem_code(
        &self,
        user_id: &Uuid,
        id: &str,
        new_sid: Option<&str>,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<Redeemed>> + Send;
    fn rate_acquire(
        &self,
        quotas: &[RateKey],
        member: &str,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<RateDecision>> + Send;
    fn rate_release(
        &self,
        quotas: &[RateKey],
        member: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    fn store_reset_code(
        &self,
        user_id: &Uuid,
        mac: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    fn check_reset_code(
        &self,
        user_id: &Uuid,
        mac: &str,
        max_tries: u32,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<CodeCheck>> + Send;
    fn trust_device(
        &self,
        user_id: &Uuid,
        nonce: &str,
        max_devices: u32,
        ttl_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    fn device_trusted(
        &self,
        user_id: &Uuid,
        nonce: &str,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    fn start_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        pending: &PendingSignIn,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    fn read_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<Option<PendingSignIn>>> + Send;
    fn fail_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        max_wrong: u32,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<PendingFailure>> + Send;
    fn take_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<Option<PendingSignIn>>> + Send;
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Redis($s) => $e,
            Store::Memory($s) => $e,
        }
    };
}

/// `dispatch!` with the call's time recorded in the store latency histogram.
macro_rules! timed {
    ($self:ident, $s:ident => $e:expr) => {{
        let start = std::time::Instant::now();
        let reply = dispatch!($self, $s => $e);
        if let Some(m) = $self.metrics() {
            m.call_seconds.observe(start.elapsed().as_secs_f64());
        }
        reply
    }};
}

impl Store {
    /// The metrics this store records into (`None` until `observed_by`).
    fn metrics(&self) -> Option<&StoreMetrics> {
        dispatch!(self, s => s.metrics())
    }

    /// Records call latency and sessions started and ended into `metrics`.
    pub fn observed_by(mut self, metrics: StoreMetrics) -> Store {
        match &mut self {
            Store::Redis(s) => s.set_metrics(metrics),
            Store::Memory(s) => s.set_metrics(metrics),
        }
        self
    }

    fn count_ended(&self, n: u64) {
        if let Some(m) = self.metrics() {
            m.sessions_ended.inc_by(n);
        }
    }

    /// The key builder under this store's prefix.
    pub fn keys(&self) -> &Keys {
        dispatch!(self, s => s.keys())
    }

    /// True on a Redis Cluster (`redis_cluster_nodes`).
    pub fn is_cluster(&self) -> bool {
        matches!(self, Store::Redis(s) if s.is_cluster())
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Store::Redis(_) => "redis",
            Store::Memory(_) => "memory",
        }
    }

    /// The same backend under another key prefix (tests isolate themselves this way).
    pub fn with_prefix(&self, prefix: &str) -> Store {
        match self {
            Store::Redis(s) => Store::Redis(s.with_prefix(prefix)),
            Store::Memory(s) => Store::Memory(s.with_prefix(prefix)),
        }
    }

    /// Answers when the store can be used (for `/health` and the start).
    pub async fn ping(&self) -> StoreResult<()> {
        dispatch!(self, s => s.ping().await)
    }

    /// Starts a session, all in one step: refuses it (`Stale`) when the user's password
    /// version has moved past `password_version` (the credentials were checked against
    /// an older password, or the account was closed since); drops expired entries of
    /// the user hash; while the user has `max_sessions` live sessions, ends the least
    /// recently seen; then writes the session with `created = seen = now` and expiry
    /// `min(now + idle, absolute)`, and the account's email beside it.
    pub async fn create_session(
        &self,
        new: &NewSession,
        max_sessions: u32,
        password_version: i64,
        now_ms: i64,
    ) -> StoreResult<Created> {
        let created =
            timed!(self, s => s.create_session(new, max_sessions, password_version, now_ms).await)?;
        if let (Created::Yes { evicted }, Some(m)) = (&created, self.metrics()) {
            m.sessions_started.inc();
            m.sessions_ended.inc_by(evicted.len() as u64);
        }
        Ok(created)
    }

    /// The hot path, one round trip: `None` when the session does not live, is past
    /// its absolute expiry (then it is ended), `revoked_jti` names a revoked access
    /// token, or the account was closed (`close_account`). Otherwise answers the
    /// session's kind, its account's email and its `amr`; when `slide_due`, it also
    /// slides the expiry to `min(now + idle, absolute)` and writes `seen` when that is
    /// older than `SEEN_REFRESH_MS` (ARCHITECTURE.md, "The session check").
    pub async fn touch_session(
        &self,
        user_id: &Uuid,
        sid: &str,
        revoked_jti: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<Option<LiveSession>> {
        timed!(self, s => s.touch_session(user_id, sid, revoked_jti, now_ms).await)
    }

    /// `touch_session` and `list_sessions` in the same one step (the devices page:
    /// one round trip). The list is taken after the touch, so it shows this session
    /// as just seen.
    pub async fn touch_and_list(
        &self,
        user_id: &Uuid,
        sid: &str,
        revoked_jti: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<Option<(LiveSession, Vec<SessionRecord>)>> {
        timed!(self, s => s.touch_and_list(user_id, sid, revoked_jti, now_ms).await)
    }

    /// Every live session of the user (in no particular order); drops expired index
    /// entries on the way.
    pub async fn list_sessions(
        &self,
        user_id: &Uuid,
        now_ms: i64,
    ) -> StoreResult<Vec<SessionRecord>> {
        timed!(self, s => s.list_sessions(user_id, now_ms).await)
    }

    /// Ends one session of this user; false when the user has no such live session.
    pub async fn revoke_session(
        &self,
        user_id: &Uuid,
        sid: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let ended = timed!(self, s => s.revoke_session(user_id, sid, now_ms).await)?;
        self.count_ended(ended as u64);
        Ok(ended)
    }

    /// Ends every session of the user but `keep`, and answers how many live ones
    /// ended. With `password_version` (a new password), also records it (never
    /// lowering it), so a `create_session` checked against an older password is
    /// refused, and ends the user's reset code and trusted devices.
    pub async fn revoke_sessions(
        &self,
        user_id: &Uuid,
        keep: Option<&str>,
        password_version: Option<i64>,
        now_ms: i64,
    ) -> StoreResult<u32> {
        let ended =
            timed!(self, s => s.revoke_sessions(user_id, keep, password_version, now_ms).await)?;
        self.count_ended(ended.into());
        Ok(ended)
    }

    /// The account is gone (deleted or disabled): ends every one of its sessions,
    /// forgets its email (so nothing of it passes `touch_session`), and records
    /// `version` as its password version, so a sign-in checked before this cannot
    /// start a session after it. Answers how many live sessions ended.
    pub async fn close_account(
        &self,
        user_id: &Uuid,
        version: i64,
        now_ms: i64,
    ) -> StoreResult<u32> {
        let ended = timed!(self, s => s.close_account(user_id, version, now_ms).await)?;
        self.count_ended(ended.into());
        Ok(ended)
    }

    /// API and app refresh (see `Rotation`): when `presented_hash` is the session's
    /// current refresh hash, replaces it with `successor_hash` (keeping
    /// `REFRESH_HISTORY` earlier ones), records when, slides the expiry and answers
    /// `Yes`. When it is the immediately previous one, less than `grace_ms` after its
    /// rotation, and `successor_hash` is current, slides the expiry and answers
    /// `Again`. When it is an earlier one, or the previous one after the window, ends
    /// the session (a replayed secret: theft) and answers `Reused`; else `Invalid`.
    /// Only API and app sessions of an open account rotate.
    pub async fn rotate_refresh(
        &self,
        user_id: &Uuid,
        sid: &str,
        rotation: &Rotation<'_>,
        now_ms: i64,
    ) -> StoreResult<Rotated> {
        let rotated = timed!(self, s => s.rotate_refresh(user_id, sid, rotation, now_ms).await)?;
        self.count_ended(matches!(rotated, Rotated::Reused) as u64);
        Ok(rotated)
    }

    /// Ends an API session and marks its access token's `jti` revoked
    /// for `token_ttl_ms` (nothing to mark when it is 0); true when the session lived.
    pub async fn api_logout(
        &self,
        user_id: &Uuid,
        sid: &str,
        jti: &str,
        token_ttl_ms: i64,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let ended = timed!(self, s => s.api_logout(user_id, sid, jti, token_ttl_ms, now_ms).await)?;
        self.count_ended(ended as u64);
        Ok(ended)
    }

    /// Marks one access token (its `jti`) revoked for `token_ttl_ms`, its remaining
    /// life; its session goes on (RFC 7009 revocation of an access token).
    pub async fn revoke_access(
        &self,
        user_id: &Uuid,
        jti: &str,
        token_ttl_ms: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        if token_ttl_ms <= 0 {
            return Ok(());
        }
        timed!(self, s => s.revoke_access(user_id, jti, token_ttl_ms, now_ms).await)
    }

    /// Ends the session `sid` when `presented_hash` is its current refresh hash or
    /// one of the `REFRESH_HISTORY` before it (RFC 7009 revocation of a refresh
    /// token); true when a session ended.
    pub async fn revoke_refresh(
        &self,
        user_id: &Uuid,
        sid: &str,
        presented_hash: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let ended =
            timed!(self, s => s.revoke_refresh(user_id, sid, presented_hash, now_ms).await)?;
        self.count_ended(ended as u64);
        Ok(ended)
    }

    /// When `presented_hash` is the current refresh hash of the live API or app
    /// session `sid` of an open account, the time (ms) it was issued; else `None`.
    /// Changes nothing (RFC 7662 introspection).
    pub async fn refresh_status(
        &self,
        user_id: &Uuid,
        sid: &str,
        presented_hash: &str,
        now_ms: i64,
    ) -> StoreResult<Option<i64>> {
        timed!(self, s => s.refresh_status(user_id, sid, presented_hash, now_ms).await)
    }

    /// Stores an unused authorization code (its request as JSON) for `ttl_ms`.
    pub async fn put_code(
        &self,
        user_id: &Uuid,
        id: &str,
        request: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        timed!(self, s => s.put_code(user_id, id, request, ttl_ms, now_ms).await)
    }

    /// An authorization code: unused (its request), used (by which session), or none.
    pub async fn get_code(
        &self,
        user_id: &Uuid,
        id: &str,
        now_ms: i64,
    ) -> StoreResult<Option<CodeState>> {
        timed!(self, s => s.get_code(user_id, id, now_ms).await)
    }

    /// Uses a code, in one step: unused → it now names `new_sid` (remembered
    /// `USED_CODE_TTL_MS`) and `Yes`; used before → the session of its first use and
    /// `new_sid` are ended, `Replayed`; no code → `new_sid` is ended, `Gone`. With
    /// `new_sid` `None` an unused code is left as it is (`Gone`).
    pub async fn redeem_code(
        &self,
        user_id: &Uuid,
        id: &str,
        new_sid: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<Redeemed> {
        let r = timed!(self, s => s.redeem_code(user_id, id, new_sid, now_ms).await)?;
        if r == Redeemed::Replayed {
            self.count_ended(1);
        }
        Ok(r)
    }

    /// The sliding-window limiter: forgets attempts older than each quota's window;
    /// when any quota is full answers how long until its oldest counted attempt leaves
    /// the window, else records `member` in every quota. All or nothing.
    pub async fn rate_acquire(
        &self,
        quotas: &[RateKey],
        member: &str,
        now_ms: i64,
    ) -> StoreResult<RateDecision> {
        timed!(self, s => s.rate_acquire(quotas, member, now_ms).await)
    }

    /// Takes back an attempt (a successful sign-in is not a failure).
    pub async fn rate_release(&self, quotas: &[RateKey], member: &str) -> StoreResult<()> {
        timed!(self, s => s.rate_release(quotas, member).await)
    }

    /// Stores a reset code's keyed hash for `ttl_ms`, replacing any earlier code and
    /// its count of wrong tries.
    pub async fn store_reset_code(
        &self,
        user_id: &Uuid,
        mac: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        timed!(self, s => s.store_reset_code(user_id, mac, ttl_ms, now_ms).await)
    }

    /// Checks a code in constant time: right → used up; wrong → counted, and the
    /// `max_tries`th wrong try burns the code; no live code → `Missing`.
    pub async fn check_reset_code(
        &self,
        user_id: &Uuid,
        mac: &str,
        max_tries: u32,
        now_ms: i64,
    ) -> StoreResult<CodeCheck> {
        timed!(self, s => s.check_reset_code(user_id, mac, max_tries, now_ms).await)
    }

    /// Trusts the device `nonce` for the user until `now + ttl_ms` (renewing it when
    /// it was trusted already); of the user's devices, the `max_devices` renewed most
    /// recently stay, the rest are dropped.
    pub async fn trust_device(
        &self,
        user_id: &Uuid,
        nonce: &str,
        max_devices: u32,
        ttl_ms: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        dispatch!(self, s => s.trust_device(user_id, nonce, max_devices, ttl_ms, now_ms).await)
    }

    /// Whether the user trusts the device `nonce` now. A new password ends every
    /// trusted device of the user (`revoke_sessions` with a password version).
    pub async fn device_trusted(
        &self,
        user_id: &Uuid,
        nonce: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.device_trusted(user_id, nonce, now_ms).await)
    }

    /// Starts a pending sign-in under `pid` (replacing any of that id), to end at
    /// `pending.expires_ms` whatever happens.
    pub async fn start_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        pending: &PendingSignIn,
        now_ms: i64,
    ) -> StoreResult<()> {
        timed!(self, s => s.start_pending(user_id, pid, pending, now_ms).await)
    }

    /// The pending sign-in `pid` of the user, while it lives.
    pub async fn read_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        now_ms: i64,
    ) -> StoreResult<Option<PendingSignIn>> {
        timed!(self, s => s.read_pending(user_id, pid, now_ms).await)
    }

    /// Counts a wrong code against a live pending sign-in; the `max_wrong`th ends it.
    pub async fn fail_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        max_wrong: u32,
        now_ms: i64,
    ) -> StoreResult<PendingFailure> {
        timed!(self, s => s.fail_pending(user_id, pid, max_wrong, now_ms).await)
    }

    /// Ends the pending sign-in `pid` and answers it when it was live: of two
    /// concurrent takes, one gets it. Used once, never again.
    pub async fn take_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        now_ms: i64,
    ) -> StoreResult<Option<PendingSignIn>> {
        timed!(self, s => s.take_pending(user_id, pid, now_ms).await)
    }
}

/// Connects the configured store and manages it.
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Session store", |rocket| async move {
        let Some(settings) = rocket.state::<Settings>() else {
            return Err(rocket);
        };
        match connect(
            &settings.storage,
            rocket.figment().profile().as_str() == "debug",
        )
        .await
        {
            Ok(mut store) => {
                if let Some(metrics) = rocket.state::<Metrics>() {
                    store = store.observed_by(metrics.store.clone());
                }
                tracing::info!(backend = store.backend_name(), "session store ready");
                Ok(rocket.manage(store))
            }
            Err(msg) => {
                tracing::error!("{msg}");
                eprintln!("latchkey: {msg}");
                Err(rocket)
            }
        }
    })
}

/// How many call budgets the first ping at start gets. A Redis that is there but slow to
/// answer a new connection's first round trip (a loaded machine: one budget, 900 ms, was
/// not always enough) is not taken for one that is not there; a refused connection
/// still fails at once.
const START_PINGS: u32 = 3;

/// The start's ping: again after a timeout (ours or the client's), up to [`START_PINGS`]
/// tries.
async fn first_ping(store: &RedisStore) -> StoreResult<()> {
    let mut tries = 1;
    loop {
        match store.ping().await {
            Err(e) if e.is_timeout() && tries < START_PINGS => tries += 1,
            answer => return answer,
        }
    }
}

/// Connects the store `settings` name (the server's stage, and the command line).
/// With `redis_url` unset, a Redis that does not answer at the default address is
/// replaced by the embedded store when `fall_back_to_memory`, else an error.
pub async fn connect(
    settings: &StorageSettings,
    fall_back_to_memory: bool,
) -> Result<Store, String> {
    let keys = Keys::new(&settings.key_prefix);
    if let Some(nodes) = &settings.redis_cluster_nodes {
        return RedisStore::connect_cluster(nodes, keys)
            .await
            .map(Store::Redis)
            .map_err(|e| format!("setting `redis_cluster_nodes`: {}", Report(&e)));
    }
    match settings.redis_url.as_deref() {
        Some("memory") => Ok(Store::Memory(MemoryStore::new(keys))),
        Some(url) => {
            let store = RedisStore::connect(url, keys)
                .map_err(|e| format!("invalid setting `redis_url`: {}", Report(&e)))?;
            first_ping(&store).await.map_err(|e| {
                format!(
                    "setting `redis_url`: cannot reach Redis at {url}: {}",
                    Report(&e)
                )
            })?;
            Ok(Store::Redis(store))
        }
        None => {
            let url = "redis://127.0.0.1:6379";
            let store =
                RedisStore::connect(url, keys.clone()).map_err(|e| Report(&e).to_string())?;
            match first_ping(&store).await {
                Ok(()) => Ok(Store::Redis(store)),
                Err(e) if fall_back_to_memory => {
                    tracing::warn!(
                        "no Redis answers at {url} ({}); using the embedded in-process store: \
                         sessions will not survive a restart",
                        Report(&e)
                    );
                    Ok(Store::Memory(MemoryStore::new(keys)))
                }
                Err(e) => Err(format!(
                    "setting `redis_url`: cannot reach Redis at {url} (the release default): {}",
                    Report(&e)
                )),
            }
        }
    }
}
