//! The Redis backend: a deadpool of multiplexed connections and one Lua script per
//! operation. Checking out a connection costs no round trip (no PING on recycle); a
//! connection that fails is dropped from the pool, so service resumes by itself when
//! Redis comes back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, Pool, PoolConfig, RecycleResult, Timeouts};
use deadpool_redis::redis::{
    self, aio::MultiplexedConnection, AsyncConnectionConfig, Script, Value,
};
use uuid::Uuid;

use super::{
    Backend, CodeCheck, ConnectError, Created, Keys, LiveSession, NewSession, RateDecision,
    RateKey, Rotated, SessionKind, SessionRecord, StoreError, StoreResult, PASSWORD_VERSION_TTL_MS,
    REFRESH_HISTORY, SEEN_REFRESH_MS,
};

/// How long one command may take before the request answers 503.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(800);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(800);

pub struct Manager {
    client: redis::Client,
    config: AsyncConnectionConfig,
}

impl managed::Manager for Manager {
    type Type = MultiplexedConnection;
    type Error = redis::RedisError;

    async fn create(&self) -> Result<MultiplexedConnection, redis::RedisError> {
        self.client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
    }

    async fn recycle(
        &self,
        _: &mut MultiplexedConnection,
        _: &Metrics,
    ) -> RecycleResult<redis::RedisError> {
        // Broken connections are taken out of the pool when a command fails on them.
        Ok(())
    }
}

struct Scripts {
    create: Script,
    touch: Script,
    list: Script,
    revoke: Script,
    revoke_all: Script,
    rotate: Script,
    api_logout: Script,
    rate_acquire: Script,
    reset_store: Script,
    reset_check: Script,
    device_trust: Script,
}

#[derive(Clone)]
pub struct RedisStore {
    pool: Pool<Manager>,
    keys: Keys,
    scripts: Arc<Scripts>,
}

/// A script with the shared `slide` function (`slide.lua`) in front of it.
macro_rules! sliding_script {
    ($file:literal) => {
        Script::new(concat!(include_str!("slide.lua"), include_str!($file)))
    };
}

/// A reply of a shape the script never sends.
fn unexpected(script: &'static str, reply: impl std::fmt::Debug) -> StoreError {
    StoreError::Reply {
        script,
        reply: format!("{reply:?}"),
    }
}

impl RedisStore {
    pub fn connect(url: &str, keys: Keys) -> Result<Self, ConnectError> {
        let client = redis::Client::open(url).map_err(ConnectError::Url)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let mut pool_config = PoolConfig::new(16);
        pool_config.timeouts = Timeouts {
            wait: Some(Duration::from_secs(1)),
            create: Some(CONNECT_TIMEOUT),
            recycle: Some(Duration::from_millis(100)),
        };
        let pool = Pool::builder(Manager { client, config })
            .config(pool_config)
            .runtime(deadpool::Runtime::Tokio1)
            .build()?;
        Ok(RedisStore {
            pool,
            keys,
            scripts: Arc::new(Scripts {
                create: sliding_script!("session_create.lua"),
                touch: sliding_script!("session_touch.lua"),
                list: Script::new(include_str!("session_list.lua")),
                revoke: Script::new(include_str!("session_revoke.lua")),
                revoke_all: Script::new(include_str!("session_revoke_all.lua")),
                rotate: sliding_script!("refresh_rotate.lua"),
                api_logout: Script::new(include_str!("api_logout.lua")),
                rate_acquire: Script::new(include_str!("rate_acquire.lua")),
                reset_store: Script::new(include_str!("reset_store.lua")),
                reset_check: Script::new(include_str!("reset_check.lua")),
                device_trust: Script::new(include_str!("device_trust.lua")),
            }),
        })
    }

