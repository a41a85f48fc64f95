//! Pending sign-ins in memory: `pending_*.lua`, each as one critical section.

use uuid::Uuid;

use super::MemoryStore;
use crate::store::error::StoreResult;
use crate::store::pending_sign_ins::{PendingFailure, PendingSignIn, PendingSignIns};

/// The contract is on `PendingSignIns`.
impl PendingSignIns for MemoryStore {
    async fn start_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        pending: &PendingSignIn,
        now: i64,
    ) -> StoreResult<()> {
        let mut st = self.lock()?;
        st.sweep(now);
        st.pending
            .insert(self.keys.pending(user_id, pid), pending.clone());
        Ok(())
    }

    async fn read_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        now: i64,
    ) -> StoreResult<Option<PendingSignIn>> {
        let st = self.lock()?;
        Ok(st
            .pending
            .get(&self.keys.pending(user_id, pid))
            .filter(|p| p.expires_ms > now)
            .cloned())
    }

    async fn fail_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        max_wrong: u32,
        now: i64,
    ) -> StoreResult<PendingFailure> {
        let key = self.keys.pending(user_id, pid);
        let mut st = self.lock()?;
        let Some(p) = st.pending.get_mut(&key) else {
            return Ok(PendingFailure::Missing);
        };
        if p.expires_ms <= now {
            st.pending.remove(&key);
            return Ok(PendingFailure::Missing);
        }
        p.wrong += 1;
        match max_wrong.checked_sub(p.wrong) {
            Some(left) if left > 0 => Ok(PendingFailure::Counted { left }),
            _ => {
                st.pending.remove(&key);
                Ok(PendingFailure::Ended)
            }
        }
    }

    async fn take_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        now: i64,
    ) -> StoreResult<Option<PendingSignIn>> {
        let mut st = self.lock()?;
        Ok(st
            .pending
            .remove(&self.keys.pending(user_id, pid))
            .filter(|p| p.expires_ms > now))
    }
}
