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
mod ceremonies;
mod email_changes;
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

    /// On a Redis Cluster, the slot ranges no live master serves (empty: all served),
    /// as one node sees them; `Ok(None)` for a single Redis. A node that does not
    /// answer is passed over for another (up to three tries within the call budget).
    pub async fn cluster_slots_down(&self) -> StoreResult<Option<Vec<(u16, u16)>>> {
        use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
        let Conn::Cluster(conn) = &self.conn else {
            return Ok(None);
        };
        let mut conn = conn.clone();
        let ask = async {
            let mut last = None;
            for _ in 0..3 {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
                match conn
                    .route_command(redis::cmd("CLUSTER").arg("NODES").clone(), routing)
                    .await
                {
                    Ok(reply) => return Ok(reply),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| {
                redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::NotConnected))
            }))
        };
        let reply = match tokio::time::timeout(CALL_BUDGET, ask).await {
            Ok(reply) => reply?,
            Err(_) => return Err(StoreError::Timeout(CALL_BUDGET)),
        };
        let text = String::from_redis_value(reply)?;
        Ok(Some(slots_down(&text)))
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

/// The slots of a Redis Cluster that no live master serves, as `(first, last)` ranges,
/// from `CLUSTER NODES` (a master flagged `fail` or `fail?` serves none).
pub(crate) fn slots_down(nodes: &str) -> Vec<(u16, u16)> {
    let mut served = vec![false; usize::from(CLUSTER_SLOTS)];
    for line in nodes.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(flags) = fields.get(2) else { continue };
        let flags: Vec<&str> = flags.split(',').collect();
        if !flags.contains(&"master") || flags.iter().any(|f| *f == "fail" || *f == "fail?") {
            continue;
        }
        // Fields 8.. are slots: `N`, `A-B`, or `[N->-id]` / `[N-<-id]` (migrating).
        for slot in fields.iter().skip(8).filter(|s| !s.starts_with('[')) {
            let (a, b) = slot.split_once('-').unwrap_or((slot, slot));
            if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                for s in a..=b.min(CLUSTER_SLOTS - 1) {
                    served[usize::from(s)] = true;
                }
            }
        }
    }
    let mut down = Vec::new();
    let mut start = None;
    for (slot, ok) in (0..CLUSTER_SLOTS).zip(served.iter().copied()) {
        match (ok, start) {
            (false, None) => start = Some(slot),
            (true, Some(a)) => {
                down.push((a, slot - 1));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(a) = start {
        down.push((a, CLUSTER_SLOTS - 1));
    }
    down
}

/// The number of hash slots of a Redis Cluster.
pub const CLUSTER_SLOTS: u16 = 16384;

#[cfg(test)]
mod tests {
    use super::slots_down;

    #[test]
    fn slots_of_failed_masters_are_down() {
        let nodes = "\
a 127.0.0.1:1@2 myself,master - 0 0 1 connected 0-5460
b 127.0.0.1:3@4 master,fail - 0 0 2 disconnected 5461-10922
c 127.0.0.1:5@6 master - 0 0 3 connected 10923-16383 [16000->-a]
d 127.0.0.1:7@8 slave a 0 0 1 connected
";
        assert_eq!(slots_down(nodes), vec![(5461, 10922)]);
        let healed = nodes.replace("master,fail", "master");
        assert!(slots_down(&healed).is_empty());
        assert_eq!(slots_down(""), vec![(0, 16383)]);
        let pfail = nodes.replace("myself,master", "master,fail?");
        assert_eq!(slots_down(&pfail), vec![(0, 10922)]);
    }
}
