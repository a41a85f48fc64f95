//! The `latchkey` binary. Without a command it is the server: logs (`RUST_LOG`
//! filters), then the app served through `latchkey::server` (connection limits in
//! front of Rocket's request handling). With one (`latchkey users …`) it is the
//! operator's command line (`latchkey::cli`), which logs only warnings, to stderr, so
//! its stdout holds nothing but results.

use std::process::ExitCode;

use clap::Parser;
use latchkey::cli::Cli;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: a request allocates and frees a hundred or so
/// small short-lived blocks on two worker threads; with glibc `GET /api/v1/me` cost
/// the server 38-47 µs of CPU, with mimalloc 31-35 (ARCHITECTURE.md, "Decisions": mimalloc).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        init_logs("info");
        return serve();
    };
    init_logs("warn");
    latchkey::cli::run(command)
}

fn init_logs(default_level: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
}

fn serve() -> ExitCode {
    // Rocket's runtime, sized from Rocket's config (`workers`, `max_blocking`).
    rocket::async_main(async {
        match latchkey::server::launch(latchkey::app()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                if let latchkey::server::LaunchError::Rocket(rocket) = &e {
                    rocket.pretty_print();
                }
                eprintln!("latchkey: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
