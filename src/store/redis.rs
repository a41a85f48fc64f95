//! The Redis backend: one multiplexed connection and one Lua script per operation
//! (the session check reads without one: `touch_session`).
//!
//! The connection is a `redis::aio::ConnectionManager`: one socket on which concurrent
//! calls are pipelined (no checkout, no waiting for a free connection), and which
//! reconnects by itself, in the background, once a call finds the socket dropped. Every
//! call is bounded by [`CALL_BUDGET`] whatever happens underneath, so a Redis that is
//! down, paused or unreachable answers 503 within about a second, and service resumes
//! with no restart when it is back. ARCHITECTURE.md has the measurements behind this.
//!
//! On a Redis Cluster (`redis_cluster_nodes`) the one connection is the crate's
//! `cluster_async::ClusterConnection`: it routes each script by its first key's slot,
//! follows `MOVED`/`ASK`, and reconnects to a node that comes back. Every script's keys
//! share one slot (the user's `{UID}` hash tag) except the limiter's, which is run
//! once per quota there ([`RedisStore::rate_acquire_split`]).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, RedisFuture, Script, ScriptInvocation, Value};
use uuid::Uuid;

use crate::support::metrics::StoreMetrics;

use super::{
    field, Amr, Backend, CodeCheck, CodeState, ConnectError, Created, Keys, LiveSession,
    NewSession, PendingFailure, PendingSignIn, RateDecision, RateKey, Redeemed, Rotated, Rotation,
    SessionKind, SessionRecord, StoreError, StoreResult, PASSWORD_VERSION_TTL_MS, REFRESH_HISTORY,
    SEEN_REFRESH_MS, USED_CODE_TTL_MS,
};

/// The most a store call may take, reconnecting included, before it fails (503).
pub const CALL_BUDGET: Duration = Duration::from_millis(900);
/// One command's wait for its answer on a live socket.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(800);
/// One attempt to open a socket.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

struct Scripts {
    create: Script,
    touch: Script,
    list: Script,
    revoke: Script,
    revoke_all: Script,
    rotate: Script,
    api_logout: Script,
    refresh_revoke: Script,
    refresh_status: Script,
    rate_acquire: Script,
    reset_store: Script,
    reset_check: Script,
    device_trust: Script,
    code_redeem: Script,
    pending_start: Script,
    pending_fail: Script,
    pending_take: Script,
}

/// One connection: to a single Redis, or to a whole Redis Cluster.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipe: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipe, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipe, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

#[derive(Clone)]
pub struct RedisStore {
    /// One connection (a handle: cloning shares the socket). One, not a few used in
    /// turn: every request in flight is pipelined on the same socket, so Redis and the
    /// server read and write more commands per system call; over two, `/api/v1/me`
    /// cost Redis 8.6 µs and the server 36 µs of CPU a request, over one 5.1 and 32
    /// (ARCHITECTURE.md, "Redis connections").
    conn: Conn,
    keys: Keys,
    scripts: Arc<Scripts>,
    metrics: Option<StoreMetrics>,
}

/// A script with shared Lua functions (`slide.lua`, `list.lua`) in front of it.
macro_rules! script_with {
    ($($file:literal),+) => {
        Script::new(concat!($(include_str!($file)),+))
    };
}

/// A reply of a shape the script never sends.
fn unexpected(script: &'static str, reply: impl std::fmt::Debug) -> StoreError {
    StoreError::Reply {
        script,
        reply: format!("{reply:?}"),
    }
}

/// How a connection is (re)made: one attempt per call that finds it broken (no
/// backoff: a request waiting on a reconnect would wait for every retry), each
/// bounded; a command answered or failed within `RESPONSE_TIMEOUT`.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(0)
}

