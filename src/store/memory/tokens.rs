//! Refresh and access tokens in memory: `refresh_*.lua` and `api_logout.lua`, each as
//! one critical section.

use uuid::Uuid;

use super::state::num;
use super::MemoryStore;
use crate::store::error::StoreResult;
use crate::store::sessions::field;
use crate::store::tokens::{Rotated, Rotation, Tokens, REFRESH_HISTORY};

/// The contract is on `Tokens`.
impl Tokens for MemoryStore {
    async fn rotate_refresh(
        &self,
        user_id: &Uuid,
        sid: &str,
        rotation: &Rotation<'_>,
        now: i64,
    ) -> StoreResult<Rotated> {
        let (skey, ukey) = (self.keys.session(user_id, sid), self.keys.user(user_id));
        let mut st = self.lock()?;
        let open = st.email(&ukey).is_some();
        let Some(f) = st.session(&skey, now) else {
            return Ok(Rotated::Invalid);
        };
        if !matches!(f.get(field::KIND).map(String::as_str), Some("a" | "o")) || !open {
            return Ok(Rotated::Invalid);
        }
        let (abs, idle) = (num(f, field::ABSOLUTE), num(f, field::IDLE));
        if now >= abs {
            st.end_session(&skey, &ukey, sid);
            return Ok(Rotated::Invalid);
        }
        let presented = rotation.presented_hash;
        let current = f.get(field::REFRESH).cloned().unwrap_or_default();
        let earlier: Vec<String> = (1..=REFRESH_HISTORY)
            .filter_map(|j| f.get(&format!("p{j}")).cloned())
            .collect();
        let expiry = (now + idle).min(abs);
        if current == presented {
            let history = std::iter::once(current).chain(earlier);
            for (j, h) in history.take(REFRESH_HISTORY).enumerate() {
                f.insert(format!("p{}", j + 1), h);
            }
            f.insert(field::REFRESH.into(), rotation.successor_hash.to_string());
            f.insert(field::ROTATED.into(), now.to_string());
            f.insert(field::SEEN.into(), now.to_string());
            st.slide(&skey, &ukey, sid, expiry);
            return Ok(Rotated::Yes);
        }
        let rotated_at = f.get(field::ROTATED).and_then(|v| v.parse::<i64>().ok());
        let in_window = rotated_at.is_some_and(|at| now - at < rotation.grace_ms);
        if in_window && earlier.first().map(String::as_str) == Some(presented) {
            if current != rotation.successor_hash {
                // Not the successor this secret derives (the key changed): refused,
                // but no sign of theft.
                return Ok(Rotated::Invalid);
            }
            f.insert(field::SEEN.into(), now.to_string());
            st.slide(&skey, &ukey, sid, expiry);
            return Ok(Rotated::Again);
        }
        if earlier.iter().any(|h| h == presented) {
            st.end_session(&skey, &ukey, sid);
            return Ok(Rotated::Reused);
        }
        Ok(Rotated::Invalid)
    }

    async fn api_logout(
        &self,
        user_id: &Uuid,
        sid: &str,
        jti: &str,
        token_ttl_ms: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let (skey, ukey) = (self.keys.session(user_id, sid), self.keys.user(user_id));
        let mut st = self.lock()?;
        st.sweep(now);
        if token_ttl_ms > 0 {
            st.strings
                .insert(self.keys.revoked_jti(user_id, jti), (1, now + token_ttl_ms));
        }
        let existed = st.session(&skey, now).is_some();
        st.end_session(&skey, &ukey, sid);
        Ok(existed)
    }

    async fn revoke_access(
        &self,
        user_id: &Uuid,
        jti: &str,
        token_ttl_ms: i64,
        now: i64,
    ) -> StoreResult<()> {
        if token_ttl_ms <= 0 {
            return Ok(());
        }
        let mut st = self.lock()?;
        st.sweep(now);
        st.strings
            .insert(self.keys.revoked_jti(user_id, jti), (1, now + token_ttl_ms));
        Ok(())
    }

    async fn revoke_refresh(
        &self,
        user_id: &Uuid,
        sid: &str,
        presented_hash: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let (skey, ukey) = (self.keys.session(user_id, sid), self.keys.user(user_id));
        let mut st = self.lock()?;
        let Some(f) = st.session(&skey, now) else {
            return Ok(false);
        };
        let known = std::iter::once(field::REFRESH.to_string())
            .chain((1..=REFRESH_HISTORY).map(|j| format!("p{j}")))
            .any(|name| f.get(&name).map(String::as_str) == Some(presented_hash));
        if known {
            st.end_session(&skey, &ukey, sid);
        }
        Ok(known)
    }

    async fn refresh_status(
        &self,
        user_id: &Uuid,
        sid: &str,
        presented_hash: &str,
        now: i64,
    ) -> StoreResult<Option<i64>> {
        let (skey, ukey) = (self.keys.session(user_id, sid), self.keys.user(user_id));
        let mut st = self.lock()?;
        let open = st.email(&ukey).is_some();
        let Some(f) = st.session(&skey, now) else {
            return Ok(None);
        };
        let refreshes = matches!(f.get(field::KIND).map(String::as_str), Some("a" | "o"));
        let current = f.get(field::REFRESH).map(String::as_str) == Some(presented_hash);
        if !(open && refreshes && current) || now >= num(f, field::ABSOLUTE) {
            return Ok(None);
        }
        let issued = f.get(field::ROTATED).or_else(|| f.get(field::CREATED));
        Ok(issued.and_then(|v| v.parse().ok()))
    }
}
