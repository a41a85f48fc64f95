//! Ceremonies on Redis: `SET … PX` and `GETDEL` (one key, one command each). The value
//! starts with its expiry (`EXPIRY_MS|STATE`), so a ceremony past the caller's clock is
//! refused as the embedded store refuses it, whatever Redis's own TTL says.

use super::{RedisStore, Resend};
use crate::store::ceremonies::Ceremonies;
use crate::store::error::StoreResult;

/// The contract is on `Ceremonies`.
impl Ceremonies for RedisStore {
    async fn put_ceremony(&self, cid: &str, state: &str, ttl_ms: i64, now: i64) -> StoreResult<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.ceremony(cid))
            .arg(format!("{}|{state}", now + ttl_ms))
            .arg("PX")
            .arg(ttl_ms);
        let _: () = self.query(&cmd, Resend::Idempotent).await?;
        Ok(())
    }

    async fn take_ceremony(&self, cid: &str, now: i64) -> StoreResult<Option<String>> {
        let mut cmd = redis::cmd("GETDEL");
        cmd.arg(self.keys.ceremony(cid));
        // Sent again only when nothing was sent: a second GETDEL after a dropped
        // answer would find the key gone, which refuses the ceremony (never a replay).
        let value: Option<String> = self.query(&cmd, Resend::IfNotSent).await?;
        Ok(value.and_then(|v| {
            let (expiry, state) = v.split_once('|')?;
            let live = expiry.parse::<i64>().is_ok_and(|exp| exp > now);
            live.then(|| state.to_string())
        }))
    }
}