impl RedisStore {
    /// Sets the connection up; it connects on first use (the start pings).
    pub fn connect(url: &str, keys: Keys) -> Result<Self, ConnectError> {
        let client = redis::Client::open(url).map_err(ConnectError::Url)?;
        let manager = ConnectionManager::new_lazy_with_config(client, manager_config())
            .map_err(ConnectError::Url)?;
        Ok(Self::over(Conn::Single(manager), keys))
    }

    /// Connects to a Redis Cluster through its seed nodes (`redis://host:port`, at least
    /// one); the crate finds the rest of the cluster from them.
    pub async fn connect_cluster(nodes: &[String], keys: Keys) -> Result<Self, ConnectError> {
        let client = redis::cluster::ClusterClient::builder(nodes.to_vec())
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(2)
            .min_retry_wait(10)
            .max_retry_wait(100)
            .build()
            .map_err(ConnectError::Url)?;
        let conn = client
            .get_async_connection()
            .await
            .map_err(ConnectError::Cluster)?;
        Ok(Self::over(Conn::Cluster(conn), keys))
    }

    /// True when connected to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    fn over(conn: Conn, keys: Keys) -> Self {
        RedisStore {
            conn,
            keys,
            metrics: None,
            scripts: Arc::new(Scripts {
                create: script_with!("slide.lua", "session_create.lua"),
                touch: script_with!("slide.lua", "list.lua", "session_touch.lua"),
                list: script_with!("list.lua", "session_list.lua"),
                revoke: Script::new(include_str!("session_revoke.lua")),
                revoke_all: Script::new(include_str!("session_revoke_all.lua")),
                rotate: script_with!("slide.lua", "refresh_rotate.lua"),
                api_logout: Script::new(include_str!("api_logout.lua")),
                refresh_revoke: Script::new(include_str!("refresh_revoke.lua")),
                refresh_status: Script::new(include_str!("refresh_status.lua")),
                rate_acquire: Script::new(include_str!("rate_acquire.lua")),
                reset_store: Script::new(include_str!("reset_store.lua")),
                reset_check: Script::new(include_str!("reset_check.lua")),
                device_trust: Script::new(include_str!("device_trust.lua")),
                code_redeem: Script::new(include_str!("code_redeem.lua")),
                pending_start: Script::new(include_str!("pending_start.lua")),
                pending_fail: Script::new(include_str!("pending_fail.lua")),
                pending_take: Script::new(include_str!("pending_take.lua")),
            }),
        }
    }

    /// A handle on the connection (cloning shares the socket).
    fn connection(&self) -> Conn {
        self.conn.clone()
    }

    /// Runs one script invocation (`EVALSHA`, loading the script when Redis does not
    /// have it) within the call budget, sending it once more on the same connection
    /// when `resend` allows (see [`Resend`]).
    async fn run<T: FromRedisValue>(
        &self,
        inv: &ScriptInvocation<'_>,
        resend: Resend,
    ) -> StoreResult<T> {
        let mut conn = self.connection();
        let call = async {
            match inv.invoke_async(&mut conn).await {
                Err(e) if resend.allows(&e) => inv.invoke_async(&mut conn).await,
                reply => reply,
            }
        };
        match tokio::time::timeout(CALL_BUDGET, call).await {
            Ok(reply) => Ok(reply?),
            Err(_) => Err(StoreError::Timeout(CALL_BUDGET)),
        }
    }

    /// Runs one command or pipeline the same way.
    async fn query<T: FromRedisValue>(
        &self,
        cmd: &impl Queryable,
        resend: Resend,
    ) -> StoreResult<T> {
        let mut conn = self.connection();
        let call = async {
            match cmd.query_on(&mut conn).await {
                Err(e) if resend.allows(&e) => cmd.query_on(&mut conn).await,
                reply => reply,
            }
        };
        match tokio::time::timeout(CALL_BUDGET, call).await {
            Ok(reply) => Ok(reply?),
            Err(_) => Err(StoreError::Timeout(CALL_BUDGET)),
        }
    }

    /// `rate_acquire.lua` over `quotas` (all in one slot, or a single Redis): the
    /// milliseconds to wait, 0 when the attempt was recorded in every quota.
    async fn rate_script(&self, quotas: &[RateKey], member: &str, now_ms: i64) -> StoreResult<i64> {
        let mut inv = self.scripts.rate_acquire.prepare_invoke();
        for q in quotas {
            inv.key(&q.key);
        }
        inv.arg(now_ms).arg(member);
        for q in quotas {
            inv.arg(q.limit).arg(q.window_ms);
        }
        self.run(&inv, Resend::IfNotSent).await
    }

    /// The limiter on a Redis Cluster, where the account and IP quotas hash to
    /// different slots and one script may not touch both (CROSSSLOT). Each quota is
    /// taken in turn by its own atomic script (check and record in one step); when one
    /// is full, the attempt is taken back from those already recorded. So no quota
    /// ever lets more than its limit through, as on one Redis; the difference is that
    /// for the moment between the calls a refused attempt holds a place in an earlier
    /// quota (a concurrent attempt may be refused that one script would have let
    /// through), and if the take-back itself fails the place stays until its window
    /// ends: both err towards refusing, never towards letting more through.
    async fn rate_acquire_split(
        &self,
        quotas: &[RateKey],
        member: &str,
        now_ms: i64,
    ) -> StoreResult<RateDecision> {
        for (i, q) in quotas.iter().enumerate() {
            let wait_ms = self
                .rate_script(std::slice::from_ref(q), member, now_ms)
                .await?;
            if wait_ms > 0 {
                self.rate_release(&quotas[..i], member).await?;
                return Ok(rate_decision(wait_ms));
            }
        }
        Ok(RateDecision::Allowed)
    }

    /// The touch script's invocation; `list` asks for the user's sessions too.
    fn touch_invocation(
        &self,
        user_id: &Uuid,
        sid: &str,
        revoked_jti: Option<&str>,
        now_ms: i64,
        list: bool,
    ) -> ScriptInvocation<'_> {
        let session_key = self.keys.session(user_id, sid);
        let jti_key = match revoked_jti {
            Some(j) => self.keys.revoked_jti(user_id, j),
            None => session_key.clone(),
        };
        let mut inv = self.scripts.touch.prepare_invoke();
        inv.key(session_key)
            .key(self.keys.user(user_id))
            .key(jti_key)
            .arg(sid)
            .arg(now_ms)
            .arg(SEEN_REFRESH_MS)
            .arg(if revoked_jti.is_some() { "1" } else { "0" })
            .arg(if list { "1" } else { "0" });
        if list {
            inv.arg(self.keys.session_prefix(user_id));
        }
        inv
    }
}

