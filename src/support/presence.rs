//! Whether the client of the request being served is still waiting for its answer.
//!
//! The server loop (`src/server/bridge.rs`) runs each dispatch inside [`watching`],
//! holding the [`Waiting`] half for as long as hyper waits for the response; hyper drops
//! it when the client closes its connection mid-request. Work that is only worth doing
//! for someone who will read the answer (Argon2, in `accounts::Hasher`) checks
//! [`has_gone`] before it starts and stops queueing when [`gone`] fires. The signal is
//! never a reason to stop half-way through a change: it is read only before work begins.
//!
//! A request that did not come through the server loop (Rocket's local client, as the
//! tests use it) has no signal: its client never goes.

use std::future::Future;

use tokio::sync::watch;

tokio::task_local! {
    static PRESENCE: Presence;
}

/// The request's side: tells whether the client has gone.
#[derive(Clone)]
pub struct Presence(watch::Receiver<()>);

/// The server's side, held while the client waits; dropping it means the client left.
pub struct Waiting {
    _sender: watch::Sender<()>,
}

/// A new pair for one request.
pub fn pair() -> (Waiting, Presence) {
    let (tx, rx) = watch::channel(());
    (Waiting { _sender: tx }, Presence(rx))
}

/// Runs `work` (a request's dispatch) with `presence` visible to everything it awaits
/// in the same task.
pub async fn watching<F: Future>(presence: Presence, work: F) -> F::Output {
    PRESENCE.scope(presence, work).await
}

/// True once the client of the current request has gone; false when nobody watches.
pub fn has_gone() -> bool {
    PRESENCE
        .try_with(|p| p.0.has_changed().is_err())
        .unwrap_or(false)
}

/// Resolves when the client of the current request goes; never, when nobody watches.
pub async fn gone() {
    let Ok(mut rx) = PRESENCE.try_with(|p| p.0.clone()) else {
        return std::future::pending().await;
    };
    // Nothing is ever sent: `changed` only returns, with an error, when the sender drops.
    while rx.changed().await.is_ok() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_signal_fires_when_the_server_side_drops() {
        let (waiting, presence) = pair();
        let seen = watching(presence, async {
            assert!(!has_gone());
            drop(waiting);
            gone().await;
            has_gone()
        })
        .await;
        assert!(seen);
    }

    #[tokio::test]
    async fn without_a_watch_the_client_never_goes() {
        assert!(!has_gone());
        let waited = tokio::time::timeout(std::time::Duration::from_millis(20), gone()).await;
        assert!(waited.is_err());
    }
}
