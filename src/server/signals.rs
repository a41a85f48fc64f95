//! The signals that request a graceful shutdown, as Rocket's `shutdown` config names them
//! (`ctrlc` and, on Unix, `signals`; Rocket's defaults: Ctrl-C and SIGTERM).

use rocket::config::Shutdown as ShutdownConfig;
use rocket::Shutdown;

/// Spawns one task per configured signal; each asks for shutdown when it arrives.
#[cfg(unix)]
pub(super) fn watch(config: &ShutdownConfig, shutdown: Shutdown) {
    use rocket::config::Sig;
    use tokio::signal::unix::{signal, SignalKind};

    let mut wanted = config.signals.clone();
    if config.ctrlc {
        wanted.insert(Sig::Int);
    }
    for sig in wanted {
        let kind = match sig {
            Sig::Alrm => SignalKind::alarm(),
            Sig::Chld => SignalKind::child(),
            Sig::Hup => SignalKind::hangup(),
            Sig::Int => SignalKind::interrupt(),
            Sig::Io => SignalKind::io(),
            Sig::Pipe => SignalKind::pipe(),
            Sig::Quit => SignalKind::quit(),
            Sig::Term => SignalKind::terminate(),
            Sig::Usr1 => SignalKind::user_defined1(),
            Sig::Usr2 => SignalKind::user_defined2(),
        };
        match signal(kind) {
            Ok(mut stream) => {
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    while stream.recv().await.is_some() {
                        tracing::warn!("received {sig}: shutting down");
                        shutdown.clone().notify();
                    }
                });
            }
            Err(e) => tracing::warn!("cannot watch for {sig}: {e}"),
        }
    }
}

#[cfg(not(unix))]
pub(super) fn watch(config: &ShutdownConfig, shutdown: Shutdown) {
    if config.ctrlc {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                shutdown.notify();
            }
        });
    }
}
