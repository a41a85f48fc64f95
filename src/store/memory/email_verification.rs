//! Address verifications in memory: `verify_store.lua`, `reset_check.lua` over the
//! verification and `verify_link.lua`, each as one critical section.

use uuid::Uuid;

use super::state::Verification;
use super::MemoryStore;
use crate::store::email_verification::EmailVerifications;
use crate::store::error::StoreResult;
use crate::store::password_reset::ResetCheck;

/// The contract is on `EmailVerifications`.
impl EmailVerifications for MemoryStore {
    async fn store_verification(
        &self,
        user_id: &Uuid,
        code_mac: &str,
        link_mac: &str,
        ttl_ms: i64,
        now: i64,
    ) -> StoreResult<()> {
        let mut st = self.lock()?;
        st.sweep(now);
        let v = Verification {
            code_mac: code_mac.to_string(),
            link_mac: link_mac.to_string(),
            tries: 0,
            expires: now + ttl_ms,
        };
        st.verifications.insert(self.keys.verification(user_id), v);
        Ok(())
    }

    async fn check_verification_code(
        &self,
        user_id: &Uuid,
        code_mac: &str,
        max_tries: u32,
        now: i64,
    ) -> StoreResult<ResetCheck> {
        use subtle::ConstantTimeEq;
        let key = self.keys.verification(user_id);
        let mut st = self.lock()?;
        let Some(v) = st.verifications.get_mut(&key) else {
            return Ok(ResetCheck::Missing);
        };
        if v.expires <= now {
            st.verifications.remove(&key);
            return Ok(ResetCheck::Missing);
        }
        if bool::from(v.code_mac.as_bytes().ct_eq(code_mac.as_bytes())) {
            st.verifications.remove(&key);
            return Ok(ResetCheck::Right);
        }
        v.tries += 1;
        if v.tries >= max_tries {
            st.verifications.remove(&key);
            return Ok(ResetCheck::Burned);
        }
        Ok(ResetCheck::Wrong)
    }

    async fn take_verification_link(
        &self,
        user_id: &Uuid,
        link_mac: &str,
        now: i64,
    ) -> StoreResult<bool> {
        use subtle::ConstantTimeEq;
        let key = self.keys.verification(user_id);
        let mut st = self.lock()?;
        let Some(v) = st.verifications.get(&key) else {
            return Ok(false);
        };
        if v.expires <= now {
            st.verifications.remove(&key);
            return Ok(false);
        }
        if bool::from(v.link_mac.as_bytes().ct_eq(link_mac.as_bytes())) {
            st.verifications.remove(&key);
            return Ok(true);
        }
        Ok(false)
    }

    async fn forget_verification(&self, user_id: &Uuid) -> StoreResult<()> {
        let mut st = self.lock()?;
        st.verifications.remove(&self.keys.verification(user_id));
        Ok(())
    }
}
