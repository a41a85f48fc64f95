//! Why the account database did not do what was asked.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum AccountError {
    #[error("an account with this email already exists")]
    Duplicate,
    #[error("the account database is read-only")]
    ReadOnly(#[source] sqlx::Error),
    #[error("the account database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// A stored second-factor secret that `second_factor_key` does not open: the start
    /// checks the key, so only a row changed by hand gets here.
    #[error("a stored second-factor secret does not open with `second_factor_key`")]
    Unsealable,
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
