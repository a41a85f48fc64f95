//! Argon2id password hashing, off the async workers: each hash runs on a thread of its
//! own, on at most half the cores at a time (one on two cores), at a lowered scheduling
//! priority (nice [`HASHING_NICE`]), so a sign-in flood leaves the cores to page views
//! and API reads first and hashes with what they leave. An unknown account verifies a
//! fixed dummy hash, so it answers in the same time.
//!
//! A hash runs in a [`Slot`], and getting one is bounded three ways:
//! - a request waits at most [`SLOT_WAIT`] for it, then gets `HashError::Busy` (503
//!   with `Retry-After`) before anything was changed, so a queue of abandoned or hostile
//!   work cannot make every sign-in wait without end;
//! - a request whose client has closed its connection (`crate::support::presence`) gets no slot
//!   and stops waiting for one: nobody would read the answer;
//! - a new account's hash ([`Work::NewAccount`]) gives way to any waiting hash of an
//!   existing account, and new accounts hold at most half the slots (at least one), so a
//!   registration flood cannot starve sign-ins.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::support::presence;

/// The longest a request waits for a hashing slot; past it, `HashError::Busy`.
pub const SLOT_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Hasher {
    queue: Arc<Queue>,
    memory: Arc<MemoryPool>,
    dummy_hash: Arc<String>,
    /// Argon2 verifications run so far (known and unknown accounts alike).
    verifications: Arc<AtomicU64>,
    /// `/metrics`: the time each hash waited for a permit.
    queue_wait: Option<prometheus::Histogram>,
}

/// What a hash is for: an existing account's (a sign-in's check on the page or in the
/// password grant, a password change, a reset's new password), or a new account's.
/// Existing accounts are served first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    SignIn,
    NewAccount,
}

/// The hashing slots (one semaphore, FIFO) and the rule that lets password checks
/// past new accounts.
struct Queue {
    slots: Arc<Semaphore>,
    /// The share of the slots new accounts may hold.
    new_accounts: Arc<Semaphore>,
    /// Existing accounts' hashes waiting for a slot now.
    checks_waiting: AtomicUsize,
}

/// Counts a waiting existing account's hash for as long as it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Waiting(counter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A held slot; `share` is a new account's part of the new-account share.
struct Held {
    _slot: OwnedSemaphorePermit,
    _share: Option<OwnedSemaphorePermit>,
}

impl Queue {
    fn new(slots: usize) -> Queue {
        Queue {
            slots: Arc::new(Semaphore::new(slots)),
            new_accounts: Arc::new(Semaphore::new((slots / 2).max(1))),
            checks_waiting: AtomicUsize::new(0),
        }
    }

    async fn take(&self, work: Work) -> Result<Held, tokio::sync::AcquireError> {
        if work == Work::SignIn {
            let _waiting = Waiting::new(&self.checks_waiting);
            let slot = self.slots.clone().acquire_owned().await?;
            return Ok(Held {
                _slot: slot,
                _share: None,
            });
        }
        let share = self.new_accounts.clone().acquire_owned().await?;
        loop {
            let slot = self.slots.clone().acquire_owned().await?;
            if self.checks_waiting.load(Ordering::Acquire) == 0 {
                return Ok(Held {
                    _slot: slot,
                    _share: Some(share),
                });
            }
            // A check is queued behind us: the semaphore hands it this slot, and we
            // queue again behind it.
            drop(slot);
            tokio::task::yield_now().await;
        }
    }
}

/// A hashing slot, held while its hashes run (a reset or a password change checks and
/// hashes in one slot, so it cannot be refused half-way).
pub struct Slot {
    hasher: Hasher,
    _held: Held,
}

/// Argon2's working memory (19 MiB per hash with the default parameters), allocated once
/// per permit and reused. Allocating it per hash made glibc keep a copy in every thread's
/// arena: a sign-in flood grew the server to over 500 MiB.
#[derive(Default)]
struct MemoryPool(Mutex<Vec<Vec<Block>>>);

