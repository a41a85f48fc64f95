//! Rate limits in memory: `rate_acquire.lua` as one critical section.

use std::time::Duration;

use super::MemoryStore;
use crate::store::error::StoreResult;
use crate::store::rate_limits::{RateDecision, RateKey, RateLimits};

/// The contract is on `RateLimits`.
impl RateLimits for MemoryStore {
    async fn rate_acquire(
        &self,
        quotas: &[RateKey],
        member: &str,
        now: i64,
    ) -> StoreResult<RateDecision> {
        let mut st = self.lock()?;
        st.sweep(now);
        let mut wait = 0;
        for q in quotas {
            let log = st.rates.entry(q.key.clone()).or_default();
            log.retain(|(t, _)| *t > now - q.window_ms);
            log.sort_by_key(|(t, _)| *t);
            if log.len() >= q.limit as usize {
                let oldest = log[log.len() - q.limit as usize].0;
                wait = wait.max(oldest + q.window_ms - now);
            }
        }
        if wait > 0 {
            return Ok(RateDecision::Limited {
                retry_after: Duration::from_millis(wait as u64),
            });
        }
        for q in quotas {
            st.rates
                .entry(q.key.clone())
                .or_default()
                .push((now, member.to_string()));
        }
        Ok(RateDecision::Allowed)
    }

    async fn rate_release(&self, quotas: &[RateKey], member: &str) -> StoreResult<()> {
        let mut st = self.lock()?;
        for q in quotas {
            if let Some(log) = st.rates.get_mut(&q.key) {
                log.retain(|(_, m)| m != member);
            }
        }
        Ok(())
    }
}
