//! Refresh and access tokens on Redis: `refresh_rotate`, `api_logout`,
//! `refresh_revoke`, `refresh_status`, and a plain `SET` for a revoked access token.

use redis::Value;
use uuid::Uuid;

use super::{RedisStore, Resend};
use crate::store::error::StoreResult;
use crate::store::sessions::SEEN_REFRESH_MS;
use crate::store::tokens::{Rotated, Rotation, Tokens, REFRESH_HISTORY};

/// The contract is on `Tokens`.
impl Tokens for RedisStore {
    async fn rotate_refresh(
        &self,
        user_id: &Uuid,
        sid: &str,
        rotation: &Rotation<'_>,
        now_ms: i64,
    ) -> StoreResult<Rotated> {
        let mut inv = self.scripts.rotate.prepare_invoke();
        inv.key(self.keys.session(user_id, sid))
            .key(self.keys.user(user_id))
            .arg(sid)
            .arg(now_ms)
            .arg(rotation.presented_hash)
            .arg(rotation.successor_hash)
            .arg(REFRESH_HISTORY)
            .arg(SEEN_REFRESH_MS)
            .arg(rotation.grace_ms.max(0));
        let n: i64 = self.run(&inv, Resend::IfNotSent).await?;
        Ok(match n {
            1 => Rotated::Yes,
            2 => Rotated::Again,
            -1 => Rotated::Reused,
            _ => Rotated::Invalid,
        })
    }

    async fn api_logout(
        &self,
        user_id: &Uuid,
        sid: &str,
        jti: &str,
        token_ttl_ms: i64,
        _now: i64,
    ) -> StoreResult<bool> {
        let mut inv = self.scripts.api_logout.prepare_invoke();
        inv.key(self.keys.session(user_id, sid))
            .key(self.keys.user(user_id))
            .key(self.keys.revoked_jti(user_id, jti))
            .arg(sid)
            .arg(token_ttl_ms);
        let n: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok(n > 0)
    }

    async fn revoke_access(
        &self,
        user_id: &Uuid,
        jti: &str,
        token_ttl_ms: i64,
        _now: i64,
    ) -> StoreResult<()> {
        if token_ttl_ms <= 0 {
            return Ok(());
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.revoked_jti(user_id, jti))
            .arg(1)
            .arg("PX")
            .arg(token_ttl_ms);
        let _: Value = self.query(&cmd, Resend::Idempotent).await?;
        Ok(())
    }

    async fn revoke_refresh(
        &self,
        user_id: &Uuid,
        sid: &str,
        presented_hash: &str,
        _now: i64,
    ) -> StoreResult<bool> {
        let mut inv = self.scripts.refresh_revoke.prepare_invoke();
        inv.key(self.keys.session(user_id, sid))
            .key(self.keys.user(user_id))
            .arg(sid)
            .arg(presented_hash)
            .arg(REFRESH_HISTORY);
        let n: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok(n > 0)
    }

    async fn refresh_status(
        &self,
        user_id: &Uuid,
        sid: &str,
        presented_hash: &str,
        now_ms: i64,
    ) -> StoreResult<Option<i64>> {
        let mut inv = self.scripts.refresh_status.prepare_invoke();
        inv.key(self.keys.session(user_id, sid))
            .key(self.keys.user(user_id))
            .arg(presented_hash)
            .arg(now_ms);
        let issued: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok((issued > 0).then_some(issued))
    }
}
