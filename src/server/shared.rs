//! What every connection shares: Rocket (through its local client), the limits and
//! hyper's HTTP/1 builder configured with them.

use std::sync::atomic::AtomicBool;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use rocket::local::asynchronous::Client;

use super::limits::{Limits, MAX_HEADER_BYTES};

/// Hyper's read buffer per connection; a head past `MAX_HEADER_BYTES` is refused first.
const MAX_BUF: usize = 2 * MAX_HEADER_BYTES;

/// What every connection shares: Rocket (through its local client), the limits and
/// hyper's configured HTTP/1 builder.
pub(super) struct Server {
    pub(super) client: Client,
    pub(super) limits: Limits,
    pub(super) http: http1::Builder,
    /// Set while new connections are being refused, so that is logged once per episode.
    pub(super) full: AtomicBool,
}

impl Server {
    pub(super) fn new(client: Client, limits: Limits) -> Server {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_header_size(MAX_HEADER_BYTES)
            .max_buf_size(MAX_BUF)
            .keep_alive(limits.keep_alive.is_some());
        Server {
            client,
            limits,
            http,
            full: AtomicBool::new(false),
        }
    }

    pub(super) fn into_client(self) -> Client {
        self.client
    }
}
