//! Argon2id password hashing, off the async workers: each hash runs on the blocking
//! pool, at most one per core at a time, so a sign-in flood cannot starve page views.
//! An unknown account verifies a fixed dummy hash, so it answers in the same time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    dummy_hash: Arc<String>,
    /// Argon2 verifications run so far (known and unknown accounts alike).
    verifications: Arc<AtomicU64>,
}

fn hash_blocking(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl Hasher {
    pub async fn new() -> Hasher {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let dummy = tokio::task::spawn_blocking(|| hash_blocking(&crate::crypto::random_token()))
            .await
            .ok()
            .and_then(Result::ok)
            // A well-formed hash of a random string, used only if hashing at start fails.
            .unwrap_or_else(|| {
                "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$NvQk2M6cRkmBMdNn1T9eHL/FlPgOyHx/cr0tOv3Aq8g".into()
            });
        Hasher {
            permits: Arc::new(Semaphore::new(cores)),
            dummy_hash: Arc::new(dummy),
            verifications: Arc::new(AtomicU64::new(0)),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| HashError(e.to_string()))
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = SecretString::from(password.to_string());
        self.run(move || hash_blocking(password.expose_secret()))
            .await?
            .map_err(HashError)
    }

    /// How many Argon2 verifications have run: an unknown account costs exactly as
    /// many as a known one.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Verifies against `hash`, or against the dummy hash when there is no account.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, HashError> {
        let password = SecretString::from(password.to_string());
        let known = hash.is_some();
        let hash = hash
            .map(str::to_string)
            .unwrap_or_else(|| (*self.dummy_hash).clone());
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let ok = self
            .run(move || verify_blocking(password.expose_secret(), &hash))
            .await?;
        Ok(ok && known)
    }
}
