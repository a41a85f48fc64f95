//! Trusted browsers on Redis: `browser_trust`, and a plain `ZSCORE` to ask.

use uuid::Uuid;

use super::{RedisStore, Resend};
use crate::store::error::StoreResult;
use crate::store::trusted_browsers::TrustedBrowsers;

/// The contract is on `TrustedBrowsers`.
impl TrustedBrowsers for RedisStore {
    async fn trust_browser(
        &self,
        user_id: &Uuid,
        nonce: &str,
        max_browsers: u32,
        ttl_ms: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut inv = self.scripts.browser_trust.prepare_invoke();
        inv.key(self.keys.trusted_browsers(user_id))
            .arg(nonce)
            .arg(now_ms)
            .arg(ttl_ms)
            .arg(max_browsers);
        // The same arguments leave the same set: safe to send again.
        let _: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok(())
    }

    async fn browser_trusted(&self, user_id: &Uuid, nonce: &str, now_ms: i64) -> StoreResult<bool> {
        let mut cmd = redis::cmd("ZSCORE");
        cmd.arg(self.keys.trusted_browsers(user_id)).arg(nonce);
        let until: Option<f64> = self.query(&cmd, Resend::Idempotent).await?;
        Ok(until.is_some_and(|t| t > now_ms as f64))
    }
}
