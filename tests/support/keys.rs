//! The test Redis (and Cluster) the apps run on: its keys read directly, as the checks
//! that look behind the app do (TTLs, counts, what is left behind), and the three stores
//! the behaviour suite holds to one contract (single Redis, Cluster, embedded).

use super::{quota_key, KeyNames, MemoryStore, RedisStore, Store, TestApp};

pub fn redis_url() -> String {
    std::env::var("LATCHKEY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The seed nodes of the test Redis Cluster that scripts/test starts (7101-7103).
pub fn redis_cluster_nodes() -> String {
    std::env::var("LATCHKEY_TEST_REDIS_CLUSTER").unwrap_or_else(|_| {
        "redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103".into()
    })
}

pub async fn redis_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection")
}

/// Every key under the test's prefix.
pub async fn keys_under(prefix: &str) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut redis_conn().await)
        .await
        .expect("KEYS")
}

/// A key's PTTL on the test Redis (ms; negative when it has none or is gone).
pub async fn pttl(key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut redis_conn().await)
        .await
        .expect("PTTL")
}

/// A store on the single test Redis, its keys under `prefix`.
pub fn redis_store(prefix: &str) -> Store {
    Store::Redis(RedisStore::connect(&redis_url(), KeyNames::new(prefix)).expect("redis"))
}

/// A store on the test Redis Cluster, its keys under `prefix`.
pub async fn cluster_store(prefix: &str) -> Store {
    let nodes: Vec<String> = redis_cluster_nodes()
        .split(',')
        .map(str::to_string)
        .collect();
    Store::Redis(
        RedisStore::connect_cluster(&nodes, KeyNames::new(prefix))
            .await
            .expect("the test Redis Cluster (scripts/test starts it on 7101-7103)"),
    )
}

/// The embedded store, its keys under `prefix`.
pub fn memory_store(prefix: &str) -> Store {
    Store::Memory(MemoryStore::new(KeyNames::new(prefix)))
}

impl TestApp {
    /// How many attempts the quota `scope` of `subject` holds in this app's Redis.
    pub fn quota_count(&self, scope: &str, subject: &str) -> usize {
        let key = quota_key(&self.key_names(), scope, subject);
        let mut conn = redis::Client::open(self.redis_url.as_str())
            .and_then(|c| c.get_connection())
            .expect("a Redis connection");
        redis::cmd("ZCARD")
            .arg(key)
            .query(&mut conn)
            .expect("ZCARD")
    }
}
