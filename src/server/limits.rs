//! What bounds every connection: the largest request head, and the limits taken from
//! the settings and Rocket's config.

use std::time::Duration;

use rocket::{Ignite, Rocket};

use crate::config::Settings;

/// The largest request head (start line and headers) read; past it, `431`.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// What bounds every connection, from the settings and Rocket's config.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    /// A request body's deadline, from its first byte.
    pub body_read_timeout: Duration,
    /// `None` when Rocket's `keep_alive` is 0: one request per connection.
    pub keep_alive: Option<Duration>,
    pub max_connections: usize,
    /// Bytes of a request body read before dispatch: Rocket's largest data limit + 1.
    pub max_body: usize,
    /// The `shutdown_grace` setting: how long requests in flight may finish after a
    /// shutdown signal.
    pub shutdown_wait: Duration,
}

impl Limits {
    /// `None` when the settings stage is not attached.
    pub(super) fn of(rocket: &Rocket<Ignite>) -> Option<Limits> {
        let settings = rocket.state::<Settings>()?;
        let config = rocket.config();
        let max_body = [
            "form",
            "data-form",
            "file",
            "string",
            "bytes",
            "json",
            "msgpack",
        ]
        .iter()
        .filter_map(|name| config.limits.get(name))
        .map(|limit| limit.as_u64())
        .max()
        .unwrap_or(1 << 20);
        Some(Limits {
            header_read_timeout: settings.server.header_read_timeout,
            body_read_timeout: settings.server.body_read_timeout,
            keep_alive: (config.keep_alive > 0)
                .then(|| Duration::from_secs(config.keep_alive.into())),
            max_connections: settings.server.max_connections as usize,
            max_body: usize::try_from(max_body).unwrap_or(usize::MAX - 1) + 1,
            shutdown_wait: settings.server.shutdown_grace,
        })
    }
}
