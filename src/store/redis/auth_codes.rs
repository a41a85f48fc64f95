//! Authorization codes on Redis: a plain `SET`/`GET`, and `auth_code_redeem` for
//! using one.

use uuid::Uuid;

use super::{RedisStore, Resend};
use crate::store::auth_codes::{code_state, AuthCodeState, AuthCodes, Redeemed, USED_CODE_TTL_MS};
use crate::store::error::StoreResult;

/// The contract is on `AuthCodes`.
impl AuthCodes for RedisStore {
    async fn put_auth_code(
        &self,
        user_id: &Uuid,
        id: &str,
        request: &str,
        ttl_ms: i64,
        _now: i64,
    ) -> StoreResult<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.auth_code(user_id, id))
            .arg(request)
            .arg("PX")
            .arg(ttl_ms);
        let _: () = self.query(&cmd, Resend::Idempotent).await?;
        Ok(())
    }

    async fn get_auth_code(
        &self,
        user_id: &Uuid,
        id: &str,
        _now: i64,
    ) -> StoreResult<Option<AuthCodeState>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.keys.auth_code(user_id, id));
        let v: Option<String> = self.query(&cmd, Resend::Idempotent).await?;
        Ok(v.as_deref().map(code_state))
    }

    async fn redeem_auth_code(
        &self,
        user_id: &Uuid,
        id: &str,
        new_sid: Option<&str>,
        allowed_by: Option<&str>,
        _now: i64,
    ) -> StoreResult<Redeemed> {
        let mut inv = self.scripts.auth_code_redeem.prepare_invoke();
        inv.key(self.keys.auth_code(user_id, id))
            .key(self.keys.user(user_id))
            .arg(self.keys.session_prefix(user_id))
            .arg(new_sid.unwrap_or(""))
            .arg(USED_CODE_TTL_MS)
            .arg(allowed_by.unwrap_or(""));
        let n: i64 = self.run(&inv, Resend::IfNotSent).await?;
        Ok(match n {
            1 => Redeemed::Yes,
            -1 => Redeemed::Replayed,
            -2 => Redeemed::AllowedByEnded,
            _ => Redeemed::Gone,
        })
    }
}
