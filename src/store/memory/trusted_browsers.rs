//! Trusted browsers in memory: `browser_trust.lua` as one critical section.

use uuid::Uuid;

use super::MemoryStore;
use crate::store::error::StoreResult;
use crate::store::trusted_browsers::TrustedBrowsers;

/// The contract is on `TrustedBrowsers`.
impl TrustedBrowsers for MemoryStore {
    async fn trust_browser(
        &self,
        user_id: &Uuid,
        nonce: &str,
        max_browsers: u32,
        ttl_ms: i64,
        now: i64,
    ) -> StoreResult<()> {
        let key = self.keys.trusted_browsers(user_id);
        let mut st = self.lock()?;
        st.sweep(now);
        let set = st.browsers.entry(key).or_default();
        set.insert(nonce.to_string(), now + ttl_ms);
        set.retain(|_, until| *until > now);
        let mut by_age: Vec<(i64, String)> = set.iter().map(|(n, t)| (*t, n.clone())).collect();
        by_age.sort();
        let excess = by_age.len().saturating_sub(max_browsers as usize);
        for (_, nonce) in by_age.into_iter().take(excess) {
            set.remove(&nonce);
        }
        Ok(())
    }

    async fn browser_trusted(&self, user_id: &Uuid, nonce: &str, now: i64) -> StoreResult<bool> {
        let st = self.lock()?;
        Ok(st
            .browsers
            .get(&self.keys.trusted_browsers(user_id))
            .and_then(|set| set.get(nonce))
            .is_some_and(|until| *until > now))
    }
}
