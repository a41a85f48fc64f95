//! `Accounts`, the repository: the `users` and `known_devices` tables' queries, each
//! written once for SQLite and PostgreSQL (the other tables' queries extend it in
//! `oidc.rs` and `second_factor.rs`).

use uuid::Uuid;

use super::database::{on_pool, Pool};
use super::error::AccountError;
use crate::support::clock::now_ms;
use crate::support::input::Email;

/// Devices remembered per account for the new-device notice.
pub const KNOWN_DEVICES_PER_ACCOUNT: i64 = 50;

#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub created_at: i64,
    /// Unix ms; also the "password version" that sessions are checked against.
    pub password_changed_at: i64,
    /// Unix ms when an operator disabled the account; it cannot sign in meanwhile.
    pub disabled_at: Option<i64>,
    /// Unix ms when the account proved it holds its address; `None`: unverified.
    pub email_verified_at: Option<i64>,
    /// Unix ms of the last sign-in (or the registration); `None` for an account made
    /// before addresses were verified that has not signed in since.
    pub last_seen_at: Option<i64>,
}

impl User {
    /// Whether the account proved it holds its address.
    pub fn email_verified(&self) -> bool {
        self.email_verified_at.is_some()
    }
}

/// The users and their known devices, in SQLite or PostgreSQL (`database.rs`). Every
/// query is written once, with `$N` placeholders both read.
#[derive(Clone)]
pub struct Accounts {
    pub(super) pool: Pool,
}

/// A `users` row as both databases return it (ids are TEXT, times BIGINT/INTEGER ms).
#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    email: String,
    password_hash: String,
    created_at: i64,
    password_changed_at: i64,
    disabled_at: Option<i64>,
    email_verified_at: Option<i64>,
    last_seen_at: Option<i64>,
}

/// The columns a `UserRow` reads, as a literal (sqlx takes only `'static` SQL).
macro_rules! user_columns {
    () => {
        "id, email, password_hash, created_at, password_changed_at, disabled_at, \
         email_verified_at, last_seen_at"
    };
}

impl TryFrom<UserRow> for User {
    type Error = sqlx::Error;

    fn try_from(row: UserRow) -> Result<User, sqlx::Error> {
        Ok(User {
            id: Uuid::parse_str(&row.id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            email: row.email,
            password_hash: row.password_hash,
            created_at: row.created_at,
            password_changed_at: row.password_changed_at,
            disabled_at: row.disabled_at,
            email_verified_at: row.email_verified_at,
            last_seen_at: row.last_seen_at,
        })
    }
}

impl Accounts {
    /// Opens the database `database_url` names (creating a SQLite file if needed) and
    /// brings its tables up to date.
    pub async fn open(database_url: &str) -> Result<Accounts, String> {
        Ok(Accounts {
            pool: Pool::open(database_url).await?,
        })
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        self.pool.backend_name()
    }

    pub async fn ping(&self) -> Result<(), AccountError> {
        on_pool!(&self.pool, |p| sqlx::query("SELECT 1")
            .fetch_one(p)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Makes an unverified account (its address proved later, by a code or link).
    pub async fn create(&self, email: &Email, password_hash: &str) -> Result<User, AccountError> {
        let now = now_ms();
        let user = User {
            id: Uuid::now_v7(),
            email: email.as_str().to_string(),
            password_hash: password_hash.to_string(),
            created_at: now,
            password_changed_at: now,
            disabled_at: None,
            email_verified_at: None,
            last_seen_at: Some(now),
        };
        let sql = "INSERT INTO users (id, email, email_normalized, password_hash, created_at, password_changed_at, last_seen_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(user.id.to_string())
            .bind(&user.email)
            .bind(email.normalized())
            .bind(&user.password_hash)
            .bind(user.created_at)
            .bind(user.password_changed_at)
            .bind(user.last_seen_at)
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(user)
    }

    pub async fn find_by_email(&self, email: &Email) -> Result<Option<User>, AccountError> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email_normalized = $1"
        );
        let row: Option<UserRow> = on_pool!(&self.pool, |p| sqlx::query_as(sql)
            .bind(email.normalized())
            .fetch_optional(p)
            .await)?;
        Ok(row.map(User::try_from).transpose()?)
    }

    pub async fn find_by_id(&self, id: &Uuid) -> Result<Option<User>, AccountError> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
        let row: Option<UserRow> = on_pool!(&self.pool, |p| sqlx::query_as(sql)
            .bind(id.to_string())
            .fetch_optional(p)
            .await)?;
        Ok(row.map(User::try_from).transpose()?)
    }

