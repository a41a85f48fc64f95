//! Why the store did not answer, and why a Redis store could not be set up.

use std::time::Duration;

use thiserror::Error;

/// Why the store did not answer. Every variant is "unavailable" to a request (503);
/// the cause is kept for the log.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("a Redis command failed")]
    Command(#[from] ::redis::RedisError),
    #[error("Redis answered with an unreadable value")]
    Parse(#[from] ::redis::ParsingError),
    #[error("unexpected reply from {script}: {reply}")]
    Reply { script: &'static str, reply: String },
    #[error("the embedded store was left half-changed by a panic")]
    Poisoned,
}

/// Why a Redis store could not be set up (a bad URL).
#[derive(Debug, Error)]
pub enum ConnectError {
    #[error("not a usable Redis URL")]
    Url(#[source] ::redis::RedisError),
    #[error("cannot reach the Redis Cluster")]
    Cluster(#[source] ::redis::RedisError),
}

impl StoreError {
    /// Redis took too long: our call budget, or the client's own connect or response
    /// timeout, ran out.
    pub(super) fn is_timeout(&self) -> bool {
        match self {
            StoreError::Timeout(_) => true,
            StoreError::Command(e) => e.is_timeout(),
            _ => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
