//! The embedded backend: the same operations as the Lua scripts, each one critical
//! section over in-process maps (`state.rs`), one file per aggregate implementing its
//! trait. Expired entries are dropped when touched and swept every few thousand
//! writes, so memory stays bounded.

mod auth_codes;
mod ceremonies;
mod email_changes;
mod email_verification;
mod password_reset;
mod pending_sign_ins;
mod rate_limits;
mod sessions;
mod state;
mod tokens;
mod trusted_browsers;

use std::sync::{Arc, Mutex, MutexGuard};

use self::state::State;
use crate::store::error::{StoreError, StoreResult};
use crate::store::key_names::KeyNames;
use crate::support::metrics::StoreMetrics;

#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    keys: KeyNames,
    metrics: Option<StoreMetrics>,
}

impl MemoryStore {
    pub fn new(keys: KeyNames) -> Self {
        MemoryStore {
            state: Arc::new(Mutex::new(State::default())),
            keys,
            metrics: None,
        }
    }

    fn lock(&self) -> StoreResult<MutexGuard<'_, State>> {
        // A panic while holding the lock would leave the maps poisoned; refuse rather
        // than guess at a half-done change.
        self.state.lock().map_err(|_| StoreError::Poisoned)
    }

    /// The key builder under this store's prefix.
    pub fn key_names(&self) -> &KeyNames {
        &self.keys
    }

    /// The same maps under another key prefix.
    pub fn with_prefix(&self, prefix: &str) -> Self {
        MemoryStore {
            state: self.state.clone(),
            keys: KeyNames::new(prefix),
            metrics: self.metrics.clone(),
        }
    }

    pub(crate) fn metrics(&self) -> Option<&StoreMetrics> {
        self.metrics.as_ref()
    }

    pub(crate) fn set_metrics(&mut self, metrics: StoreMetrics) {
        self.metrics = Some(metrics);
    }

    pub async fn ping(&self) -> StoreResult<()> {
        self.lock().map(|_| ())
    }
}
