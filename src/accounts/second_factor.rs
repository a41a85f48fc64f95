//! The second factor's rows: `second_factors` (the sealed TOTP secret and the last
//! accepted time step), `recovery_codes` (keyed hashes of the unused codes) and
//! `second_factor_key` (which key sealed them). What they mean, and the sealing, is
//! in `crate::services::second_factor`; here are only the queries, each written once for both
//! databases.
//!
//! Every change that must not happen twice is one statement whose `WHERE` says so (a
//! later step, a code still there), so the database decides between two concurrent
//! requests and exactly one sees a changed row.

use uuid::Uuid;

use super::database::on_pool;
use super::error::AccountError;
use super::users::Accounts;

/// An account's authenticator, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FactorRow {
    pub secret_sealed: String,
    pub last_step: i64,
    pub enabled_at: i64,
}

impl Accounts {
    /// The account's authenticator, if the second factor is on.
    pub async fn second_factor(&self, user_id: &Uuid) -> Result<Option<FactorRow>, AccountError> {
        let sql =
            "SELECT secret_sealed, last_step, enabled_at FROM second_factors WHERE user_id = $1";
        let row: Option<FactorRow> = on_pool!(&self.pool, |p| sqlx::query_as(sql)
            .bind(user_id.to_string())
            .fetch_optional(p)
            .await)?;
        Ok(row)
    }

    /// Unused recovery codes the account has.
    pub async fn recovery_codes_left(&self, user_id: &Uuid) -> Result<u32, AccountError> {
        let sql = "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1";
        let n: i64 = on_pool!(&self.pool, |p| sqlx::query_scalar(sql)
            .bind(user_id.to_string())
            .fetch_one(p)
            .await)?;
        Ok(u32::try_from(n).unwrap_or(0))
    }

    /// Turns the second factor on with this sealed secret (`step` already used by the
    /// confirming code) and these recovery codes, in one transaction. False when it
    /// was already on (nothing changes).
    pub async fn enable_second_factor(
        &self,
        user_id: &Uuid,
        secret_sealed: &str,
        step: i64,
        now: i64,
        code_macs: &[String],
    ) -> Result<bool, AccountError> {
        let id = user_id.to_string();
        let insert = "INSERT INTO second_factors (user_id, secret_sealed, last_step, enabled_at) \
                      VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO NOTHING";
        let inserted = on_pool!(&self.pool, |p| async {
            let mut tx = p.begin().await?;
            let done = sqlx::query(insert)
                .bind(&id)
                .bind(secret_sealed)
                .bind(step)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok::<bool, sqlx::Error>(false);
            }
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            for mac in code_macs {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_mac) VALUES ($1, $2)")
                    .bind(&id)
                    .bind(mac)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        }
        .await)?;
        Ok(inserted)
    }

    /// Records `step` as the last accepted one, only if it is later than the stored
    /// one: true for exactly one of any number of concurrent calls with one step.
    pub async fn advance_second_factor_step(
        &self,
        user_id: &Uuid,
        step: i64,
    ) -> Result<bool, AccountError> {
        let sql = "UPDATE second_factors SET last_step = $2 WHERE user_id = $1 AND last_step < $2";
        let changed = on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(user_id.to_string())
            .bind(step)
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Whether `mac` is one of the account's unused recovery codes (nothing changes).
    pub async fn has_recovery_code(&self, user_id: &Uuid, mac: &str) -> Result<bool, AccountError> {
        let sql = "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND code_mac = $2";
        let n: i64 = on_pool!(&self.pool, |p| sqlx::query_scalar(sql)
            .bind(user_id.to_string())
            .bind(mac)
            .fetch_one(p)
            .await)?;
        Ok(n > 0)
    }

    /// Uses up a recovery code: true for exactly one of any number of concurrent
    /// calls with one code, false when it is not (or no longer) the account's.
    pub async fn use_recovery_code(&self, user_id: &Uuid, mac: &str) -> Result<bool, AccountError> {
        let sql = "DELETE FROM recovery_codes WHERE user_id = $1 AND code_mac = $2";
        let deleted = on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(user_id.to_string())
            .bind(mac)
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(deleted == 1)
    }

    /// Replaces the account's recovery codes with these, in one transaction, while the
    /// second factor is on. False (nothing changes) when it is off.
    pub async fn replace_recovery_codes(
        &self,
        user_id: &Uuid,
        code_macs: &[String],
    ) -> Result<bool, AccountError> {
        let id = user_id.to_string();
        let replaced = on_pool!(&self.pool, |p| async {
            let mut tx = p.begin().await?;
            let on: Option<i64> =
                sqlx::query_scalar("SELECT enabled_at FROM second_factors WHERE user_id = $1")
                    .bind(&id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if on.is_none() {
                tx.rollback().await?;
                return Ok::<bool, sqlx::Error>(false);
            }
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            for mac in code_macs {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_mac) VALUES ($1, $2)")
                    .bind(&id)
                    .bind(mac)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        }
        .await)?;
        Ok(replaced)
    }

    /// Turns the second factor off: the authenticator and every recovery code go.
    /// False when it was already off.
    pub async fn disable_second_factor(&self, user_id: &Uuid) -> Result<bool, AccountError> {
        let id = user_id.to_string();
        let deleted = on_pool!(&self.pool, |p| async {
            let mut tx = p.begin().await?;
            let done = sqlx::query("DELETE FROM second_factors WHERE user_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<u64, sqlx::Error>(done.rows_affected())
        }
        .await)?;
        Ok(deleted == 1)
    }

    /// The id of the key that sealed the stored secrets (`None` before any was
    /// recorded), and how many accounts have a second factor.
    pub async fn second_factor_key_id(&self) -> Result<(Option<String>, i64), AccountError> {
        let key: Option<String> = on_pool!(&self.pool, |p| sqlx::query_scalar(
            "SELECT key_id FROM second_factor_key WHERE id = 1"
        )
        .fetch_optional(p)
        .await)?;
        let enrolled: i64 = on_pool!(&self.pool, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM second_factors"
        )
        .fetch_one(p)
        .await)?;
        Ok((key, enrolled))
    }

    /// Records `key_id` as the key that seals the secrets from now on.
    pub async fn set_second_factor_key_id(&self, key_id: &str) -> Result<(), AccountError> {
        let sql = "INSERT INTO second_factor_key (id, key_id) VALUES (1, $1) \
                   ON CONFLICT (id) DO UPDATE SET key_id = excluded.key_id";
        on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(key_id)
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }
}
