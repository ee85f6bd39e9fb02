//! Password hashing with Argon2id, and generated passwords.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Shorter than the minimum.
    #[error("a password needs at least {0} characters")]
    TooShort(usize),
    /// The hasher failed.
    #[error("password hashing failed: {0}")]
    Hash(#[source] argon2::password_hash::Error),
    /// The hashing job did not complete (it panicked, or the runtime is stopping).
    #[error("password hashing did not complete")]
    Interrupted,
}

/// The shortest password an account may have.
pub const MIN_LENGTH: usize = 12;

/// Hashes `password` into a PHC string (Argon2id, default OWASP parameters).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LENGTH {
        return Err(PasswordError::TooShort(MIN_LENGTH));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(PasswordError::Hash)
}

/// Checks `password` against a stored PHC hash; a malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A bounded pool for Argon2id work. Each hash or verification takes 19 MiB
/// and a core for tens of milliseconds: a burst of logins (or of wrong
/// passwords) must queue here rather than fill tokio's blocking pool (512
/// threads), exhaust memory, or take the cores every other session needs.
/// Its threads run at a lower scheduling priority ([`HASH_NICE`]): when the
/// cores are busy, commands of sessions already logged in go first, and a
/// storm of login attempts slows logins, not the service.
#[derive(Debug)]
pub struct HashPool {
    permits: tokio::sync::Semaphore,
    jobs: std::sync::mpsc::Sender<Job>,
}

/// A job for a pool thread.
type Job = Box<dyn FnOnce() + Send>;

/// The nice value of the pool's threads (0 is normal, 19 the lowest).
pub const HASH_NICE: i32 = 10;

impl HashPool {
    /// A pool of `size` threads (at least one), each running one job at a time.
    pub fn new(size: usize) -> HashPool {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        for i in 0..size.max(1) {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work(&queue));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "password hashing thread not started");
            }
        }
        HashPool {
            permits: tokio::sync::Semaphore::new(size.max(1)),
            jobs,
        }
    }

    /// Runs `job` on a pool thread once a slot is free; None if the job
    /// panicked or no pool thread is left.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let _permit = self.permits.acquire().await.ok()?;
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(job());
            }))
            .ok()?;
        result.await.ok()
    }
}

/// A pool thread: lowers its own priority, then runs jobs until the pool
/// is dropped. A panicking job loses its caller's answer, not the thread.
fn work(queue: &std::sync::Mutex<std::sync::mpsc::Receiver<Job>>) {
    lower_priority();
    loop {
        let job = match queue.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

/// Sets this thread's nice value to [`HASH_NICE`] (on Linux a thread has
/// its own; raising it needs no privilege).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), HASH_NICE)
    {
        tracing::warn!(error = %e, "password hashing thread keeps its priority");
    }
}

/// The process's pool: one slot per core.
fn pool() -> &'static HashPool {
    static POOL: std::sync::LazyLock<HashPool> = std::sync::LazyLock::new(|| {
        HashPool::new(std::thread::available_parallelism().map_or(2, usize::from))
    });
    &POOL
}

/// [`verify`] on the bounded pool (logins, activation codes).
pub async fn verify_pooled(password: String, phc: String) -> bool {
    pool()
        .run(move || verify(&password, &phc))
        .await
        .unwrap_or(false)
}

/// [`hash`] on the bounded pool (password changes, activation codes).
pub async fn hash_pooled(password: String) -> Result<String, PasswordError> {
    pool()
        .run(move || hash(&password))
        .await
        .unwrap_or(Err(PasswordError::Interrupted))
}

/// A rule a patient's new password breaks; the text is shown to the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRule {
    /// Fewer than [`MIN_LENGTH`] characters.
    #[error("Le mot de passe doit contenir au moins 12 caractères.")]
    TooShort,
    /// Longer than anyone types (and than Argon2 should hash per request).
    #[error("Le mot de passe doit contenir au plus 128 caractères.")]
    TooLong,
    /// Letters only, or digits and symbols only.
    #[error(
        "Le mot de passe doit contenir au moins une lettre et au moins un chiffre ou un caractère spécial."
    )]
    Classes,
    /// Contains the login (INS or address).
    #[error("Le mot de passe ne doit pas contenir votre identifiant.")]
    ContainsLogin,
}

/// The rules as shown next to a password field (kept beside [`check_rules`]).
pub const RULES_FR: [&str; 3] = [
    "au moins 12 caractères ;",
    "au moins une lettre et au moins un chiffre ou un caractère spécial ;",
    "sans votre identifiant (matricule INS).",
];

/// Checks a password a patient chooses, against the rules in [`RULES_FR`].
pub fn check_rules(password: &str, login: &str) -> Result<(), PasswordRule> {
    let count = password.chars().count();
    if count < MIN_LENGTH {
        return Err(PasswordRule::TooShort);
    }
    if count > 128 {
        return Err(PasswordRule::TooLong);
    }
    let letters = password.chars().any(char::is_alphabetic);
    let others = password.chars().any(|c| !c.is_alphabetic());
    if !(letters && others) {
        return Err(PasswordRule::Classes);
    }
    let local = login.split('@').next().unwrap_or(login);
    if local.len() >= 4 && password.to_lowercase().contains(&local.to_lowercase()) {
        return Err(PasswordRule::ContainsLogin);
    }
    Ok(())
}

/// A random password of 20 characters from an unambiguous alphabet, printed once to the operator.
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn hashing_runs_at_a_lower_priority_and_survives_a_panic() {
        let pool = super::HashPool::new(1);
        #[cfg(target_os = "linux")]
        {
            let nice = pool
                .run(|| rustix::process::getpriority_process(Some(rustix::thread::gettid())))
                .await;
            assert_eq!(nice.map(|r| r.ok()), Some(Some(super::HASH_NICE)));
        }
        assert_eq!(pool.run(|| -> u8 { panic!("job fails") }).await, None);
        assert_eq!(pool.run(|| 7).await, Some(7), "the thread outlives a panic");
    }

    #[test]
    fn patient_password_rules() {
        use super::{PasswordRule, check_rules};
        let ins = "279035121518989";
        assert_eq!(check_rules("court1", ins), Err(PasswordRule::TooShort));
        assert_eq!(
            check_rules("seulementdeslettres", ins),
            Err(PasswordRule::Classes)
        );
        assert_eq!(
            check_rules("123456789012345", ins),
            Err(PasswordRule::Classes)
        );
        assert_eq!(
            check_rules("moi279035121518989", &format!("{ins}@patient.mes.test")),
            Err(PasswordRule::ContainsLogin)
        );
        assert_eq!(
            check_rules(&"a1".repeat(65), ins),
            Err(PasswordRule::TooLong)
        );
        assert_eq!(check_rules("jardin des plantes 7", ins), Ok(()));
    }

    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("wrong horse battery", &h));
        assert!(!verify("x", "not a hash"));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(matches!(hash("short"), Err(PasswordError::TooShort(_))));
        assert_eq!(generate().len(), 20);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_hash_pool_runs_at_most_its_size_at_once() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let pool = Arc::new(HashPool::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut jobs = Vec::new();
        for _ in 0..12 {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            jobs.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        for j in jobs {
            assert_eq!(j.await.unwrap(), Some(()));
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn pooled_verification_matches_the_direct_one() {
        let h = hash("correct horse battery").unwrap();
        assert!(verify_pooled("correct horse battery".into(), h.clone()).await);
        assert!(!verify_pooled("wrong horse battery".into(), h).await);
        assert!(matches!(
            hash_pooled("short".into()).await,
            Err(PasswordError::TooShort(_))
        ));
    }
}
