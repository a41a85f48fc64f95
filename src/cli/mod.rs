//! The operator's command line, in the server's own binary: `latchkey` alone serves;
//! `latchkey users …` looks at and acts on accounts (`users.rs`), `latchkey clients …`
//! and `latchkey keys rotate` manage the apps and the keys that sign their tokens
//! (`clients.rs`). Each opens what it needs as the server would (`parts.rs`) and
//! prints through `Output` (`output.rs`). It reads the same
//! settings as the server (`Rocket.toml`, `LATCHKEY_*`, the same checks) and works on
//! the same database and Redis, so it acts on what running servers see, at once.
//! Results go to stdout (text, or one JSON object a line with `--json`); errors to
//! stderr as `latchkey: …`, with exit code 1.

mod clients;
mod output;
mod parts;
mod users;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use self::output::Output;
use self::parts::{open_accounts, CliError, Parts};
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
