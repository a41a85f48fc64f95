//! The `latchkey` server: logs to stderr (`RUST_LOG` filters), then serves the app
//! through `latchkey::server` (connection limits in front of Rocket's request handling).

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .init();
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
