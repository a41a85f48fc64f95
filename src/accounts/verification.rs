//! The verified state of an account's address (`users.email_verified_at`) and when it
//! was last used (`users.last_seen_at`), for `crate::services::verification`: marking
//! an address verified, noting a sign-in, and finding and deleting the unverified
//! accounts nobody used for `unverified_account_ttl`. Each change is one statement
//! whose `WHERE` says when it applies, so a verification and the sweep that would
//! delete the same account cannot both win.

use uuid::Uuid;

use super::database::on_pool;
use super::error::AccountError;
use super::users::{Accounts, User};
use crate::support::clock::now_ms;

impl Accounts {
    /// Marks the account's address verified now. True when it was unverified (the
    /// address was verified by this call); false when it already was, or when there is
    /// no such account. `email_normalized`, when given, must still be the account's
    /// address: a code mailed to an address the account no longer has verifies nothing.
    pub async fn mark_verified(
        &self,
        user_id: &Uuid,
        email_normalized: Option<&str>,
    ) -> Result<bool, AccountError> {
        let sql = "UPDATE users SET email_verified_at = $1 \
                   WHERE id = $2 AND email_verified_at IS NULL \
                   AND ($3 IS NULL OR email_normalized = $3)";
        let changed = on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(now_ms())
            .bind(user_id.to_string())
            .bind(email_normalized)
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(changed > 0)
    }

    /// Forgets every app the account allowed (the consent pages show again): an
    /// account taken over by its address's owner keeps nothing its squatter agreed to.
    pub async fn forget_consents(&self, user_id: &Uuid) -> Result<(), AccountError> {
        let sql = "DELETE FROM oauth_consents WHERE user_id = $1";
        on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(user_id.to_string())
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// Records that the account was used now (a sign-in), which keeps an unverified
    /// account from the sweep for another `unverified_account_ttl`.
    pub async fn note_used(&self, user_id: &Uuid) -> Result<(), AccountError> {
        let sql = "UPDATE users SET last_seen_at = $1 WHERE id = $2";
        on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(now_ms())
            .bind(user_id.to_string())
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// Up to `limit` unverified accounts last used before `used_before` (unix ms),
    /// oldest first. Accounts made before addresses were verified and not used since
    /// (`last_seen_at` NULL) are never listed.
    pub async fn unverified_unused(
        &self,
        used_before: i64,
        limit: u32,
    ) -> Result<Vec<User>, AccountError> {
        let sql = concat!(
            "SELECT id, email, password_hash, created_at, password_changed_at, disabled_at, ",
            "email_verified_at, last_seen_at FROM users ",
            "WHERE email_verified_at IS NULL AND last_seen_at < $1 ",
            "ORDER BY last_seen_at LIMIT $2"
        );
        self.select_users(sql, used_before, i64::from(limit)).await
    }

    /// Deletes the account only while it is still unverified and unused since
    /// `used_before`: a verification or sign-in that landed after the sweep listed it
    /// keeps it. True when it was deleted.
    pub async fn delete_if_unverified_unused(
        &self,
        user_id: &Uuid,
        used_before: i64,
    ) -> Result<bool, AccountError> {
        let sql = "DELETE FROM users WHERE id = $1 AND email_verified_at IS NULL \
                   AND last_seen_at < $2";
        let deleted = on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(user_id.to_string())
            .bind(used_before)
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(deleted > 0)
    }
}