    /// Runs one script invocation; a connection that fails is dropped from the pool.
    async fn run<T: redis::FromRedisValue>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
    ) -> StoreResult<T> {
        let mut conn = self.pool.get().await?;
        match inv.invoke_async(&mut *conn).await {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_timeout()
                    || e.is_unrecoverable_error()
                {
                    let _ = Object::take(conn);
                }
                Err(e.into())
            }
        }
    }
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
            pool: self.pool.clone(),
            keys: Keys::new(prefix),
            scripts: self.scripts.clone(),
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.pool.get().await?;
        let r: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut *conn).await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = Object::take(conn);
                Err(e.into())
            }
        }
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
            .key(self.keys.index(uid))
            .key(self.keys.password_version(uid))
            .arg(&new.sid)
            .arg(now_ms)
            .arg(new.expiry(now_ms))
            .arg(max_sessions)
            .arg(password_version)
            .arg(self.keys.session_prefix(uid));
        for (k, v) in new.fields(now_ms) {
            inv.arg(k).arg(v);
        }
        let v: Value = self.run(&inv).await?;
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
        let session_key = self.keys.session(user_id, sid);
        let jti_key = match revoked_jti {
            Some(j) => self.keys.revoked_jti(user_id, j),
            None => session_key.clone(),
        };
        let mut inv = self.scripts.touch.prepare_invoke();
        inv.key(session_key)
            .key(self.keys.index(user_id))
            .key(jti_key)
            .arg(sid)
            .arg(now_ms)
            .arg(SEEN_REFRESH_MS)
            .arg(if revoked_jti.is_some() { "1" } else { "0" });
        let reply: Option<Vec<String>> = self.run(&inv).await?;
        Ok(reply.and_then(|r| match r.as_slice() {
            [uid, kind, csrf] => Some(LiveSession {
                user_id: uid.clone(),
                kind: SessionKind::parse(kind)?,
                csrf: csrf.clone(),
            }),
            _ => None,
        }))
    }

    async fn list_sessions(&self, user_id: &Uuid, now_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        let mut inv = self.scripts.list.prepare_invoke();
        inv.key(self.keys.index(user_id))
            .arg(now_ms)
            .arg(self.keys.session_prefix(user_id));
        let reply: Vec<Value> = self.run(&inv).await?;
        let mut out = Vec::new();
        let mut it = reply.into_iter();
        while let (Some(sid), Some(fields)) = (it.next(), it.next()) {
            let sid: String = redis::from_redis_value(sid)?;
            let fields: HashMap<String, String> = redis::from_redis_value(fields)?;
            if let Some(rec) = SessionRecord::from_fields(sid, &fields) {
                out.push(rec);
            }
        }
        Ok(out)
    }

    async fn revoke_session(&self, user_id: &Uuid, sid: &str, _now: i64) -> StoreResult<bool> {
        let mut inv = self.scripts.revoke.prepare_invoke();
        inv.key(self.keys.session(user_id, sid))
            .key(self.keys.index(user_id))
            .arg(sid);
        let n: i64 = self.run(&inv).await?;
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
        inv.key(self.keys.index(user_id))
            .key(self.keys.password_version(user_id))
            .key(self.keys.reset(user_id))
            .key(self.keys.devices(user_id))
            .arg(keep.unwrap_or(""))
            .arg(self.keys.session_prefix(user_id))
            .arg(password_version.map(|v| v.to_string()).unwrap_or_default())
            .arg(PASSWORD_VERSION_TTL_MS);
        let n: u32 = self.run(&inv).await?;
        Ok(n)
    }

    async fn rotate_refresh(
        &self,
        user_id: &Uuid,
        sid: &str,
        presented_hash: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> StoreResult<Rotated> {
        let mut inv = self.scripts.rotate.prepare_invoke();
        inv.key(self.keys.session(user_id, sid))
            .key(self.keys.index(user_id))
            .arg(sid)
            .arg(now_ms)
            .arg(presented_hash)
            .arg(new_hash)
            .arg(REFRESH_HISTORY);
        let v: Value = self.run(&inv).await?;
        Ok(match v {
            Value::Int(-1) => Rotated::Reused,
            Value::Array(items) => match items.as_slice() {
                [_, uid] => Rotated::Yes {
                    user_id: redis::from_redis_value(uid.clone())?,
                },
                _ => Rotated::Invalid,
            },
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
            .key(self.keys.index(user_id))
            .key(self.keys.revoked_jti(user_id, jti))
            .arg(sid)
            .arg(token_ttl_ms);
        let n: i64 = self.run(&inv).await?;
        Ok(n > 0)
    }

    async fn rate_acquire(
        &self,
        quotas: &[RateKey],
        member: &str,
        now_ms: i64,
    ) -> StoreResult<RateDecision> {
        let mut inv = self.scripts.rate_acquire.prepare_invoke();
        for q in quotas {
            inv.key(&q.key);
        }
        inv.arg(now_ms).arg(member);
        for q in quotas {
            inv.arg(q.limit).arg(q.window_ms);
        }
        let wait_ms: i64 = self.run(&inv).await?;
        Ok(if wait_ms <= 0 {
            RateDecision::Allowed
        } else {
            RateDecision::Limited {
                retry_after: Duration::from_millis(wait_ms as u64),
            }
        })
    }

    async fn rate_release(&self, quotas: &[RateKey], member: &str) -> StoreResult<()> {
        let mut conn = self.pool.get().await?;
        let mut pipe = redis::pipe();
        for q in quotas {
            pipe.cmd("ZREM").arg(&q.key).arg(member).ignore();
        }
        match pipe.query_async::<()>(&mut *conn).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = Object::take(conn);
                Err(e.into())
            }
        }
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
        let _: i64 = self.run(&inv).await?;
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
        let n: i64 = self.run(&inv).await?;
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
        let _: i64 = self.run(&inv).await?;
        Ok(())
    }

    async fn device_trusted(&self, user_id: &Uuid, nonce: &str, now_ms: i64) -> StoreResult<bool> {
        let mut conn = self.pool.get().await?;
        let until: redis::RedisResult<Option<f64>> = redis::cmd("ZSCORE")
            .arg(self.keys.devices(user_id))
            .arg(nonce)
            .query_async(&mut *conn)
            .await;
        match until {
            Ok(until) => Ok(until.is_some_and(|t| t > now_ms as f64)),
            Err(e) => {
                let _ = Object::take(conn);
                Err(e.into())
            }
        }
    }
}
