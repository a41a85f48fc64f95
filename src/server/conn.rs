//! Accepting connections and one connection's life: the slot it holds, the refusal
//! when none is free, hyper serving it, the idle watch and the shutdown path.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::activity::{idle_past, Activity, Busy, Watched};
use super::bridge;
use super::shared::Server;

/// Written to a connection refused because every slot is taken.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\n\
Content-Length: 47\r\n\r\nToo many open connections; try again shortly.\r\n";

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
