//! Ceremonies in memory: `SET … PX` and `GETDEL` as one critical section each.

use super::MemoryStore;
use crate::store::ceremonies::Ceremonies;
use crate::store::error::StoreResult;

/// The contract is on `Ceremonies`.
impl Ceremonies for MemoryStore {
    async fn put_ceremony(&self, cid: &str, state: &str, ttl_ms: i64, now: i64) -> StoreResult<()> {
        let mut st = self.lock()?;
        st.sweep(now);
        st.ceremonies
            .insert(self.keys.ceremony(cid), (state.to_string(), now + ttl_ms));
        Ok(())
    }

    async fn take_ceremony(&self, cid: &str, now: i64) -> StoreResult<Option<String>> {
        let mut st = self.lock()?;
        Ok(st
            .ceremonies
            .remove(&self.keys.ceremony(cid))
            .filter(|(_, exp)| *exp > now)
            .map(|(state, _)| state))
    }
}
