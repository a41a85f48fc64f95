//! The Redis backend: one multiplexed connection and one Lua script per multi-key operation
//! (`lua/`; the session check reads without one: `sessions.rs`), one file per aggregate
//! (`sessions.rs`, `tokens.rs`, …) implementing its trait.
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
//! once per quota there (`rate_limits.rs`).

mod auth_codes;
mod email_verification;
mod password_reset;
mod pending_sign_ins;
mod rate_limits;
mod scripts;
mod sessions;
mod tokens;
mod trusted_browsers;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, RedisFuture, ScriptInvocation, Value};

use self::scripts::Scripts;
use crate::store::error::{ConnectError, StoreError, StoreResult};
use crate::store::key_names::KeyNames;
use crate::support::metrics::StoreMetrics;

/// The most a store call may take, reconnecting included, before it fails (503).
pub const CALL_BUDGET: Duration = Duration::from_millis(900);
/// One command's wait for its answer on a live socket.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(800);
/// One attempt to open a socket.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

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
    /// (ARCHITECTURE.md, "Decisions").
    conn: Conn,
    keys: KeyNames,
    scripts: Arc<Scripts>,
    metrics: Option<StoreMetrics>,
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
    pub fn connect(url: &str, keys: KeyNames) -> Result<Self, ConnectError> {
        let client = redis::Client::open(url).map_err(ConnectError::Url)?;
        let manager = ConnectionManager::new_lazy_with_config(client, manager_config())
            .map_err(ConnectError::Url)?;
        Ok(Self::over(Conn::Single(manager), keys))
    }

    /// Connects to a Redis Cluster through its seed nodes (`redis://host:port`, at least
    /// one); the crate finds the rest of the cluster from them.
    pub async fn connect_cluster(nodes: &[String], keys: KeyNames) -> Result<Self, ConnectError> {
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

    fn over(conn: Conn, keys: KeyNames) -> Self {
        RedisStore {
            conn,
            keys,
            metrics: None,
            scripts: Arc::new(Scripts::load()),
        }
    }

    /// The key builder under this store's prefix.
    pub fn key_names(&self) -> &KeyNames {
        &self.keys
    }

    /// The same connection and scripts under another key prefix.
    pub fn with_prefix(&self, prefix: &str) -> Self {
        RedisStore {
            conn: self.conn.clone(),
            keys: KeyNames::new(prefix),
            scripts: self.scripts.clone(),
            metrics: self.metrics.clone(),
        }
    }

    pub(crate) fn metrics(&self) -> Option<&StoreMetrics> {
        self.metrics.as_ref()
    }

    pub(crate) fn set_metrics(&mut self, metrics: StoreMetrics) {
        self.metrics = Some(metrics);
    }

    pub async fn ping(&self) -> StoreResult<()> {
        let _: String = self.query(&redis::cmd("PING"), Resend::Idempotent).await?;
        Ok(())
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