/// When a failed call is sent a second time. A connection that finds its socket gone
/// starts reconnecting and fails the call in hand; without a second try, the first
/// request after Redis comes back (or after each connection's socket died unnoticed)
/// would answer 503.
#[derive(Clone, Copy)]
enum Resend {
    /// Only when the connection could not be made: nothing was sent. Every call.
    IfNotSent,
    /// Also when the connection dropped, sent or not: for calls that leave the same
    /// state when they run twice (reads, deletes, a slide to the same expiry).
    Idempotent,
}

impl Resend {
    fn allows(self, e: &redis::RedisError) -> bool {
        e.is_connection_refusal() || matches!(self, Resend::Idempotent) && e.is_connection_dropped()
    }
}

/// A command or a pipeline: both are sent the same way.
trait Queryable: Sync {
    fn query_on<T: FromRedisValue>(
        &self,
        conn: &mut Conn,
    ) -> impl std::future::Future<Output = redis::RedisResult<T>> + Send;
}

impl Queryable for redis::Cmd {
    async fn query_on<T: FromRedisValue>(&self, conn: &mut Conn) -> redis::RedisResult<T> {
        self.query_async(conn).await
    }
}

impl Queryable for redis::Pipeline {
    async fn query_on<T: FromRedisValue>(&self, conn: &mut Conn) -> redis::RedisResult<T> {
        self.query_async(conn).await
    }
}

