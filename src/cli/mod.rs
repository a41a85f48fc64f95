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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{clients, Cli, Command};

    /// What `latchkey ARGS…` asks to remove, and whether as JSON lines.
    fn removal(args: &[&str]) -> Result<(String, bool), String> {
        let argv = std::iter::once("latchkey").chain(args.iter().copied());
        match Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .command
        {
            Some(Command::Clients {
                json,
                action: clients::Action::Remove { client_id },
            }) => Ok((client_id, json)),
            other => Err(format!("not a removal: {other:?}")),
        }
    }

    /// About one client id in 64 made before ids stopped starting with `-` does: it is
    /// a value, never an option, wherever `--json` stands.
    #[test]
    fn a_client_id_starting_with_a_hyphen_is_the_id_to_remove() {
        for id in [
            "-hQ2mX9Z3rT0aB1cD2eF3g",
            "--jsonAbCdEfGhIjKlMnOp",
            "-",
            "plainId",
        ] {
            assert_eq!(
                removal(&["clients", "remove", id]),
                Ok((id.to_string(), false))
            );
            assert_eq!(
                removal(&["clients", "remove", id, "--json"]),
                Ok((id.to_string(), true))
            );
            assert_eq!(
                removal(&["clients", "--json", "remove", id]),
                Ok((id.to_string(), true))
            );
            assert_eq!(
                removal(&["clients", "remove", "--json", id]),
                Ok((id.to_string(), true))
            );
            assert_eq!(
                removal(&["clients", "remove", "--", id]),
                Ok((id.to_string(), false))
            );
        }
        assert!(removal(&["clients", "remove"]).is_err(), "an id is needed");
    }
}