impl MemoryPool {
    fn with<T>(&self, blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let mut memory = self
            .0
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let answer = f(&mut memory[..blocks]);
        // Keep what new hashes need; an old hash with far larger parameters gets its
        // memory back to the system.
        if memory.len() <= 4 * new_hash_params().block_count() {
            if let Ok(mut free) = self.0.lock() {
                free.push(memory);
            }
        }
        answer
    }
}

/// The parameters new hashes get: OWASP's Argon2id minimum (m = 19 MiB, t = 2, p = 1).
fn new_hash_params() -> Params {
    Params::default()
}

fn hash_blocking(pool: &MemoryPool, password: &str) -> Result<String, HashError> {
    let params = new_hash_params();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_buf)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    pool.with(params.block_count(), |memory| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, memory)
    })?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out)?),
    };
    Ok(phc.to_string())
}

/// Verifies a PHC string of any Argon2 variant and parameters, in constant time.
fn verify_blocking(pool: &MemoryPool, password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    let computed = pool.with(params.block_count(), |memory| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, memory)
    });
    computed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("the hashing pool is closed")]
    Closed(#[from] tokio::sync::AcquireError),
    #[error("could not start a hashing thread")]
    Thread(#[source] std::io::Error),
    #[error("the hashing thread ended without an answer")]
    NoAnswer,
    #[error("Argon2 failed")]
    Argon2(#[from] argon2::Error),
    #[error("the hash could not be written as a PHC string")]
    Encoding(#[from] argon2::password_hash::Error),
    /// Every slot stayed taken for `SLOT_WAIT`: try again after the duration.
    #[error("every password-hashing slot is busy")]
    Busy(Duration),
    /// The client closed its connection before a slot was free.
    #[error("the client left before its password was hashed")]
    ClientGone,
}

/// The nice value a thread runs Argon2 at: under contention the kernel gives it about a
/// tenth of what a thread at nice 0 (the async workers, Redis) gets, and all of an idle
/// core. Raising one's own nice value needs no privilege.
pub const HASHING_NICE: i32 = 10;

/// Lowers the calling thread's priority to [`HASHING_NICE`] (Linux: nice is per
/// thread). Failing to is logged and changes nothing else.
fn lower_this_threads_priority() {
    use rustix::process::{getpriority_process, setpriority_process};
    let tid = Some(rustix::thread::gettid());
    match getpriority_process(tid) {
        Ok(nice) if nice >= HASHING_NICE => {}
        _ => {
            if let Err(e) = setpriority_process(tid, HASHING_NICE) {
                tracing::debug!(error = %e, "could not lower the hashing thread's priority");
            }
        }
    }
}

/// Hashes that may run at once: half the cores, at least one. Each holds a core and
/// 19 MiB of working memory while it runs.
pub fn hashing_permits(cores: usize) -> usize {
    (cores / 2).max(1)
}

impl Hasher {
    pub async fn new() -> Hasher {
        let permits = hashing_permits(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        );
        let memory = Arc::new(MemoryPool::default());
        let pool = memory.clone();
        let dummy = tokio::task::spawn_blocking(move || {
            hash_blocking(&pool, &crate::support::crypto::random_token())
        })
        .await
            .ok()
            .and_then(Result::ok)
            // A well-formed hash of a random string, used only if hashing at start fails.
            .unwrap_or_else(|| {
                "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$NvQk2M6cRkmBMdNn1T9eHL/FlPgOyHx/cr0tOv3Aq8g".into()
            });
        Hasher {
            queue: Arc::new(Queue::new(permits)),
            memory,
            dummy_hash: Arc::new(dummy),
            verifications: Arc::new(AtomicU64::new(0)),
            queue_wait: None,
        }
    }

    /// Records how long each hash waits for its slot into `wait`.
    pub fn observed_by(mut self, wait: prometheus::Histogram) -> Hasher {
        self.queue_wait = Some(wait);
        self
    }

    /// A slot for `work`, waiting at most [`SLOT_WAIT`] and no longer than the client.
    /// The wait of each slot given is recorded for `/metrics`.
    pub async fn slot(&self, work: Work) -> Result<Slot, HashError> {
        if presence::has_gone() {
            return Err(HashError::ClientGone);
        }
        let queued = std::time::Instant::now();
        let waited = tokio::select! {
            biased;
            () = presence::gone() => return Err(HashError::ClientGone),
            waited = tokio::time::timeout(SLOT_WAIT, self.queue.take(work)) => waited,
        };
        let held = waited.map_err(|_| HashError::Busy(SLOT_WAIT))??;
        if let Some(wait) = &self.queue_wait {
            wait.observe(queued.elapsed().as_secs_f64());
        }
        Ok(Slot {
            hasher: self.clone(),
            _held: held,
        })
    }

    /// How many Argon2 verifications have run: an unknown account costs exactly as
    /// many as a known one.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }
}

impl Slot {
    /// Runs `f` at [`HASHING_NICE`] on a thread of its own, which ends with it. Not on
    /// Tokio's blocking pool: a pool thread keeps its nice value, so whatever blocking
    /// work it was given next (an RSA key's generation, a file written by the mailer)
    /// ran at a tenth of a core under load. Starting a thread costs tens of
    /// microseconds; the hash, tens of milliseconds.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("latchkey-argon2".into())
            .spawn(move || {
                lower_this_threads_priority();
                let _ = answer.send(f());
            })
            .map_err(HashError::Thread)?;
        answered.await.map_err(|_| HashError::NoAnswer)
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = SecretString::from(password.to_string());
        let pool = self.hasher.memory.clone();
        self.run(move || hash_blocking(&pool, password.expose_secret()))
            .await?
    }

    /// Verifies against `hash`, or against the dummy hash when there is no account.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, HashError> {
        let password = SecretString::from(password.to_string());
        let known = hash.is_some();
        let hash = hash
            .map(str::to_string)
            .unwrap_or_else(|| (*self.hasher.dummy_hash).clone());
        self.hasher.verifications.fetch_add(1, Ordering::Relaxed);
        let pool = self.hasher.memory.clone();
        let ok = self
            .run(move || verify_blocking(&pool, password.expose_secret(), &hash))
            .await?;
        Ok(ok && known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[test]
    fn a_hashing_thread_runs_at_a_lower_priority_and_others_do_not() {
        use rustix::process::getpriority_process;
        let nice_of_this_thread = || getpriority_process(Some(rustix::thread::gettid()));
        let before = nice_of_this_thread().expect("getpriority");
        let hashed = std::thread::spawn(move || {
            lower_this_threads_priority();
            lower_this_threads_priority();
            nice_of_this_thread().expect("getpriority")
        })
        .join()
        .expect("thread");
        assert_eq!(hashed, HASHING_NICE.max(before));
        assert_eq!(nice_of_this_thread().expect("getpriority"), before);
    }

    #[test]
    fn blocking_work_after_a_hash_keeps_its_own_priority() {
        use rustix::process::getpriority_process;
        let nice = || getpriority_process(Some(rustix::thread::gettid())).expect("getpriority");
        // One blocking thread: a task after a hash gets the thread the hash had, if it ran
        // there (an RSA key made after a sign-in then ran at nice 10).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let before = nice();
        runtime.block_on(async {
            let hasher = Hasher::new().await;
            let slot = hasher.slot(Work::SignIn).await.expect("a slot");
            assert_eq!(slot.run(nice).await.expect("ran"), HASHING_NICE.max(before));
            let hash = slot.hash("a password").await.expect("hashed");
            assert!(slot
                .verify("a password", Some(&hash))
                .await
                .expect("verified"));
            let after = tokio::task::spawn_blocking(nice).await.expect("ran");
            assert_eq!(
                after, before,
                "a blocking task after hashes runs at nice {after}"
            );
        });
    }

    #[test]
    fn hashing_leaves_half_the_cores_to_requests() {
        let permits: Vec<usize> = [1, 2, 3, 4, 8].into_iter().map(hashing_permits).collect();
        assert_eq!(permits, [1, 1, 1, 2, 4]);
    }

    #[test]
    fn our_hashes_are_standard_phc_strings_and_standard_hashes_verify() {
        let pool = MemoryPool::default();
        let ours = hash_blocking(&pool, "correct horse battery staple").expect("hash");
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).expect("PHC");
        assert!(Argon2::default()
            .verify_password(b"correct horse battery staple", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"correct horse battery stapler", &parsed)
            .is_err());

        // A hash made elsewhere, with other parameters and another variant.
        let theirs = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(4096, 3, 1, None).expect("params"),
        )
        .hash_password(b"hunter2 hunter2", &SaltString::generate(&mut OsRng))
        .expect("hash")
        .to_string();
        assert!(verify_blocking(&pool, "hunter2 hunter2", &theirs));
        assert!(!verify_blocking(&pool, "hunter2 hunter3", &theirs));
        assert!(verify_blocking(
            &pool,
            "correct horse battery staple",
            &ours
        ));
        assert!(!verify_blocking(&pool, "", &ours));
    }

    #[test]
    fn the_working_memory_is_reused_not_reallocated() {
        let pool = MemoryPool::default();
        for _ in 0..3 {
            hash_blocking(&pool, "correct horse battery staple").expect("hash");
        }
        let free = pool.0.lock().expect("lock");
        assert_eq!(free.len(), 1, "one buffer serves one hash at a time");
        assert_eq!(free[0].len(), new_hash_params().block_count());
    }

    #[test]
    fn malformed_hashes_never_verify() {
        let pool = MemoryPool::default();
        for bad in [
            "",
            "plain",
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ",
            "$argon2id$v=99$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$NvQk2M6cRkmBMdNn1T9eHL/FlPgOyHx/cr0tOv3Aq8g",
            "$argon2id$v=19$m=1,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$NvQk2M6cRkmBMdNn1T9eHL/FlPgOyHx/cr0tOv3Aq8g",
            "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
        ] {
            assert!(!verify_blocking(&pool, "anything", bad), "{bad}");
        }
    }

    /// Spawns a task that takes a slot of `queue` for `work`, records `work` in
    /// `order` once it has it, and holds it briefly.
    fn take_and_note(
        queue: &Arc<Queue>,
        work: Work,
        order: &Arc<Mutex<Vec<Work>>>,
    ) -> tokio::task::JoinHandle<()> {
        let (queue, order) = (queue.clone(), order.clone());
        tokio::spawn(async move {
            let held = queue.take(work).await.expect("a slot");
            order.lock().expect("lock").push(work);
            tokio::time::sleep(Duration::from_millis(5)).await;
            drop(held);
        })
    }

    #[tokio::test]
    async fn a_waiting_password_check_goes_before_a_new_account_queued_earlier() {
        let queue = Arc::new(Queue::new(1));
        let busy = queue.take(Work::SignIn).await.expect("the free slot");
        let order = Arc::new(Mutex::new(Vec::new()));
        let new_account = take_and_note(&queue, Work::NewAccount, &order);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let check = take_and_note(&queue, Work::SignIn, &order);
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(busy);
        new_account.await.expect("task");
        check.await.expect("task");
        assert_eq!(
            *order.lock().expect("lock"),
            [Work::SignIn, Work::NewAccount]
        );
    }

    #[tokio::test]
    async fn new_accounts_hold_at_most_half_the_slots() {
        let queue = Queue::new(4);
        let _a = queue.take(Work::NewAccount).await.expect("slot");
        let _b = queue.take(Work::NewAccount).await.expect("slot");
        let third = tokio::time::timeout(Duration::from_millis(50), queue.take(Work::NewAccount));
        assert!(third.await.is_err(), "a third new account waits");
        let check = tokio::time::timeout(Duration::from_millis(50), queue.take(Work::SignIn));
        assert!(check.await.is_ok(), "a check takes a free slot at once");
    }
}
