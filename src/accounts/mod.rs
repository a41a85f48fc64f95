//! User accounts: the SQLite `users` table (created and migrated at start) and the
//! password hasher.

mod password;

use std::str::FromStr;

use rocket::fairing::AdHoc;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;
use thiserror::Error;
use uuid::Uuid;

pub use self::password::{HashError, Hasher, Slot, Work, SLOT_WAIT};
use crate::clock::now_ms;
use crate::config::Settings;
use crate::domain::Email;

/// Devices remembered per account for the new-device notice.
pub const KNOWN_DEVICES_PER_ACCOUNT: i64 = 50;

#[derive(Debug, Error)]
pub enum AccountError {
    #[error("an account with this email already exists")]
    Duplicate,
    #[error("the account database is read-only")]
    ReadOnly(#[source] sqlx::Error),
    #[error("the account database is unavailable")]
    Unavailable(#[source] sqlx::Error),
}

impl From<sqlx::Error> for AccountError {
    fn from(e: sqlx::Error) -> Self {
        let Some(db) = e.as_database_error() else {
            return AccountError::Unavailable(e);
        };
        if db.is_unique_violation() {
            return AccountError::Duplicate;
        }
        let msg = db.message().to_lowercase();
        if msg.contains("readonly") || msg.contains("read-only") || msg.contains("read only") {
            return AccountError::ReadOnly(e);
        }
        AccountError::Unavailable(e)
    }
}

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
}

#[derive(Clone)]
pub struct Accounts {
    pool: SqlitePool,
}

fn user_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<User, sqlx::Error> {
    let id: String = row.try_get("id")?;
    Ok(User {
        id: Uuid::parse_str(&id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
        password_changed_at: row.try_get("password_changed_at")?,
        disabled_at: row.try_get("disabled_at")?,
    })
}

impl Accounts {
    /// Opens (creating if needed) the database and brings its tables up to date.
    pub async fn open(database_url: &str) -> Result<Accounts, String> {
        let options = SqliteConnectOptions::from_str(database_url)
            .map_err(|e| format!("invalid setting `database_url`: {e}"))?;
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    format!(
                        "setting `database_url`: cannot create {}: {e}",
                        dir.display()
                    )
                })?;
            }
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(2))
            .connect_with(options)
            .await
            .map_err(|e| format!("setting `database_url`: cannot open {database_url}: {e}"))?;
        if let Err(e) = sqlx::migrate!("./migrations").run(&pool).await {
            // A read-only database that is already up to date still signs people in;
            // writes then answer with a clear message.
            let read_only = e.to_string().to_lowercase().contains("readonly");
            let usable = sqlx::query("SELECT 1 FROM users LIMIT 1")
                .execute(&pool)
                .await
                .is_ok();
            if !(read_only && usable) {
                return Err(format!(
                    "setting `database_url`: cannot migrate {database_url}: {e}"
                ));
            }
            tracing::warn!(%database_url, "the account database is read-only: sign-in works, new accounts and password changes will fail");
        }
        Ok(Accounts { pool })
    }

    pub async fn ping(&self) -> Result<(), AccountError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn create(&self, email: &Email, password_hash: &str) -> Result<User, AccountError> {
        let now = now_ms();
        let user = User {
            id: Uuid::now_v7(),
            email: email.as_str().to_string(),
            password_hash: password_hash.to_string(),
            created_at: now,
            password_changed_at: now,
            disabled_at: None,
        };
        sqlx::query(
            "INSERT INTO users (id, email, email_normalized, password_hash, created_at, password_changed_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(user.id.to_string())
        .bind(&user.email)
        .bind(email.normalized())
        .bind(&user.password_hash)
        .bind(user.created_at)
        .bind(user.password_changed_at)
        .execute(&self.pool)
        .await?;
        Ok(user)
    }

    pub async fn find_by_email(&self, email: &Email) -> Result<Option<User>, AccountError> {
        let row = sqlx::query("SELECT * FROM users WHERE email_normalized = ?")
            .bind(email.normalized())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    pub async fn find_by_id(&self, id: &Uuid) -> Result<Option<User>, AccountError> {
        let row = sqlx::query("SELECT * FROM users WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    /// Stores a new password hash; returns the new password version (always larger
    /// than the previous one).
    pub async fn set_password(
        &self,
        user: &User,
        password_hash: &str,
    ) -> Result<i64, AccountError> {
        let version = now_ms().max(user.password_changed_at + 1);
        sqlx::query("UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?")
            .bind(password_hash)
            .bind(version)
            .bind(user.id.to_string())
            .execute(&self.pool)
            .await?;
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
        let done =
            sqlx::query("UPDATE users SET disabled_at = ?, password_changed_at = ? WHERE id = ?")
                .bind(disabled.then_some(now))
                .bind(version)
                .bind(user.id.to_string())
                .execute(&self.pool)
                .await?;
        Ok((done.rows_affected() > 0).then_some(version))
    }

    /// Deletes the account and what is recorded about it (its known devices go with
    /// it); false when there was none.
    pub async fn delete(&self, user_id: &Uuid) -> Result<bool, AccountError> {
        let done = sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(user_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
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
        let previous: Option<i64> = sqlx::query_scalar(
            "SELECT last_seen_at FROM known_devices WHERE user_id = ? AND fingerprint = ?",
        )
        .bind(user_id.to_string())
        .bind(fingerprint)
        .fetch_optional(&self.pool)
        .await?;
        sqlx::query(
            "INSERT INTO known_devices (user_id, fingerprint, last_seen_at) VALUES (?, ?, ?) \
             ON CONFLICT (user_id, fingerprint) DO UPDATE SET last_seen_at = excluded.last_seen_at",
        )
        .bind(user_id.to_string())
        .bind(fingerprint)
        .bind(now)
        .execute(&self.pool)
        .await?;
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
        sqlx::query(
            "DELETE FROM known_devices WHERE user_id = ?1 AND (last_seen_at < ?2 OR fingerprint NOT IN \
             (SELECT fingerprint FROM known_devices WHERE user_id = ?1 \
              ORDER BY last_seen_at DESC, fingerprint LIMIT ?3))",
        )
        .bind(user_id.to_string())
        .bind(seen_before)
        .bind(KNOWN_DEVICES_PER_ACCOUNT)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Opens the account database and the hasher, and manages both.
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Accounts", |rocket| async move {
        let Some(settings) = rocket.state::<Settings>() else {
            return Err(rocket);
        };
        match Accounts::open(&settings.storage.database_url).await {
            Ok(accounts) => {
                let hasher = Hasher::new().await;
                Ok(rocket.manage(accounts).manage(hasher))
            }
            Err(msg) => {
                tracing::error!("{msg}");
                eprintln!("latchkey: {msg}");
                Err(rocket)
            }
        }
    })
}
