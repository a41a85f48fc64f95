//! Pending sign-ins on Redis: `pending_start`, `pending_fail`, `pending_take`, and a
//! plain `HGETALL` to read one.

use uuid::Uuid;

use super::{RedisStore, Resend};
use crate::store::error::StoreResult;
use crate::store::pending_sign_ins::{PendingFailure, PendingSignIn, PendingSignIns};

/// The contract is on `PendingSignIns`.
impl PendingSignIns for RedisStore {
    async fn start_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        pending: &PendingSignIn,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut inv = self.scripts.pending_start.prepare_invoke();
        inv.key(self.keys.pending(user_id, pid))
            .arg((pending.expires_ms - now_ms).max(1));
        for (k, v) in pending.fields() {
            inv.arg(k).arg(v);
        }
        // The same fields again leave the same hash: safe to send twice.
        let _: i64 = self.run(&inv, Resend::Idempotent).await?;
        Ok(())
    }

    async fn read_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        now_ms: i64,
    ) -> StoreResult<Option<PendingSignIn>> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.keys.pending(user_id, pid));
        let h: std::collections::HashMap<String, String> =
            self.query(&cmd, Resend::Idempotent).await?;
        Ok(PendingSignIn::read(
            |k| h.get(k).map(String::as_str),
            now_ms,
        ))
    }

    async fn fail_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        max_wrong: u32,
        now_ms: i64,
    ) -> StoreResult<PendingFailure> {
        let mut inv = self.scripts.pending_fail.prepare_invoke();
        inv.key(self.keys.pending(user_id, pid))
            .arg(now_ms)
            .arg(max_wrong);
        let n: i64 = self.run(&inv, Resend::IfNotSent).await?;
        Ok(match n {
            n if n > 0 => PendingFailure::Counted { left: n as u32 },
            0 => PendingFailure::Ended,
            _ => PendingFailure::Missing,
        })
    }

    async fn take_pending(
        &self,
        user_id: &Uuid,
        pid: &str,
        now_ms: i64,
    ) -> StoreResult<Option<PendingSignIn>> {
        let mut inv = self.scripts.pending_take.prepare_invoke();
        inv.key(self.keys.pending(user_id, pid));
        let h: Option<std::collections::HashMap<String, String>> =
            self.run(&inv, Resend::IfNotSent).await?;
        Ok(h.and_then(|h| PendingSignIn::read(|k| h.get(k).map(String::as_str), now_ms)))
    }
}
