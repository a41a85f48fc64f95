//! Address changes in memory: `email_change_*.lua` and `email_undo_*.lua`, each as one
//! critical section.

use uuid::Uuid;

use super::MemoryStore;
use crate::store::email_changes::{EmailChangeCheck, EmailChanges};
use crate::store::error::StoreResult;

/// The contract is on `EmailChanges`.
impl EmailChanges for MemoryStore {
    async fn start_email_change(
        &self,
        user_id: &Uuid,
        new_email: &str,
        mac: &str,
        ttl_ms: i64,
        now: i64,
    ) -> StoreResult<()> {
        let mut st = self.lock()?;
        st.sweep(now);
        st.email_changes.insert(
            self.keys.email_change(user_id),
            (new_email.to_string(), mac.to_string(), 0, now + ttl_ms),
        );
        Ok(())
    }

    async fn pending_email_change(&self, user_id: &Uuid, now: i64) -> StoreResult<Option<String>> {
        let st = self.lock()?;
        Ok(st
            .email_changes
            .get(&self.keys.email_change(user_id))
            .filter(|(_, _, _, exp)| *exp > now)
            .map(|(to, _, _, _)| to.clone()))
    }

    async fn confirm_email_change(
        &self,
        user_id: &Uuid,
        mac: &str,
        max_tries: u32,
        now: i64,
    ) -> StoreResult<EmailChangeCheck> {
        use subtle::ConstantTimeEq;
        let key = self.keys.email_change(user_id);
        let mut st = self.lock()?;
        let Some((to, stored, tries, exp)) = st.email_changes.get_mut(&key) else {
            return Ok(EmailChangeCheck::Missing);
        };
        if *exp <= now {
            st.email_changes.remove(&key);
            return Ok(EmailChangeCheck::Missing);
        }
        if bool::from(stored.as_bytes().ct_eq(mac.as_bytes())) {
            let to = to.clone();
            st.email_changes.remove(&key);
            return Ok(EmailChangeCheck::Right(to));
        }
        *tries += 1;
        if *tries >= max_tries {
            st.email_changes.remove(&key);
            return Ok(EmailChangeCheck::Burned);
        }
        Ok(EmailChangeCheck::Wrong)
    }

    async fn keep_email_undo(
        &self,
        user_id: &Uuid,
        token_hash: &str,
        old_email: &str,
        ttl_ms: i64,
        now: i64,
    ) -> StoreResult<()> {
        let mut st = self.lock()?;
        st.sweep(now);
        st.email_undos
            .entry(self.keys.email_undo(user_id))
            .or_default()
            .insert(
                token_hash.to_string(),
                (old_email.to_string(), now + ttl_ms),
            );
        Ok(())
    }

    async fn take_email_undo(
        &self,
        user_id: &Uuid,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<String>> {
        let key = self.keys.email_undo(user_id);
        let mut st = self.lock()?;
        let Some(links) = st.email_undos.get_mut(&key) else {
            return Ok(None);
        };
        let found = links
            .get(token_hash)
            .map(|(email, exp)| (email.clone(), *exp));
        match found {
            None => Ok(None),
            Some((_, exp)) if exp <= now => {
                links.remove(token_hash);
                Ok(None)
            }
            Some((email, _)) => {
                st.email_undos.remove(&key);
                st.email_changes.remove(&self.keys.email_change(user_id));
                Ok(Some(email))
            }
        }
    }

    async fn forget_email_changes(&self, user_id: &Uuid) -> StoreResult<()> {
        let mut st = self.lock()?;
        st.email_changes.remove(&self.keys.email_change(user_id));
        st.email_undos.remove(&self.keys.email_undo(user_id));
        Ok(())
    }
}
