//! What a command works with (`Parts`: the server's settings, store and account
//! database, opened as the server opens them) and why it failed (`CliError`).

use crate::accounts::{AccountError, Accounts};
use crate::config::Settings;
use crate::services::ServiceError;
use crate::store::{Store, StoreError};

/// Why a command did not do what it was asked; printed as `latchkey: …`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Start(String),
    #[error("{0:?} is not an email address: {1}")]
    NotAnAddress(String, &'static str),
    #[error("no account has the address {0}")]
    NoSuchAccount(String),
    #[error("{0} has no second factor turned on; nothing changed")]
    NoSecondFactor(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<AccountError> for CliError {
    fn from(e: AccountError) -> Self {
        CliError::Service(e.into())
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::Service(e.into())
    }
}

/// The settings and the account database alone (the apps and keys live there).
pub(super) async fn open_accounts() -> Result<(Settings, Accounts), CliError> {
    let settings = Settings::from_figment(&crate::config::figment())
        .map_err(|e| CliError::Start(e.to_string()))?;
    let url = secrecy::ExposeSecret::expose_secret(&settings.storage.database_url);
    let accounts = Accounts::open(url).await.map_err(CliError::Start)?;
    Ok((settings, accounts))
}

/// What a command works with: the server's settings, store and account database.
pub struct Parts {
    pub settings: Settings,
    pub store: Store,
    pub accounts: Accounts,
}

impl Parts {
    pub(super) async fn open() -> Result<Parts, CliError> {
        let settings = Settings::from_figment(&crate::config::figment())
            .map_err(|e| CliError::Start(e.to_string()))?;
        let store = crate::store::connect(&settings.storage, false)
            .await
            .map_err(CliError::Start)?;
        if let Store::Memory(_) = store {
            return Err(CliError::Start(
                "setting `redis_url` is `memory`: the sessions live inside the server's \
                 process, out of this command's reach; set it to the server's Redis"
                    .into(),
            ));
        }
        let url = secrecy::ExposeSecret::expose_secret(&settings.storage.database_url);
        let accounts = Accounts::open(url).await.map_err(CliError::Start)?;
        Ok(Parts {
            settings,
            store,
            accounts,
        })
    }
}
