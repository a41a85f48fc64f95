//! Address changes on Redis: `email_change_start|confirm`, `email_undo_keep|take`,
//! and plain `HGET` and `DEL`.

use uuid::Uuid;

use super::{RedisStore, Resend};
use crate::store::email_changes::{EmailChangeCheck, EmailChanges};
use crate::store::error::StoreResult;

/// The contract is on `EmailChanges`.
impl EmailChanges for RedisStore {
    async fn start_email_change(
        &self,
        user_id: &Uuid,
        new_email: &str,
        mac: &str,
        ttl_ms: i64,
        _now: i64,
    ) -> StoreResult<()> {
        let mut inv = self.scripts.email_change_start.prepare_invoke();
        inv.key(self.keys.email_change(user_id))
            .arg(new_email)
            .arg(mac)
            .arg(ttl_ms);
        let _: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok(())
    }

    async fn pending_email_change(&self, user_id: &Uuid, _now: i64) -> StoreResult<Option<String>> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(self.keys.email_change(user_id)).arg("to");
        self.query(&cmd, Resend::Idempotent).await
    }

    async fn confirm_email_change(
        &self,
        user_id: &Uuid,
        mac: &str,
        max_tries: u32,
        _now: i64,
    ) -> StoreResult<EmailChangeCheck> {
        let mut inv = self.scripts.email_change_confirm.prepare_invoke();
        inv.key(self.keys.email_change(user_id))
            .arg(mac)
            .arg(max_tries);
        let (n, to): (i64, String) = self.run(&inv, Resend::IfNotSent).await?;
        Ok(match n {
            1 => EmailChangeCheck::Right(to),
            0 => EmailChangeCheck::Wrong,
            -2 => EmailChangeCheck::Burned,
            _ => EmailChangeCheck::Missing,
        })
    }

    async fn keep_email_undo(
        &self,
        user_id: &Uuid,
        token_hash: &str,
        old_email: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut inv = self.scripts.email_undo_keep.prepare_invoke();
        inv.key(self.keys.email_undo(user_id))
            .arg(token_hash)
            .arg(old_email)
            .arg(now_ms)
            .arg(ttl_ms);
        let _: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok(())
    }

    async fn take_email_undo(
        &self,
        user_id: &Uuid,
        token_hash: &str,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        let mut inv = self.scripts.email_undo_take.prepare_invoke();
        inv.key(self.keys.email_undo(user_id))
            .key(self.keys.email_change(user_id))
            .arg(token_hash)
            .arg(now_ms);
        self.run(&inv, Resend::IfNotSent).await
    }

    async fn forget_email_changes(&self, user_id: &Uuid) -> StoreResult<()> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.keys.email_change(user_id))
            .arg(self.keys.email_undo(user_id));
        let _: i64 = self.query(&cmd, Resend::Idempotent).await?;
        Ok(())
    }
}
