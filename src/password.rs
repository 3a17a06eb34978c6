//! Password hashes, computed off the async runtime and under a cap: Argon2id, or
//! bcrypt as Laravel writes it (cost 12, `$2y$`), for new and changed passwords;
//! both verified whichever is configured, so one users table serves both apps.
//!
//! Each hash takes about 19 MiB and a core's worth of time, so a flood of sign-ins
//! must not start them all at once: [`Hasher`] runs at most N at a time, lets a
//! short queue wait, and turns everyone beyond it away at once ([`HashError::Busy`],
//! a 503 with Retry-After on the page) instead of piling up memory and latency.
//!
//! The hashes run on N long-lived threads of their own, each reusing one Argon2
//! working memory for every hash. Allocating and freeing 19 MiB per hash (what
//! argon2's own `hash_password` does) on tokio's blocking pool cost 363 MiB peak
//! for 18 hashes in the flood benchmark: every new thread kept its own freed copy,
//! and freeing a block that large raises glibc's mmap threshold for the whole
//! process, so other large buffers stay resident too.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use std::cell::RefCell;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed")]
    Failed,
    #[error("too many passwords are being checked at once")]
    Busy,
}

/// How new and changed passwords are hashed (`PASSWORD_HASHER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordScheme {
    Argon2id,
    /// Cost 12 with the `$2y$` prefix: what Laravel's `Hash::make` writes.
    Bcrypt,
}

impl PasswordScheme {
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "argon2id" => Some(PasswordScheme::Argon2id),
            "bcrypt" => Some(PasswordScheme::Bcrypt),
            _ => None,
        }
    }
}

/// Laravel's default bcrypt cost (`BCRYPT_ROUNDS`).
const BCRYPT_COST: u32 = 12;

/// Waiters allowed per running hash, and how long one may wait.
const QUEUE_PER_SLOT: usize = 4;
const QUEUE_WAIT: Duration = Duration::from_secs(3);

type Job = Box<dyn FnOnce() + Send>;

/// The cap on concurrent hashing, shared by every request of one process.
#[derive(Clone, Debug)]
pub struct Hasher {
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    /// Hashes run at once: the threads, and the slots.
    concurrency: usize,
    queue: usize,
    /// To the hashing threads; they end when the last `Hasher` clone is dropped.
    jobs: mpsc::Sender<Job>,
    scheme: PasswordScheme,
}

impl Hasher {
    /// At most `concurrency` hashes at once (at least one), on as many threads;
    /// new hashes made with `scheme`.
    pub fn new(concurrency: usize, scheme: PasswordScheme) -> Self {
        let concurrency = concurrency.max(1);
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..concurrency {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{n}"))
                .spawn(move || {
                    loop {
                        let job = receiver.lock().map(|r| r.recv());
                        match job {
                            Ok(Ok(job)) => job(),
                            _ => break,
                        }
                    }
                })
                .expect("spawn a password hashing thread");
        }
        Hasher {
            slots: Arc::new(Semaphore::new(concurrency)),
            waiting: Arc::new(AtomicUsize::new(0)),
            concurrency,
            queue: concurrency * QUEUE_PER_SLOT,
            jobs,
            scheme,
        }
    }

    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        match self.scheme {
            PasswordScheme::Argon2id => self.run(move || hash_now(&password)).await?,
            PasswordScheme::Bcrypt => self.run(move || bcrypt_now(&password)).await?,
        }
    }

    /// Verifies against the stored hash, or against a fixed dummy hash when there is
    /// no such user, so both cases take the same time.
    pub async fn verify(
        &self,
        password: SecretString,
        stored_hash: Option<String>,
    ) -> Result<bool, HashError> {
        let dummy = match self.scheme {
            PasswordScheme::Argon2id => DUMMY_HASH,
            PasswordScheme::Bcrypt => DUMMY_BCRYPT_HASH,
        };
        self.run(move || verify_now(&password, stored_hash.as_deref(), dummy))
            .await
    }

    /// Runs `work` on a hashing thread once a slot is free. The slot goes with
    /// the work and is freed when the hash finishes, not when the caller stops
    /// waiting: a client that hangs up cannot leave hashes queued beyond the cap.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let slot = self.slot().await?;
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let output = work();
                // The slot is free before the caller hears back, so whoever is
                // told the hash is done never finds its slot still taken.
                drop(slot);
                let _ = done.send(output);
            }))
            .map_err(|_| HashError::Failed)?;
        result.await.map_err(|_| HashError::Failed)
    }

    /// A free slot, or a place in the queue, or `Busy`.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, HashError> {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(slot);
        }
        let Some(_place) = QueuePlace::take(&self.waiting, self.queue) else {
            crate::metrics::hasher_busy();
            return Err(HashError::Busy);
        };
        match tokio::time::timeout(QUEUE_WAIT, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Ok(slot),
            Ok(Err(_closed)) => Err(HashError::Failed),
            Err(_elapsed) => {
                crate::metrics::hasher_busy();
                Err(HashError::Busy)
            }
        }
    }

    /// Hashes running or handed to the threads, and requests queued for a slot.
    pub fn load(&self) -> (usize, usize) {
        (
            self.concurrency - self.slots.available_permits(),
            self.waiting.load(Ordering::SeqCst),
        )
    }
}