    /// Up to `limit` accounts whose id sorts after `after` (`""`: from the first), in
    /// id order, which is the order they were made in (ids are UUIDv7): a page of the
    /// operator's list.
    pub async fn list_after(&self, after: &str, limit: u32) -> Result<Vec<User>, AccountError> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id > $1 ORDER BY id LIMIT $2"
        );
        let rows: Vec<UserRow> = on_pool!(&self.pool, |p| sqlx::query_as(sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)?;
        Ok(rows
            .into_iter()
            .map(User::try_from)
            .collect::<Result<_, _>>()?)
    }

    /// The accounts a query over the user columns and two integer parameters finds
    /// (`verification.rs`'s searches).
    pub(super) async fn select_users(
        &self,
        sql: &'static str,
        first: i64,
        second: i64,
    ) -> Result<Vec<User>, AccountError> {
        let rows: Vec<UserRow> = on_pool!(&self.pool, |p| sqlx::query_as(sql)
            .bind(first)
            .bind(second)
            .fetch_all(p)
            .await)?;
        Ok(rows
            .into_iter()
            .map(User::try_from)
            .collect::<Result<_, _>>()?)
    }

    /// Stores a new password hash; returns the new password version (always larger
    /// than the previous one).
    pub async fn set_password(
        &self,
        user: &User,
        password_hash: &str,
    ) -> Result<i64, AccountError> {
        let version = now_ms().max(user.password_changed_at + 1);
        let sql = "UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3";
        on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(password_hash)
            .bind(version)
            .bind(user.id.to_string())
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(version)
    }

    /// Disables (`true`) or enables the account, and moves its password version on as
    /// a password change does, so a sign-in checked before this cannot start a session
    /// after it. Answers the new version; `None` when there is no such account.
    pub async fn set_disabled(
        &self,
        user: &User,
        disabled: bool,
    ) -> Result<Option<i64>, AccountError> {
        let now = now_ms();
        let version = now.max(user.password_changed_at + 1);
        // Disabling a disabled account keeps the time it was first disabled.
        let sql = "UPDATE users SET password_changed_at = $2, \
                   disabled_at = CASE WHEN $1 IS NULL THEN NULL ELSE COALESCE(disabled_at, $1) END \
                   WHERE id = $3";
        let changed = on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(disabled.then_some(now))
            .bind(version)
            .bind(user.id.to_string())
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok((changed > 0).then_some(version))
    }

    /// Moves the account from the address `from` to `to`, only while `from` is still
    /// its address (so a change and its undo, or two changes, cannot cross). False when
    /// the account is gone or its address moved on; `AccountError::Duplicate` when
    /// another account holds `to`.
    pub async fn change_email(
        &self,
        user_id: &Uuid,
        from: &Email,
        to: &Email,
    ) -> Result<bool, AccountError> {
        let sql = "UPDATE users SET email = $1, email_normalized = $2 \
                   WHERE id = $3 AND email_normalized = $4";
        let changed = on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(to.as_str())
            .bind(to.normalized())
            .bind(user_id.to_string())
            .bind(from.normalized())
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(changed > 0)
    }

    /// Deletes the account and what is recorded about it (its known devices go with
    /// it); false when there was none.
    pub async fn delete(&self, user_id: &Uuid) -> Result<bool, AccountError> {
        let deleted = on_pool!(&self.pool, |p| sqlx::query(
            "DELETE FROM users WHERE id = $1"
        )
        .bind(user_id.to_string())
        .execute(p)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(deleted > 0)
    }

    /// Records that the account signed in from this device; true when it had not
    /// been seen within `window_ms` (a new device). Devices not seen within the window
    /// are forgotten (they would count as new anyway), and of the rest only the
    /// [`KNOWN_DEVICES_PER_ACCOUNT`] seen most recently are kept, so sign-ins with ever
    /// new client names cannot grow the table.
    pub async fn note_device(
        &self,
        user_id: &Uuid,
        fingerprint: &str,
        window_ms: i64,
    ) -> Result<bool, AccountError> {
        let now = now_ms();
        let select =
            "SELECT last_seen_at FROM known_devices WHERE user_id = $1 AND fingerprint = $2";
        let upsert = "INSERT INTO known_devices (user_id, fingerprint, last_seen_at) VALUES ($1, $2, $3) \
                      ON CONFLICT (user_id, fingerprint) DO UPDATE SET last_seen_at = excluded.last_seen_at";
        let previous: Option<i64> = on_pool!(&self.pool, |p| sqlx::query_scalar(select)
            .bind(user_id.to_string())
            .bind(fingerprint)
            .fetch_optional(p)
            .await)?;
        on_pool!(&self.pool, |p| sqlx::query(upsert)
            .bind(user_id.to_string())
            .bind(fingerprint)
            .bind(now)
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        self.forget_old_devices(user_id, now - window_ms).await?;
        Ok(previous.is_none_or(|t| now - t > window_ms))
    }

    /// Deletes the account's devices last seen before `seen_before`, and all but the
    /// most recent [`KNOWN_DEVICES_PER_ACCOUNT`].
    async fn forget_old_devices(
        &self,
        user_id: &Uuid,
        seen_before: i64,
    ) -> Result<(), AccountError> {
        let sql = "DELETE FROM known_devices WHERE user_id = $1 AND (last_seen_at < $2 OR fingerprint NOT IN \
                   (SELECT fingerprint FROM known_devices WHERE user_id = $1 \
                    ORDER BY last_seen_at DESC, fingerprint LIMIT $3))";
        on_pool!(&self.pool, |p| sqlx::query(sql)
            .bind(user_id.to_string())
            .bind(seen_before)
            .bind(KNOWN_DEVICES_PER_ACCOUNT)
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }
}
