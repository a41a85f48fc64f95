//! Where state lives: Redis (or the embedded store) and the account database.

use secrecy::SecretString;

use super::reader::{bad, Reader, SettingError};

/// Where state lives: Redis (or the embedded store) and the account database.
#[derive(Debug, Clone)]
pub struct StorageSettings {
    /// `None`: Redis on 127.0.0.1:6379, or (debug) the embedded store when none answers.
    pub redis_url: Option<String>,
    /// `redis_cluster_nodes`: seed nodes of a Redis Cluster, used instead of `redis_url`.
    pub redis_cluster_nodes: Option<Vec<String>>,
    pub key_prefix: String,
    /// `sqlite://PATH` or `postgres://user:password@host/db`: a secret, since it may
    /// carry a password.
    pub database_url: SecretString,
}

impl StorageSettings {
    pub(super) fn read(r: &Reader) -> Result<Self, SettingError> {
        let database_url = r.text("database_url", "sqlite://var/latchkey.db")?;
        // Checked before it becomes a secret: the message never quotes it.
        let schemes = ["sqlite:", "postgres://", "postgresql://"];
        if !schemes.iter().any(|s| database_url.starts_with(s)) {
            return Err(bad(
                "database_url",
                "must be sqlite://PATH (for example sqlite://var/latchkey.db) \
                 or postgres://user:password@host:port/database",
            ));
        }
        // Not implemented yet: refused by name rather than ignored, so that a server
        // configured for Sentinel never quietly uses the default Redis instead.
        for name in ["redis_sentinel_nodes", "redis_sentinel_master"] {
            if r.optional_text(name)?.is_some() {
                return Err(bad(
                    name,
                    "Redis Sentinel is not supported yet: use redis_url (one Redis, with \
                     AOF) or redis_cluster_nodes (a Redis Cluster with replicas)",
                ));
            }
        }
        let s = StorageSettings {
            redis_url: r.optional_text("redis_url")?,
            redis_cluster_nodes: r.optional_text("redis_cluster_nodes")?.map(|list| {
                list.split(',')
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect()
            }),
            key_prefix: r.text("key_prefix", "lk")?,
            database_url: database_url.into(),
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), SettingError> {
        if let Some(url) = &self.redis_url {
            let schemes = ["redis://", "rediss://", "redis+unix://", "unix://"];
            if url != "memory" && !schemes.iter().any(|s| url.starts_with(s)) {
                return Err(bad(
                    "redis_url",
                    format!("must be redis://host:port/db, rediss://… or memory, got {url:?}"),
                ));
            }
        }
        if let Some(nodes) = &self.redis_cluster_nodes {
            let ok = |n: &String| n.starts_with("redis://") || n.starts_with("rediss://");
            if nodes.is_empty() || !nodes.iter().all(ok) {
                return Err(bad(
                    "redis_cluster_nodes",
                    "must be comma-separated redis://host:port seed nodes",
                ));
            }
        }
        let prefix = &self.key_prefix;
        if prefix.is_empty() || prefix.len() > 64 || prefix.contains(['{', '}', ' ']) {
            return Err(bad(
                "key_prefix",
                "must be 1 to 64 characters without spaces or braces",
            ));
        }
        Ok(())
    }
}
