//! Reset codes on Redis: `reset_store` and `reset_check`.

use uuid::Uuid;

use super::{RedisStore, Resend};
use crate::store::error::StoreResult;
use crate::store::password_reset::{PasswordResets, ResetCheck};

/// The contract is on `PasswordResets`.
impl PasswordResets for RedisStore {
    async fn store_reset_code(
        &self,
        user_id: &Uuid,
        mac: &str,
        ttl_ms: i64,
        _now: i64,
    ) -> StoreResult<()> {
        let mut inv = self.scripts.reset_store.prepare_invoke();
        inv.key(self.keys.reset(user_id)).arg(mac).arg(ttl_ms);
        let _: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok(())
    }

    async fn check_reset_code(
        &self,
        user_id: &Uuid,
        mac: &str,
        max_tries: u32,
        _now: i64,
    ) -> StoreResult<ResetCheck> {
        let mut inv = self.scripts.reset_check.prepare_invoke();
        inv.key(self.keys.reset(user_id)).arg(mac).arg(max_tries);
        let n: i64 = self.run(&inv, Resend::IfNotSent).await?;
        Ok(match n {
            1 => ResetCheck::Right,
            0 => ResetCheck::Wrong,
            -2 => ResetCheck::Burned,
            _ => ResetCheck::Missing,
        })
    }
}