/// The limiter script's answer: 0 allowed, else how long to wait.
fn rate_decision(wait_ms: i64) -> RateDecision {
    if wait_ms <= 0 {
        RateDecision::Allowed
    } else {
        RateDecision::Limited {
            retry_after: Duration::from_millis(wait_ms as u64),
        }
    }
}

/// The session hash's fields `touch_session` reads, in this order.
const TOUCH_READ: [&str; 5] = [
    field::ABSOLUTE,
    field::IDLE,
    field::SEEN,
    field::KIND,
    field::AMR,
];

/// The user hash's field holding the account's email (absent once it is closed).
const USER_EMAIL: &str = "@";

/// What the read of a session says.
enum Read {
    /// No live session: gone, revoked token, closed account.
    Ended,
    Live(LiveSession),
    /// A write is due, or the session is past its absolute expiry: the script decides.
    Due,
}

/// `touch_session`'s read: `[HMGET a i s k o, HGET @, EXISTS jti?]`.
fn read_touch(replies: Vec<Value>, now_ms: i64) -> StoreResult<Read> {
    let mut replies = replies.into_iter();
    let (Some(fields), Some(email)) = (replies.next(), replies.next()) else {
        return Err(unexpected("session read", "a short reply"));
    };
    let fields: Vec<Option<String>> = redis::from_redis_value(fields)?;
    let email: Option<String> = redis::from_redis_value(email)?;
    let revoked = match replies.next() {
        Some(v) => redis::from_redis_value::<i64>(v)? > 0,
        None => false,
    };
    let num = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.as_deref()?.parse::<i64>().ok())
    };
    let (Some(absolute), Some(idle), Some(seen)) = (num(0), num(1), num(2)) else {
        return Ok(Read::Ended);
    };
    if now_ms >= absolute || super::slide_due(now_ms, seen, idle) {
        return Ok(Read::Due);
    }
    let text = |i: usize| fields.get(i).and_then(|v| v.as_deref());
    let (Some(email), false) = (email, revoked) else {
        return Ok(Read::Ended);
    };
    let kind =
        SessionKind::from_field(text(3)).ok_or_else(|| unexpected("session read", "kind"))?;
    Ok(Read::Live(LiveSession {
        kind,
        email,
        amr: Amr::from_field(text(4)),
    }))
}

/// `session_touch`'s reply: nothing (no live session), or `{kind, email, amr}` and,
/// when asked, the list.
fn parse_touch(reply: Value) -> StoreResult<Option<(LiveSession, Option<Vec<SessionRecord>>)>> {
    let items = match reply {
        Value::Nil => return Ok(None),
        Value::Array(items) => items,
        other => return Err(unexpected("session_touch", other)),
    };
    let mut it = items.into_iter();
    let (Some(kind), Some(email), Some(amr)) = (it.next(), it.next(), it.next()) else {
        return Err(unexpected("session_touch", "a short reply"));
    };
    let kind: String = redis::from_redis_value(kind)?;
    let amr: String = redis::from_redis_value(amr)?;
    let live = LiveSession {
        kind: SessionKind::from_field(Some(&kind))
            .ok_or_else(|| unexpected("session_touch", &kind))?,
        email: redis::from_redis_value(email)?,
        amr: Amr::from_field(Some(&amr)),
    };
    let list = it.next().map(parse_list).transpose()?;
    Ok(Some((live, list)))
}

/// The fields `list()` (list.lua) reads of each session, in its order.
const LISTED: [&str; 8] = [
    field::KIND,
    field::LABEL,
    field::MOBILE,
    field::IP,
    field::CREATED,
    field::SEEN,
    field::AMR,
    field::CLIENT,
];

