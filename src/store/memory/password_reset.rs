//! Reset codes in memory: `reset_*.lua`, each as one critical section.

use uuid::Uuid;

use super::MemoryStore;
use crate::store::error::StoreResult;
use crate::store::password_reset::{PasswordResets, ResetCheck};

/// The contract is on `PasswordResets`.
impl PasswordResets for MemoryStore {
    async fn store_reset_code(
        &self,
        user_id: &Uuid,
        mac: &str,
        ttl_ms: i64,
        now: i64,
    ) -> StoreResult<()> {
        let mut st = self.lock()?;
        st.sweep(now);
        st.resets
            .insert(self.keys.reset(user_id), (mac.to_string(), 0, now + ttl_ms));
        Ok(())
    }

    async fn check_reset_code(
        &self,
        user_id: &Uuid,
        mac: &str,
        max_tries: u32,
        now: i64,
    ) -> StoreResult<ResetCheck> {
        use subtle::ConstantTimeEq;
        let key = self.keys.reset(user_id);
        let mut st = self.lock()?;
        let Some((stored, tries, exp)) = st.resets.get_mut(&key) else {
            return Ok(ResetCheck::Missing);
        };
        if *exp <= now {
            st.resets.remove(&key);
            return Ok(ResetCheck::Missing);
        }
        if bool::from(stored.as_bytes().ct_eq(mac.as_bytes())) {
            st.resets.remove(&key);
            return Ok(ResetCheck::Right);
        }
        *tries += 1;
        if *tries >= max_tries {
            st.resets.remove(&key);
            return Ok(ResetCheck::Burned);
        }
        Ok(ResetCheck::Wrong)
    }
}
