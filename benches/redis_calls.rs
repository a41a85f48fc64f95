//! How the store should talk to Redis: `session_touch` calls per second from 64
//! concurrent tasks (a server's requests in flight) on a two-worker Tokio runtime (the
//! server's), through each way of holding connections:
//!
//! - a deadpool-redis pool (16 and 64 connections): each call checks one connection out;
//! - one `MultiplexedConnection`, cloned per call: concurrent calls are pipelined;
//! - 1, 2 or 4 `ConnectionManager`s (a multiplexed connection that reconnects by
//!   itself), picked round-robin.
//!
//! Run by `scripts/bench` (`cargo bench --bench redis_calls`); prints one line per
//! option and asserts nothing. The store's choice (ARCHITECTURE.md) rests on it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey::store::{
    Amr, KeyNames, NewSession, RedisStore, SessionCaps, SessionKind, Sessions, Store,
    SEEN_REFRESH_MS,
};
use latchkey::support::clock::now_ms;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use uuid::Uuid;

/// The default caps (`max_sessions_per_user`, `app_sessions_per_client`).
const CAPS: SessionCaps = SessionCaps {
    per_user: 50,
    per_app: 10,
};

const TASKS: usize = 64;

/// The touch script as the store sends it (`slide.lua` in front).
fn touch_script() -> Script {
    Script::new(concat!(
        include_str!("../src/store/redis/lua/slide.lua"),
        include_str!("../src/store/redis/lua/list.lua"),
        include_str!("../src/store/redis/lua/session_touch.lua")
    ))
}

/// One live session to touch, and the script's keys and arguments for it.
struct Target {
    keys: Vec<String>,
    args: Vec<String>,
}

async fn target(url: &str, prefix: &str) -> Target {
    let keys = KeyNames::new(prefix);
    let store = Store::Redis(RedisStore::connect(url, keys.clone()).expect("redis url"));
    let user = Uuid::now_v7();
    let secret = latchkey::support::crypto::random_token();
    let session = NewSession {
        user_id: user,
        email: "bench@example.com".into(),
        sid: latchkey::services::sessions::sid_for(&secret),
        kind: SessionKind::Api,
        label: "bench".into(),
        mobile: false,
        ip: "127.0.0.1".into(),
        refresh_hash: Some(latchkey::support::crypto::sha256_hex(b"x")),
        client_id: None,
        amr: Amr::Password,
        idle_ms: 3_600_000,
        absolute_expiry_ms: now_ms() + 3_600_000,
    };
    store
        .create_session(&session, CAPS, 0, now_ms())
        .await
        .expect("create a session");
    let session_key = keys.session(&user, &session.sid);
    Target {
        keys: vec![session_key.clone(), keys.user(&user), session_key],
        args: vec![
            session.sid.clone(),
            now_ms().to_string(),
            SEEN_REFRESH_MS.to_string(),
            "0".into(),
            "0".into(),
        ],
    }
}

/// Something that hands out a connection for one call.
trait Source: Send + Sync + 'static {
    fn call(
        &self,
        script: &Script,
        target: &Target,
    ) -> impl std::future::Future<Output = redis::RedisResult<()>> + Send;
}

async fn invoke<C: ConnectionLike>(
    conn: &mut C,
    script: &Script,
    target: &Target,
) -> redis::RedisResult<()> {
    let mut inv = script.prepare_invoke();
    for k in &target.keys {
        inv.key(k);
    }
    for a in &target.args {
        inv.arg(a);
    }
    let reply: redis::Value = inv.invoke_async(conn).await?;
    match reply {
        redis::Value::Array(_) => Ok(()),
        other => panic!("the session was not live: {other:?}"),
    }
}

struct Pool(deadpool_redis::Pool);

impl Source for Pool {
    async fn call(&self, script: &Script, target: &Target) -> redis::RedisResult<()> {
        let mut conn = self
            .0
            .get()
            .await
            .map_err(|e| redis::RedisError::from(std::io::Error::other(e.to_string())))?;
        invoke(&mut *conn, script, target).await
    }
}

struct Multiplexed(redis::aio::MultiplexedConnection);

impl Source for Multiplexed {
    async fn call(&self, script: &Script, target: &Target) -> redis::RedisResult<()> {
        invoke(&mut self.0.clone(), script, target).await
    }
}

struct Managers(Vec<ConnectionManager>, AtomicUsize);

impl Source for Managers {
    async fn call(&self, script: &Script, target: &Target) -> redis::RedisResult<()> {
        let i = self.1.fetch_add(1, Ordering::Relaxed) % self.0.len();
        invoke(&mut self.0[i].clone(), script, target).await
    }
}

/// Calls per second over `run`, from `TASKS` tasks.
async fn measure<S: Source>(source: S, target: Arc<Target>, run: Duration) -> f64 {
    let source = Arc::new(source);
    let script = Arc::new(touch_script());
    // Warm up: loads the script, opens the connections.
    for _ in 0..TASKS {
        source.call(&script, &target).await.expect("warm-up call");
    }
    let calls = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (source, script, target) = (source.clone(), script.clone(), target.clone());
            let (calls, stop) = (calls.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    source.call(&script, &target).await.expect("call");
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(run).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("task");
    }
    calls.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn managers(url: &str, n: usize) -> Managers {
    let client = redis::Client::open(url).expect("redis url");
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(800)))
        .set_response_timeout(Some(Duration::from_millis(800)));
    let mut all = Vec::new();
    for _ in 0..n {
        let m = ConnectionManager::new_with_config(client.clone(), config.clone())
            .await
            .expect("connect");
        all.push(m);
    }
    Managers(all, AtomicUsize::new(0))
}

fn pool(url: &str, size: usize) -> Pool {
    let mut cfg = deadpool_redis::Config::from_url(url);
    cfg.pool = Some(deadpool_redis::PoolConfig::new(size));
    Pool(
        cfg.create_pool(Some(deadpool_redis::Runtime::Tokio1))
            .expect("pool"),
    )
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("redis_calls: run by scripts/bench (cargo bench --bench redis_calls)");
        return;
    }
    let url = std::env::var("LATCHKEY_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let secs: u64 = std::env::var("CALL_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let run = Duration::from_secs(secs);
    // The server's runtime: one worker per core (two here).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        )
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let prefix = format!("benchcalls-{}", Uuid::now_v7().simple());
        let target = Arc::new(target(&url, &prefix).await);
        let client = redis::Client::open(url.as_str()).expect("redis url");
        for size in [16, 64] {
            let rate = measure(pool(&url, size), target.clone(), run).await;
            println!("deadpool_{size} {rate:.0}");
        }
        let one = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let rate = measure(Multiplexed(one), target.clone(), run).await;
        println!("multiplexed_1 {rate:.0}");
        for n in [1, 2, 4] {
            let rate = measure(managers(&url, n).await, target.clone(), run).await;
            println!("managers_{n} {rate:.0}");
        }
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<i64> =
                redis::cmd("UNLINK").arg(keys).query_async(&mut conn).await;
        }
    });
}