/// `list()`'s reply: `{sid, {k, l, m, ip, t, s, o, c}, ...}`.
fn parse_list(reply: Value) -> StoreResult<Vec<SessionRecord>> {
    let items: Vec<Value> = redis::from_redis_value(reply)?;
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(sid), Some(values)) = (it.next(), it.next()) {
        let sid: String = redis::from_redis_value(sid)?;
        let values: Vec<Option<String>> = redis::from_redis_value(values)?;
        let get = |name: &str| {
            let i = LISTED.iter().position(|n| *n == name)?;
            values.get(i)?.as_deref()
        };
        out.extend(SessionRecord::read(sid, get));
    }
    Ok(out)
}

/// Each method is one script call (`*.lua` beside this file); the contract is on
/// `Store`. Redis keeps TTLs on its own clock, so the methods whose script only sets
/// or reads TTLs take `now` for the embedded store's sake and do not send it.
impl Backend for RedisStore {
    fn keys(&self) -> &Keys {
        &self.keys
    }

    fn with_prefix(&self, prefix: &str) -> Self {
        RedisStore {
            conn: self.conn.clone(),
            keys: Keys::new(prefix),
            scripts: self.scripts.clone(),
            metrics: self.metrics.clone(),
        }
    }

    fn metrics(&self) -> Option<&StoreMetrics> {
        self.metrics.as_ref()
    }

    fn set_metrics(&mut self, metrics: StoreMetrics) {
        self.metrics = Some(metrics);
    }

    async fn ping(&self) -> StoreResult<()> {
        let _: String = self.query(&redis::cmd("PING"), Resend::Idempotent).await?;
        Ok(())
    }

    async fn create_session(
        &self,
        new: &NewSession,
        max_sessions: u32,
        password_version: i64,
        now_ms: i64,
    ) -> StoreResult<Created> {
        let uid = &new.user_id;
        let mut inv = self.scripts.create.prepare_invoke();
        inv.key(self.keys.session(uid, &new.sid))
            .key(self.keys.user(uid))
            .key(self.keys.password_version(uid))
            .arg(&new.sid)
            .arg(now_ms)
            .arg(new.expiry(now_ms))
            .arg(max_sessions)
            .arg(password_version)
            .arg(self.keys.session_prefix(uid))
            .arg(&new.email)
            .arg(SEEN_REFRESH_MS)
            .arg(new.absolute_expiry_ms);
        for (k, v) in new.fields(now_ms) {
            inv.arg(k).arg(v);
        }
        let v: Value = self.run(&inv, Resend::IfNotSent).await?;
        match v {
            Value::Int(-1) => Ok(Created::Stale),
            Value::Array(items) => Ok(Created::Yes {
                evicted: items
                    .into_iter()
                    .filter_map(|i| redis::from_redis_value(i).ok())
                    .collect(),
            }),
            other => Err(unexpected("session_create", other)),
        }
    }

