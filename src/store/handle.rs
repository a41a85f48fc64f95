//! `Store`: the handle the app manages, over one of two backends that behave the same.
//!
//! # The contract (both backends, every aggregate)
//!
//! - Times come from the caller (`now_ms`, unix milliseconds), so both backends agree
//!   on what has expired. Redis also keeps its own TTLs, set from the same numbers.
//! - Every operation is one atomic step: concurrent calls never see half of one (one
//!   Lua script on Redis, one critical section in memory).
//! - A user's keys are built from the user id the caller passes, never from input
//!   alone: another user's id or session id names nothing.
//! - `Err` means the store did not answer (503 for a request); nothing was changed
//!   that the caller could see half of.
//!
//! The operations are the aggregates' traits (`Sessions`, `Tokens`, …), which `Store`
//! implements by dispatching to its backend (`aggregate!`); callers bring the trait
//! they use into scope.

use std::time::Instant;

use super::error::StoreResult;
use super::key_names::KeyNames;
use super::memory::MemoryStore;
use super::redis::RedisStore;
use crate::support::metrics::StoreMetrics;

/// The store handle the app manages. Cheap to clone.
#[derive(Clone)]
pub enum Store {
    Redis(RedisStore),
    Memory(MemoryStore),
}

impl Store {
    /// The metrics this store records into (`None` until `observed_by`).
    fn metrics(&self) -> Option<&StoreMetrics> {
        match self {
            Store::Redis(s) => s.metrics(),
            Store::Memory(s) => s.metrics(),
        }
    }

    /// Records call latency and sessions started and ended into `metrics`.
    pub fn observed_by(mut self, metrics: StoreMetrics) -> Store {
        match &mut self {
            Store::Redis(s) => s.set_metrics(metrics),
            Store::Memory(s) => s.set_metrics(metrics),
        }
        self
    }

    /// A call that began at `started` has answered: its time goes into the store
    /// latency histogram.
    pub(super) fn observe_call(&self, started: Instant) {
        if let Some(m) = self.metrics() {
            m.call_seconds.observe(started.elapsed().as_secs_f64());
        }
    }

    pub(super) fn count_started(&self) {
        if let Some(m) = self.metrics() {
            m.sessions_started.inc();
        }
    }

    pub(super) fn count_ended(&self, n: u64) {
        if let (Some(m), true) = (self.metrics(), n > 0) {
            m.sessions_ended.inc_by(n);
        }
    }

    /// The key builder under this store's prefix.
    pub fn key_names(&self) -> &KeyNames {
        match self {
            Store::Redis(s) => s.key_names(),
            Store::Memory(s) => s.key_names(),
        }
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

    /// What `/health/ready` asks: can this store serve? A single Redis or the embedded
    /// store: it answers. A Redis Cluster: most slots have a live master; the ranges
    /// that do not are returned (empty when all are served).
    pub async fn readiness(&self) -> StoreResult<Vec<(u16, u16)>> {
        match self {
            Store::Redis(s) => match s.cluster_slots_down().await? {
                Some(down) => Ok(down),
                None => s.ping().await.map(|()| Vec::new()),
            },
            Store::Memory(s) => s.ping().await.map(|()| Vec::new()),
        }
    }

    /// Answers when the store can be used (for `/health` and the start).
    pub async fn ping(&self) -> StoreResult<()> {
        match self {
            Store::Redis(s) => s.ping().await,
            Store::Memory(s) => s.ping().await,
        }
    }
}
