//! The passkeys' rows: `passkey_handles` (each account's random WebAuthn user handle)
//! and `passkeys` (one credential each). What they mean is in
//! `crate::services::passkeys`; here are only the queries, each written once for both
//! databases.
//!
//! A use is recorded by one conditional `UPDATE` (the counter must move forward, the
//! passkey must not be marked cloned), so of two assertions carrying the same counter
//! exactly one is taken; an account's passkeys are capped in the `INSERT` itself.

use uuid::Uuid;

use super::database::on_pool;
use super::error::AccountError;
use super::users::Accounts;

/// A passkey as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PasskeyRow {
    pub id: String,
    pub user_id: String,
    /// base64url (no padding) of the credential id.
    pub credential_id: String,
    pub name: String,
    /// webauthn-rs's `Passkey`, as JSON.
    pub credential: String,
    pub sign_count: i64,
    /// 1: backup eligible (synced between the owner's devices).
    pub synced: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// Set when an assertion's counter went backwards: the passkey is refused since.
    pub cloned_at: Option<i64>,
}

/// A passkey to store.
pub struct NewPasskey<'a> {
    pub id: Uuid,
    pub user_id: &'a Uuid,
    pub credential_id: &'a str,
    pub name: &'a str,
    pub credential: &'a str,
    pub sign_count: i64,
    pub synced: bool,
    pub now: i64,
}

/// A use of a passkey to record: its new counter and credential (flags updated).
pub struct PasskeyUse<'a> {
    pub id: &'a str,
    pub sign_count: i64,
    pub credential: &'a str,
    pub now: i64,
}

macro_rules! passkey_columns {
    () => {
        "id, user_id, credential_id, name, credential, sign_count, synced, created_at, \
         last_used_at, cloned_at"
    };
}

impl Accounts {
    /// The account's WebAuthn user handle, made (from `fresh`) on first need. Of two
    /// concurrent calls, both answer the one stored.
    pub async fn passkey_handle(
        &self,
        user_id: &Uuid,
        fresh: &str,
    ) -> Result<String, AccountError> {
        let id = user_id.to_string();
        let insert = "INSERT INTO passkey_handles (user_id, handle) VALUES ($1, $2) \
                      ON CONFLICT (user_id) DO NOTHING";
        let select = "SELECT handle FROM passkey_handles WHERE user_id = $1";
        let handle: String = on_pool!(&self.pool, |p| async {
            sqlx::query(insert).bind(&id).bind(fresh).execute(p).await?;
            sqlx::query_scalar(select).bind(&id).fetch_one(p).await
        }
        .await)?;
        Ok(handle)
    }

    /// The account whose user handle is `handle`, if any.
    pub async fn user_by_passkey_handle(&self, handle: &str) -> Result<Option<Uuid>, AccountError> {
        let sql = "SELECT user_id FROM passkey_handles WHERE handle = $1";
        let id: Option<String> = on_pool!(&self.pool, |p| sqlx::query_scalar(sql)
            .bind(handle)
            .fetch_optional(p)
            .await)?;
        Ok(id.and_then(|id| Uuid::parse_str(&id).ok()))
    }

    /// The account's passkeys, oldest first.
    pub async fn passkeys(&self, user_id: &Uuid) -> Result<Vec<PasskeyRow>, AccountError> {
        let sql = concat!(
            "SELECT ",
            passkey_columns!(),
            " FROM passkeys WHERE user_id = $1 ORDER BY created_at, id"
        );
        let rows: Vec<PasskeyRow> = on_pool!(&self.pool, |p| sqlx::query_as(sql)
            .bind(user_id.to_string())
            .fetch_all(p)
            .await)?;
        Ok(rows)
    }

    /// The passkey with this credential id (base64url), whoever's it is.
    pub async fn passkey_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<PasskeyRow>, AccountError> {
        let sql = concat!(
            "SELECT ",
            passkey_columns!(),
            " FROM passkeys WHERE credential_id = $1"
        );
        let row: Option<PasskeyRow> = on_pool!(&self.pool, |p| sqlx::query_as(sql)
            .bind(credential_id)
            .fetch_optional(p)
            .await)?;
        Ok(row)
    }

    /// Stores a passkey while the account has fewer than `max`: false when it has
    /// `max` already (nothing stored). A credential id stored before (this account's or
    /// another's) is `AccountError::Duplicate`.
    pub async fn add_passkey(&self, new: &NewPasskey<'_>, max: i64) -> Result<bool, AccountError> {
        let sql = "INSERT INTO passkeys (id, user_id, credential_id, name, credential, \
                   sign_count, synced, created_at) \
                   SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
                   WHERE (SELECT COUNT(*) FROM passkeys WHERE user_id = $2) < $9";
        let added = on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(new.id.to_string())
            .bind(new.user_id.to_string())
            .bind(new.credential_id)
            .bind(new.name)
            .bind(new.credential)
            .bind(new.sign_count)
            .bind(i64::from(new.synced))
            .bind(new.now)
            .bind(max)
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(added == 1)
    }

    /// Records a use: only while the passkey is not marked cloned, and only when the
    /// counter moved forward (or both the stored and the new counter are 0: an
    /// authenticator without a counter). True for exactly one of any number of
    /// concurrent calls with one counter.
    pub async fn record_passkey_use(&self, u: &PasskeyUse<'_>) -> Result<bool, AccountError> {
        let sql = "UPDATE passkeys SET sign_count = $2, credential = $3, last_used_at = $4 \
                   WHERE id = $1 AND cloned_at IS NULL \
                   AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0))";
        let changed = on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(u.id)
            .bind(u.sign_count)
            .bind(u.credential)
            .bind(u.now)
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Marks a passkey as cloned (its counter went backwards): true the first time.
    pub async fn mark_passkey_cloned(&self, id: &str, now: i64) -> Result<bool, AccountError> {
        let sql = "UPDATE passkeys SET cloned_at = $2 WHERE id = $1 AND cloned_at IS NULL";
        let changed = on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(id)
            .bind(now)
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Renames one of the account's passkeys: false when it has none with `id`.
    pub async fn rename_passkey(
        &self,
        user_id: &Uuid,
        id: &str,
        name: &str,
    ) -> Result<bool, AccountError> {
        let sql = "UPDATE passkeys SET name = $3 WHERE user_id = $1 AND id = $2";
        let changed = on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(user_id.to_string())
            .bind(id)
            .bind(name)
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Removes one of the account's passkeys: false when it has none with `id`.
    pub async fn remove_passkey(&self, user_id: &Uuid, id: &str) -> Result<bool, AccountError> {
        let sql = "DELETE FROM passkeys WHERE user_id = $1 AND id = $2";
        let changed = on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(user_id.to_string())
            .bind(id)
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Removes every passkey of the account; answers how many there were.
    pub async fn remove_passkeys(&self, user_id: &Uuid) -> Result<u64, AccountError> {
        let sql = "DELETE FROM passkeys WHERE user_id = $1";
        let removed = on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(user_id.to_string())
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(removed)
    }
}