    async fn touch_session(
        &self,
        user_id: &Uuid,
        sid: &str,
        revoked_jti: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<Option<LiveSession>> {
        // Most uses only read: three plain commands in one round trip, which cost Redis
        // a seventh of the script's time (BENCHMARKS.md). The script runs instead when
        // the session is due a write (`slide_due`: its idle timeout slid, `seen`) or is
        // past its absolute expiry (the script ends it); then its answer is the one given.
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET")
            .arg(self.keys.session(user_id, sid))
            .arg(&TOUCH_READ[..])
            .cmd("HGET")
            .arg(self.keys.user(user_id))
            .arg(USER_EMAIL);
        if let Some(jti) = revoked_jti {
            pipe.cmd("EXISTS").arg(self.keys.revoked_jti(user_id, jti));
        }
        let replies: Vec<Value> = self.query(&pipe, Resend::Idempotent).await?;
        match read_touch(replies, now_ms)? {
            Read::Ended => Ok(None),
            Read::Live(live) => Ok(Some(live)),
            Read::Due => {
                let inv = self.touch_invocation(user_id, sid, revoked_jti, now_ms, false);
                let reply = self.run(&inv, Resend::Idempotent).await?;
                Ok(parse_touch(reply)?.map(|(live, _)| live))
            }
        }
    }

    async fn touch_and_list(
        &self,
        user_id: &Uuid,
        sid: &str,
        revoked_jti: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<Option<(LiveSession, Vec<SessionRecord>)>> {
        let inv = self.touch_invocation(user_id, sid, revoked_jti, now_ms, true);
        match parse_touch(self.run(&inv, Resend::Idempotent).await?)? {
            None => Ok(None),
            Some((live, Some(list))) => Ok(Some((live, list))),
            Some((_, None)) => Err(unexpected("session_touch", "no list")),
        }
    }

    async fn list_sessions(&self, user_id: &Uuid, now_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        let mut inv = self.scripts.list.prepare_invoke();
        inv.key(self.keys.user(user_id))
            .arg(now_ms)
            .arg(self.keys.session_prefix(user_id));
        parse_list(self.run(&inv, Resend::Idempotent).await?)
    }

    async fn revoke_session(&self, user_id: &Uuid, sid: &str, _now: i64) -> StoreResult<bool> {
        let mut inv = self.scripts.revoke.prepare_invoke();
        inv.key(self.keys.session(user_id, sid))
            .key(self.keys.user(user_id))
            .arg(sid);
        let n: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok(n > 0)
    }

    async fn revoke_sessions(
        &self,
        user_id: &Uuid,
        keep: Option<&str>,
        password_version: Option<i64>,
        _now: i64,
    ) -> StoreResult<u32> {
        let mut inv = self.scripts.revoke_all.prepare_invoke();
        inv.key(self.keys.user(user_id))
            .key(self.keys.password_version(user_id))
            .key(self.keys.reset(user_id))
            .key(self.keys.devices(user_id))
            .arg(keep.unwrap_or(""))
            .arg(self.keys.session_prefix(user_id))
            .arg(password_version.map(|v| v.to_string()).unwrap_or_default())
            .arg(PASSWORD_VERSION_TTL_MS)
            .arg("0");
        self.run(&inv, Resend::Idempotent).await
    }

    async fn close_account(&self, user_id: &Uuid, version: i64, _now: i64) -> StoreResult<u32> {
        let mut inv = self.scripts.revoke_all.prepare_invoke();
        inv.key(self.keys.user(user_id))
            .key(self.keys.password_version(user_id))
            .key(self.keys.reset(user_id))
            .key(self.keys.devices(user_id))
            .arg("")
            .arg(self.keys.session_prefix(user_id))
            .arg(version)
            .arg(PASSWORD_VERSION_TTL_MS)
            .arg("1");
        self.run(&inv, Resend::Idempotent).await
    }

    async fn rotate_refresh(
        &self,
        user_id: &Uuid,
        sid: &str,
        rotation: &Rotation<'_>,
        now_ms: i64,
    ) -> StoreResult<Rotated> {
        let mut inv = self.scripts.rotate.prepare_invoke();
        inv.key(self.keys.session(user_id, sid))
            .key(self.keys.user(user_id))
            .arg(sid)
            .arg(now_ms)
            .arg(rotation.presented_hash)
            .arg(rotation.successor_hash)
            .arg(REFRESH_HISTORY)
            .arg(SEEN_REFRESH_MS)
            .arg(rotation.grace_ms.max(0));
        let n: i64 = self.run(&inv, Resend::IfNotSent).await?;
        Ok(match n {
            1 => Rotated::Yes,
            2 => Rotated::Again,
            -1 => Rotated::Reused,
            _ => Rotated::Invalid,
        })
    }

    async fn api_logout(
        &self,
        user_id: &Uuid,
        sid: &str,
        jti: &str,
        token_ttl_ms: i64,
        _now: i64,
    ) -> StoreResult<bool> {
        let mut inv = self.scripts.api_logout.prepare_invoke();
        inv.key(self.keys.session(user_id, sid))
            .key(self.keys.user(user_id))
            .key(self.keys.revoked_jti(user_id, jti))
            .arg(sid)
            .arg(token_ttl_ms);
        let n: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok(n > 0)
    }

    async fn revoke_access(
        &self,
        user_id: &Uuid,
        jti: &str,
        token_ttl_ms: i64,
        _now: i64,
    ) -> StoreResult<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.revoked_jti(user_id, jti))
            .arg(1)
            .arg("PX")
            .arg(token_ttl_ms);
        let _: Value = self.query(&cmd, Resend::Idempotent).await?;
        Ok(())
    }

