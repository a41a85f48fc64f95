//! The `latchkey` server: logs to stderr (`RUST_LOG` filters), then launches the app.

use tracing_subscriber::EnvFilter;

#[rocket::launch]
fn rocket() -> _ {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .init();
    latchkey::app()
}
