//! One connection's life: the slot it holds, hyper's HTTP/1 settings, the idle watch
//! and the shutdown path.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use rocket::local::asynchronous::Client;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{bridge, Limits, MAX_HEADER_BYTES};

/// Written to a connection refused because every slot is taken.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\n\
Content-Length: 47\r\n\r\nToo many open connections; try again shortly.\r\n";

/// Hyper's read buffer per connection; a head past `MAX_HEADER_BYTES` is refused first.
const MAX_BUF: usize = 2 * MAX_HEADER_BYTES;

/// What every connection shares: Rocket (through its local client), the limits and
/// hyper's configured HTTP/1 builder.
pub(super) struct Server {
    pub(super) client: Client,
    pub(super) limits: Limits,
    http: http1::Builder,
    /// Set while new connections are being refused, so that is logged once per episode.
    full: AtomicBool,
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

/// Accepts connections until `shutdown`; each gets a slot or is refused at once.
pub(super) async fn accept_until(
    listener: &TcpListener,
    server: &Arc<Server>,
    slots: &Arc<Semaphore>,
    shutdown: rocket::Shutdown,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.clone() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => match slots.clone().try_acquire_owned() {
                Ok(slot) => {
                    server.full.store(false, Ordering::Relaxed);
                    let conn = serve(stream, peer, server.clone(), slot, shutdown.clone());
                    tokio::spawn(conn);
                }
                Err(_) => refuse(&stream, server),
            },
            Err(e) if is_per_connection(&e) => {}
            Err(e) => {
                // Out of file descriptors or memory: wait for some to be given back.
                tracing::warn!("accepting a connection failed: {e}; trying again in 250 ms");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Answers `503` without waiting (what fits in the socket buffer) and closes.
fn refuse(stream: &TcpStream, server: &Server) {
    if !server.full.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "max_connections ({}) reached: refusing new connections",
            server.limits.max_connections
        );
    }
    let _ = stream.try_write(REFUSAL);
}

/// Serves one connection until it ends, idles past `keep_alive`, or shutdown ends it.
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    server: Arc<Server>,
    _slot: OwnedSemaphorePermit,
    shutdown: rocket::Shutdown,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let limits = server.limits;
    let service = {
        let (server, activity) = (server.clone(), activity.clone());
        hyper::service::service_fn(move |req| {
            let busy = Busy::start(activity.clone());
            bridge::handle(server.clone(), peer, req, busy)
        })
    };
    let conn = server.http.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = idle_past(&activity, limits.keep_alive) => return,
        _ = shutdown => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(limits.shutdown_wait, conn).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = result {
        // Timeouts, oversized heads and clients that leave: routine, and an attacker
        // could fill the log with them.
        tracing::debug!("connection from {peer} ended: {e}");
    }
}

/// When the connection last received bytes, and whether a request is in progress.
struct Activity {
    start: Instant,
    /// Milliseconds after `start` of the last byte read or the last response finished.
    last: AtomicU64,
    busy: AtomicUsize,
    served: AtomicBool,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            served: AtomicBool::new(false),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    /// How long the connection has been idle between requests; None while a request
    /// is in progress or before the first one (the header timeout covers that).
    fn idle_for(&self) -> Option<Duration> {
        if self.busy.load(Ordering::Acquire) > 0 || !self.served.load(Ordering::Acquire) {
            return None;
        }
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        Some(self.start.elapsed().saturating_sub(last))
    }
}

/// Resolves once the connection has been idle for `keep_alive`; never without one.
async fn idle_past(activity: &Activity, keep_alive: Option<Duration>) {
    let Some(keep_alive) = keep_alive else {
        return std::future::pending().await;
    };
    loop {
        match activity.idle_for() {
            Some(idle) if idle >= keep_alive => return,
            Some(idle) => tokio::time::sleep(keep_alive - idle).await,
            None => tokio::time::sleep(keep_alive).await,
        }
    }
}

/// Marks a request in progress from its head until its response body is dropped.
pub(super) struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Busy {
        activity.busy.fetch_add(1, Ordering::AcqRel);
        activity.touch();
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.served.store(true, Ordering::Release);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The socket, noting each read that brings bytes.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