    async fn revoke_refresh(
        &self,
        user_id: &Uuid,
        sid: &str,
        presented_hash: &str,
        _now: i64,
    ) -> StoreResult<bool> {
        let mut inv = self.scripts.refresh_revoke.prepare_invoke();
        inv.key(self.keys.session(user_id, sid))
            .key(self.keys.user(user_id))
            .arg(sid)
            .arg(presented_hash)
            .arg(REFRESH_HISTORY);
        let n: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok(n > 0)
    }

    async fn refresh_status(
        &self,
        user_id: &Uuid,
        sid: &str,
        presented_hash: &str,
        now_ms: i64,
    ) -> StoreResult<Option<i64>> {
        let mut inv = self.scripts.refresh_status.prepare_invoke();
        inv.key(self.keys.session(user_id, sid))
            .key(self.keys.user(user_id))
            .arg(presented_hash)
            .arg(now_ms);
        let issued: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok((issued > 0).then_some(issued))
    }

    async fn put_code(
        &self,
        user_id: &Uuid,
        id: &str,
        request: &str,
        ttl_ms: i64,
        _now: i64,
    ) -> StoreResult<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.auth_code(user_id, id))
            .arg(request)
            .arg("PX")
            .arg(ttl_ms);
        let _: () = self.query(&cmd, Resend::Idempotent).await?;
        Ok(())
    }

    async fn get_code(
        &self,
        user_id: &Uuid,
        id: &str,
        _now: i64,
    ) -> StoreResult<Option<CodeState>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.keys.auth_code(user_id, id));
        let v: Option<String> = self.query(&cmd, Resend::Idempotent).await?;
        Ok(v.map(|v| match v.strip_prefix("u:") {
            Some(sid) => CodeState::Used(sid.to_string()),
            None => CodeState::Unused(v),
        }))
    }

    async fn redeem_code(
        &self,
        user_id: &Uuid,
        id: &str,
        new_sid: Option<&str>,
        _now: i64,
    ) -> StoreResult<Redeemed> {
        let mut inv = self.scripts.code_redeem.prepare_invoke();
        inv.key(self.keys.auth_code(user_id, id))
            .key(self.keys.user(user_id))
            .arg(self.keys.session_prefix(user_id))
            .arg(new_sid.unwrap_or(""))
            .arg(USED_CODE_TTL_MS);
        let n: i64 = self.run(&inv, Resend::IfNotSent).await?;
        Ok(match n {
            1 => Redeemed::Yes,
            -1 => Redeemed::Replayed,
            _ => Redeemed::Gone,
        })
    }

    async fn rate_acquire(
        &self,
        quotas: &[RateKey],
        member: &str,
        now_ms: i64,
    ) -> StoreResult<RateDecision> {
        if self.is_cluster() && quotas.len() > 1 {
            return self.rate_acquire_split(quotas, member, now_ms).await;
        }
        let wait_ms = self.rate_script(quotas, member, now_ms).await?;
        Ok(rate_decision(wait_ms))
    }

    async fn rate_release(&self, quotas: &[RateKey], member: &str) -> StoreResult<()> {
        if self.is_cluster() {
            // The quotas live in different slots: one ZREM each (a pipeline is one slot).
            for q in quotas {
                let mut cmd = redis::cmd("ZREM");
                cmd.arg(&q.key).arg(member);
                let _: i64 = self.query(&cmd, Resend::Idempotent).await?;
            }
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for q in quotas {
            pipe.cmd("ZREM").arg(&q.key).arg(member).ignore();
        }
        self.query(&pipe, Resend::Idempotent).await
    }

    async fn store_reset_code(
        &self,
        user_id: &Uuid,
        mac: &str,
        ttl_ms: i64,
        _now: i64,
    ) -> StoreResult<()> {
        let mut inv = self.scripts.reset_store.prepare_invoke();
        inv.key(self.keys.reset(user_id)).arg(mac).arg(ttl_ms);
        let _: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok(())
    }

    async fn check_reset_code(
        &self,
        user_id: &Uuid,
        mac: &str,
        max_tries: u32,
        _now: i64,
    ) -> StoreResult<CodeCheck> {
        let mut inv = self.scripts.reset_check.prepare_invoke();
        inv.key(self.keys.reset(user_id)).arg(mac).arg(max_tries);
        let n: i64 = self.run(&inv, Resend::IfNotSent).await?;
        Ok(match n {
            1 => CodeCheck::Right,
            0 => CodeCheck::Wrong,
            -2 => CodeCheck::Burned,
            _ => CodeCheck::Missing,
        })
    }

    async fn trust_device(
        &self,
        user_id: &Uuid,
        nonce: &str,
        max_devices: u32,
        ttl_ms: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut inv = self.scripts.device_trust.prepare_invoke();
        inv.key(self.keys.devices(user_id))
            .arg(nonce)
            .arg(now_ms)
            .arg(ttl_ms)
            .arg(max_devices);
        // The same arguments leave the same set: safe to send again.
        let _: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok(())
    }

    async fn device_trusted(&self, user_id: &Uuid, nonce: &str, now_ms: i64) -> StoreResult<bool> {
        let mut cmd = redis::cmd("ZSCORE");
        cmd.arg(self.keys.devices(user_id)).arg(nonce);
        let until: Option<f64> = self.query(&cmd, Resend::Idempotent).await?;
        Ok(until.is_some_and(|t| t > now_ms as f64))
    }
    async fn start_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        pending: &PendingSignIn,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut inv = self.scripts.pending_start.prepare_invoke();
        inv.key(self.keys.pending(user_id, pid))
            .arg((pending.expires_ms - now_ms).max(1));
        for (k, v) in pending.fields() {
            inv.arg(k).arg(v);
        }
        // The same fields again leave the same hash: safe to send twice.
        let _: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok(())
    }

    async fn read_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        now_ms: i64,
    ) -> StoreResult<Option<PendingSignIn>> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.keys.pending(user_id, pid));
        let h: std::collections::HashMap<String, String> =
            self.query(&cmd, Resend::Idempotent).await?;
        Ok(PendingSignIn::read(
            |k| h.get(k).map(String::as_str),
            now_ms,
        ))
    }

    async fn fail_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        max_wrong: u32,
        now_ms: i64,
    ) -> StoreResult<PendingFailure> {
        let mut inv = self.scripts.pending_fail.prepare_invoke();
        inv.key(self.keys.pending(user_id, pid))
            .arg(now_ms)
            .arg(max_wrong);
        let n: i64 = self.run(&inv, Resend::IfNotSent).await?;
        Ok(match n {
            n if n > 0 => PendingFailure::Counted { left: n as u32 },
            0 => PendingFailure::Ended,
            _ => PendingFailure::Missing,
        })
    }

    async fn take_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        now_ms: i64,
    ) -> StoreResult<Option<PendingSignIn>> {
        let mut inv = self.scripts.pending_take.prepare_invoke();
        inv.key(self.keys.pending(user_id, pid));
        let h: Option<std::collections::HashMap<String, String>> =
            self.run(&inv, Resend::IfNotSent).await?;
        Ok(h.and_then(|h| PendingSignIn::read(|k| h.get(k).map(String::as_str), now_ms)))
    }
}
