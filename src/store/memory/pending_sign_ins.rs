//! Pending sign-ins in memory: `pending_*.lua`, each as one critical section.

use std::collections::HashMap;

use uuid::Uuid;

use super::MemoryStore;
use crate::store::error::StoreResult;
use crate::store::pending_sign_ins::pending_field::WRONG;
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
        let fields = pending
            .fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let mut st = self.lock()?;
        st.sweep(now);
        st.pending.insert(
            self.keys.pending(user_id, pid),
            (fields, pending.expires_ms),
        );
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
            .and_then(|(f, _)| read(f, now)))
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
        let Some((fields, exp)) = st.pending.get_mut(&key) else {
            return Ok(PendingFailure::Missing);
        };
        let Some(mut pending) = read(fields, now).filter(|_| *exp > now) else {
            st.pending.remove(&key);
            return Ok(PendingFailure::Missing);
        };
        pending.wrong += 1;
        fields.insert(WRONG.into(), pending.wrong.to_string());
        match max_wrong.checked_sub(pending.wrong) {
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
            .and_then(|(f, _)| read(&f, now)))
    }
}

/// The pending sign-in a hash's fields hold, while it lives.
fn read(fields: &HashMap<String, String>, now: i64) -> Option<PendingSignIn> {
    PendingSignIn::read(|k| fields.get(k).map(String::as_str), now)
}