/// A place in the queue for a slot, given back however its waiter ends: with a
/// slot, on timeout, or dropped because the client hung up.
struct QueuePlace<'a>(&'a AtomicUsize);

impl<'a> QueuePlace<'a> {
    fn take(waiting: &'a AtomicUsize, queue: usize) -> Option<Self> {
        if waiting.fetch_add(1, Ordering::SeqCst) >= queue {
            waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(QueuePlace(waiting))
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

thread_local! {
    /// The working memory of the hashes run on this thread, kept between them.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Computes an Argon2 output in this thread's kept memory. A hash stored with a
/// larger memory cost than ours gets a buffer of its own, not a larger kept one.
fn compute(
    argon2: &Argon2<'_>,
    password: &SecretString,
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let blocks = argon2.params().block_count();
    let password = password.expose_secret().as_bytes();
    if blocks > Params::default().block_count() {
        let mut memory = vec![Block::default(); blocks];
        return argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..]);
    }
    MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
    })
}

/// A new Argon2id hash with the default parameters, in PHC string form.
fn hash_now(password: &SecretString) -> Result<String, HashError> {
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = Salt::generate();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(&argon2, password, salt.as_ref(), &mut out).map_err(|_| HashError::Failed)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|_| HashError::Failed)?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(|_| HashError::Failed)?),
    };
    Ok(hash.to_string())
}

/// A bcrypt hash as Laravel makes it: cost 12, `$2y$` (the same algorithm as
/// `$2b$`; PHP names it so).
fn bcrypt_now(password: &SecretString) -> Result<String, HashError> {
    bcrypt::hash_with_result(password.expose_secret(), BCRYPT_COST)
        .map(|parts| parts.format_for_version(bcrypt::Version::TwoY))
        .map_err(|_| HashError::Failed)
}

fn verify_now(password: &SecretString, stored_hash: Option<&str>, dummy: &str) -> bool {
    let matches = matches_hash(password, stored_hash.unwrap_or(dummy));
    matches && stored_hash.is_some()
}

/// Whether the password gives the stored hash, computed with the hash's own
/// algorithm and parameters (Argon2 in PHC form, or bcrypt `$2y$`/`$2b$`/`$2a$`);
/// compared in constant time.
fn matches_hash(password: &SecretString, stored: &str) -> bool {
    if ["$2y$", "$2b$", "$2a$"]
        .iter()
        .any(|prefix| stored.starts_with(prefix))
    {
        return bcrypt::verify(password.expose_secret(), stored).unwrap_or(false);
    }
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (&hash.hash, &hash.salt) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
        None => Version::default(),
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    compute(&argon2, password, salt.as_ref(), &mut out).is_ok()
        && Output::new(&out).is_ok_and(|output| output == *expected)
}

/// Argon2id hash of a random string nobody knows, with the default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1Jv2Ox9ivUsEZrsMFPDCQqRA+Q5RHQ5Ob3nHFx8l+Q0";
/// The same for bcrypt, at the cost new hashes get.
const DUMMY_BCRYPT_HASH: &str = "$2y$12$hfY95Q04516PuBRdUv68RujmBCk1/y4EY2g1crs.EK6vSPRmxHXyS";

#[cfg(test)]
mod tests;
