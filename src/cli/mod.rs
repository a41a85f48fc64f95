//! The operator's command line, in the server's own binary: `latchkey` alone serves;
//! `latchkey users …` looks at and acts on accounts (`users.rs`). It reads the same
//! settings as the server (`Rocket.toml`, `LATCHKEY_*`, the same checks) and works on
//! the same database and Redis, so it acts on what running servers see, at once.
//! Results go to stdout (text, or one JSON object a line with `--json`); errors to
//! stderr as `latchkey: …`, with exit code 1.

mod clients;
mod users;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::accounts::Accounts;
use crate::config::Settings;
use crate::services::ServiceError;
use crate::store::{Store, StoreError};
use crate::support::report::Report;

#[derive(Debug, Parser)]
#[command(
    name = "latchkey",
    version,
    about = "A self-hosted sign-in service. Without a command, serves.",
    after_help = "Settings come from Rocket.toml and LATCHKEY_* variables, as for the server."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Look at and act on accounts.
    Users {
        /// Print one JSON object a line instead of text.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        action: users::Action,
    },
    /// Apps that sign users in with Latchkey (OpenID Connect).
    Clients {
        /// Print one JSON object a line instead of text.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        action: clients::Action,
    },
    /// The keys that sign the apps' tokens.
    Keys {
        /// Print one JSON object a line instead of text.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        action: clients::KeyAction,
    },
}

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

impl From<crate::accounts::AccountError> for CliError {
    fn from(e: crate::accounts::AccountError) -> Self {
        CliError::Service(e.into())
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::Service(e.into())
    }
}

/// Runs one command to its end on a runtime of its own; the exit code says how it went.
pub fn run(command: Command) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let outcome = match runtime {
        Ok(runtime) => runtime.block_on(execute(command)),
        Err(e) => Err(CliError::Start(format!("cannot start a runtime: {e}"))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: {}", Report(&e));
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> Result<(), CliError> {
    match command {
        Command::Users { json, action } => {
            let parts = Parts::open().await?;
            users::run(&parts, action, Output { json }).await
        }
        Command::Clients {
            json,
            action: clients::Action::Remove { client_id },
        } => {
            let parts = Parts::open().await?;
            clients::remove(&parts.accounts, &parts.store, client_id, Output { json }).await
        }
        Command::Clients { json, action } => {
            let (_, accounts) = open_accounts().await?;
            clients::run(&accounts, action, Output { json }).await
        }
        Command::Keys {
            json,
            action: clients::KeyAction::Rotate,
        } => {
            let (settings, accounts) = open_accounts().await?;
            clients::rotate(&accounts, &settings, Output { json }).await
        }
    }
}

/// The settings and the account database alone (the apps and keys live there).
async fn open_accounts() -> Result<(Settings, Accounts), CliError> {
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
    async fn open() -> Result<Parts, CliError> {
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

/// Where results go: text for a person, or JSON lines for a program.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

/// One result as a person reads it; as JSON it is the value itself.
pub trait Line: Serialize {
    fn text(&self) -> String;
}

impl Output {
    /// Prints one line. A closed stdout (`| head`) is not an error: the reader has
    /// what it wanted.
    pub fn print(self, line: &impl Line) {
        let text = if self.json {
            serde_json::to_string(line).unwrap_or_default()
        } else {
            line.text()
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }

    /// A header line (column names) for text output only.
    pub fn header(self, text: &str) {
        if !self.json {
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        }
    }
}
