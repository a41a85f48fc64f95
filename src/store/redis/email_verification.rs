//! Address verifications on Redis: `verify_store`, `reset_check` (the same fields as a
//! reset code's) and `verify_link`.

use uuid::Uuid;

use super::{RedisStore, Resend};
use crate::store::email_verification::EmailVerifications;
use crate::store::error::StoreResult;
use crate::store::password_reset::ResetCheck;

/// The contract is on `EmailVerifications`.
impl EmailVerifications for RedisStore {
    async fn store_verification(
        &self,
        user_id: &Uuid,
        code_mac: &str,
        link_mac: &str,
        ttl_ms: i64,
        _now: i64,
    ) -> StoreResult<()> {
        let mut inv = self.scripts.verify_store.prepare_invoke();
        inv.key(self.keys.verification(user_id))
            .arg(code_mac)
            .arg(link_mac)
            .arg(ttl_ms);
        let _: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok(())
    }

    async fn check_verification_code(
        &self,
        user_id: &Uuid,
        code_mac: &str,
        max_tries: u32,
        _now: i64,
    ) -> StoreResult<ResetCheck> {
        let mut inv = self.scripts.reset_check.prepare_invoke();
        inv.key(self.keys.verification(user_id))
            .arg(code_mac)
            .arg(max_tries);
        let n: i64 = self.run(&inv, Resend::IfNotSent).await?;
        Ok(match n {
            1 => ResetCheck::Right,
            0 => ResetCheck::Wrong,
            -2 => ResetCheck::Burned,
            _ => ResetCheck::Missing,
        })
    }

    async fn take_verification_link(
        &self,
        user_id: &Uuid,
        link_mac: &str,
        _now: i64,
    ) -> StoreResult<bool> {
        let mut inv = self.scripts.verify_link.prepare_invoke();
        inv.key(self.keys.verification(user_id)).arg(link_mac);
        let n: i64 = self.run(&inv, Resend::IfNotSent).await?;
        Ok(n == 1)
    }

    async fn forget_verification(&self, user_id: &Uuid) -> StoreResult<()> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.keys.verification(user_id));
        let _: i64 = self.query(&cmd, Resend::Idempotent).await?;
        Ok(())
    }
}
