//! Rate limits on Redis: `rate_acquire` over every quota at once on a single Redis,
//! one quota at a time on a Redis Cluster.

use std::time::Duration;

use super::{RedisStore, Resend};
use crate::store::error::StoreResult;
use crate::store::rate_limits::{RateDecision, RateKey, RateLimits};

impl RedisStore {
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

/// The contract is on `RateLimits`.
impl RateLimits for RedisStore {
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
}
