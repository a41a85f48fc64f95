//! Connecting the store the settings name (Redis, a Redis Cluster, or the embedded
//! in-process store), for the server's stage and the command line.

use rocket::fairing::AdHoc;

use super::error::StoreResult;
use super::handle::Store;
use super::key_names::KeyNames;
use super::memory::MemoryStore;
use super::redis::RedisStore;
use crate::config::{Settings, StorageSettings};
use crate::support::metrics::Metrics;
use crate::support::report::Report;

/// Connects the configured store and manages it.
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Session store", |rocket| async move {
        let Some(settings) = rocket.state::<Settings>() else {
            return Err(rocket);
        };
        match connect(
            &settings.storage,
            rocket.figment().profile().as_str() == "debug",
        )
        .await
        {
            Ok(mut store) => {
                if let Some(metrics) = rocket.state::<Metrics>() {
                    store = store.observed_by(metrics.store.clone());
                }
                tracing::info!(backend = store.backend_name(), "session store ready");
                Ok(rocket.manage(store))
            }
            Err(msg) => {
                tracing::error!("{msg}");
                eprintln!("latchkey: {msg}");
                Err(rocket)
            }
        }
    })
}

/// How many call budgets the first ping at start gets. A Redis that is there but slow to
/// answer a new connection's first round trip (a loaded machine: one budget, 900 ms, was
/// not always enough) is not taken for one that is not there; a refused connection
/// still fails at once.
const START_PINGS: u32 = 3;

/// The start's ping: again after a timeout (ours or the client's), up to [`START_PINGS`]
/// tries.
async fn first_ping(store: &RedisStore) -> StoreResult<()> {
    let mut tries = 1;
    loop {
        match store.ping().await {
            Err(e) if e.is_timeout() && tries < START_PINGS => tries += 1,
            answer => return answer,
        }
    }
}

/// Connects the store `settings` name (the server's stage, and the command line).
/// With `redis_url` unset, a Redis that does not answer at the default address is
/// replaced by the embedded store when `fall_back_to_memory`, else an error.
pub async fn connect(
    settings: &StorageSettings,
    fall_back_to_memory: bool,
) -> Result<Store, String> {
    let keys = KeyNames::new(&settings.key_prefix);
    if let Some(nodes) = &settings.redis_cluster_nodes {
        return RedisStore::connect_cluster(nodes, keys)
            .await
            .map(Store::Redis)
            .map_err(|e| format!("setting `redis_cluster_nodes`: {}", Report(&e)));
    }
    match settings.redis_url.as_deref() {
        Some("memory") => Ok(Store::Memory(MemoryStore::new(keys))),
        Some(url) => {
            let store = RedisStore::connect(url, keys)
                .map_err(|e| format!("invalid setting `redis_url`: {}", Report(&e)))?;
            first_ping(&store).await.map_err(|e| {
                format!(
                    "setting `redis_url`: cannot reach Redis at {url}: {}",
                    Report(&e)
                )
            })?;
            Ok(Store::Redis(store))
        }
        None => {
            let url = "redis://127.0.0.1:6379";
            let store =
                RedisStore::connect(url, keys.clone()).map_err(|e| Report(&e).to_string())?;
            match first_ping(&store).await {
                Ok(()) => Ok(Store::Redis(store)),
                Err(e) if fall_back_to_memory => {
                    tracing::warn!(
                        "no Redis answers at {url} ({}); using the embedded in-process store: \
                         sessions will not survive a restart",
                        Report(&e)
                    );
                    Ok(Store::Memory(MemoryStore::new(keys)))
                }
                Err(e) => Err(format!(
                    "setting `redis_url`: cannot reach Redis at {url} (the release default): {}",
                    Report(&e)
                )),
            }
        }
    }
}
