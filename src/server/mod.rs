//! The HTTP server: accepts connections, bounds them, and hands each request to Rocket.
//!
//! Rocket 0.5 serves with a hyper builder it configures itself (no header timeout, a
//! ~400 KB header buffer, no connection cap) and offers no way to change it or to give
//! it a listener of our own. So this module runs the socket side with hyper directly and
//! leaves everything after the request head to Rocket: each request is dispatched
//! through Rocket's public `local::asynchronous::Client` with the socket's peer address
//! as `remote()`, so routes, guards, fairings, catchers and `ClientIp` see exactly what
//! they see under `Rocket::launch`. ARCHITECTURE.md ("Decisions": the server loop) says why.
//!
//! What the loop enforces, per connection:
//! - the request head (start line and headers) complete within `header_read_timeout`
//!   seconds, else the socket is closed (hyper's `header_read_timeout`);
//! - a head of at most [`MAX_HEADER_BYTES`], else `431` and close;
//! - an idle kept-alive connection closed after Rocket's `keep_alive` seconds;
//! - a request body that stalls for `header_read_timeout` is dropped; one that is not
//!   complete `body_read_timeout` after its first byte, however steadily it trickles,
//!   is answered `408` and the connection closed; at most one byte past Rocket's
//!   largest data limit is read (the route then answers `413`);
//! - a method is read case-sensitively (`get` is not `GET`): one Rocket does not know
//!   is answered `400`;
//! - at most `max_connections` open connections (capped further by the process's file
//!   descriptor limit); past it a new connection gets a `503` and is closed at once.
//!
//! What it does not do, where `Rocket::launch` would (none of it is used here):
//! - **protocol upgrades**: a route returning `101 Switching Protocols` (WebSockets,
//!   `rocket_ws`) gets no upgraded connection, since the local client has no socket to
//!   hand over;
//! - **streamed request bodies**: a body is read whole before the route runs (bounded
//!   as above), so a route cannot start on the first bytes of a large upload;
//! - **HTTP/2** and **TLS**: HTTP/1.1 only, plain; both belong to the proxy in front.
//!
//! Its files: `conn.rs` (accepting, the slot, one connection's life), `bridge.rs` (one
//! request: hyper to Rocket and back), `shared.rs` (what every connection shares),
//! `activity.rs` (the idle watch), `limits.rs`, `signals.rs` (shutdown signals).
//!
//! The exit: Rocket 0.6 serves on a listener of the app's choosing (its `Listener`
//! trait, `Rocket::launch_on`). When it ships, this module becomes such a listener,
//! which bounds connections (the cap, the head timeout, the idle watch), `launch` calls
//! `launch_on` with it, and `bridge.rs` goes;
//! until then `rocket` is pinned to `=0.5.2` in `Cargo.toml`, because the loop depends
//! on how that version dispatches a local request.

mod activity;
mod bridge;
mod conn;
mod limits;
mod shared;
mod signals;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rocket::local::asynchronous::Client;
use rocket::{Build, Rocket};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use self::bridge::{request_cookies, MAX_COOKIES};
use self::limits::Limits;
pub use self::limits::MAX_HEADER_BYTES;
use self::shared::Server;

/// File descriptors kept for everything but client connections (Redis and SQLite
/// pools, mail, logs, the listener).
const FD_RESERVE: u64 = 256;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// Rocket refused to start (a failed fairing: a bad setting, an unreachable store);
    /// `pretty_print()` logs the details.
    #[error("{}", .0.kind())]
    Rocket(Box<rocket::Error>),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the settings stage is not attached")]
    NoSettings,
}

impl From<rocket::Error> for LaunchError {
    fn from(e: rocket::Error) -> LaunchError {
        LaunchError::Rocket(Box::new(e))
    }
}

/// Ignites the app, listens on Rocket's `address`:`port` and serves until shutdown
/// (Ctrl-C, a configured signal, or `rocket::Shutdown::notify`).
pub async fn launch(rocket: Rocket<Build>) -> Result<(), LaunchError> {
    let rocket = rocket.ignite().await?;
    let mut limits = Limits::of(&rocket).ok_or(LaunchError::NoSettings)?;
    limits.max_connections = fit_to_fd_limit(limits.max_connections);
    let addr = SocketAddr::new(rocket.config().address, rocket.config().port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| LaunchError::Bind { addr, source })?;
    let shutdown_config = rocket.config().shutdown.clone();
    let client = Client::untracked(rocket).await?;
    signals::watch(&shutdown_config, client.rocket().shutdown());
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(
        "listening on http://{local} (header_read_timeout {:?}, body_read_timeout {:?}, keep_alive {:?}, max_connections {})",
        limits.header_read_timeout,
        limits.body_read_timeout,
        limits.keep_alive,
        limits.max_connections
    );
    serve(listener, client, limits).await;
    Ok(())
}

/// Accepts until shutdown, then waits for open connections (up to `shutdown_grace` and a second) and
/// runs Rocket's shutdown fairings.
async fn serve(listener: TcpListener, client: Client, limits: Limits) {
    let shutdown = client.rocket().shutdown();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let server = Arc::new(Server::new(client, limits));
    conn::accept_until(&listener, &server, &slots, shutdown).await;
    drop(listener);

    tracing::info!("shutdown requested; waiting for open connections");
    let wait = limits.shutdown_wait + Duration::from_secs(1);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(wait, async {
        let _all_slots = slots.acquire_many(all).await;
        // A handler may still be running for a connection that is gone.
        while Arc::strong_count(&server) > 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    match (drained, Arc::try_unwrap(server)) {
        (Ok(()), Ok(server)) => {
            server.into_client().terminate().await;
            tracing::info!("shutdown complete");
        }
        _ => tracing::warn!("shutdown: requests still running after shutdown_grace"),
    }
}

/// Raises the soft limit on open files to the hard limit, and lowers `wanted` so that
/// client connections can never use up the descriptors the app itself needs.
fn fit_to_fd_limit(wanted: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!("could not raise the open-file limit: {e}");
        }
        limit = getrlimit(Resource::Nofile);
    }
    let Some(fds) = limit.current else {
        return wanted;
    };
    let room = usize::try_from(fds.saturating_sub(FD_RESERVE).max(1)).unwrap_or(usize::MAX);
    if room < wanted {
        tracing::warn!(
            "max_connections lowered from {wanted} to {room}: the open-file limit is {fds} \
             (raise it with `ulimit -n` or LimitNOFILE=)"
        );
        return room;
    }
    wanted
}
