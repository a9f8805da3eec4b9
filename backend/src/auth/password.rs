//! Password policy and hashing.
//!
//! Policy (AU2–AU4): 12 to 128 characters, any printable Unicode (spaces and emoji too), no composition
//! rules, no truncation or case folding; refused when on the bundled common-password list (also after removing
//! leading/trailing digits and symbols), made of three or fewer distinct characters, or equal to the email.
//! Hashing (AU1): argon2id, m = 19 MiB, t = 2, p = 1, 16-byte random salt, PHC string.
//!
//! Every hash and verification takes a slot of one process-wide limit ([`configure`]; `PASSWORD_HASH_CONCURRENCY`,
//! 19 MiB each): a request that cannot get a slot within `PASSWORD_HASH_WAIT_MS` is refused with [`Busy`]
//! (answered 503 with `Retry-After`), so parallel sign-ins and password changes cannot exhaust a replica's memory.

use std::{
    collections::HashSet,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, PasswordVerifier, Version,
    password_hash::phc::{Output, ParamsString, Salt},
};

pub const MIN_CHARS: usize = 12;
pub const MAX_CHARS: usize = 128;

static COMMON: OnceLock<HashSet<&'static str>> = OnceLock::new();

fn common() -> &'static HashSet<&'static str> {
    COMMON.get_or_init(|| {
        include_str!("../../data/common-passwords.txt")
            .lines()
            .collect()
    })
}

/// Why a new password is not acceptable, in words for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyError {
    TooShort,
    TooLong,
    Common,
    Repetitive,
    SameAsEmail,
    ControlCharacters,
}

impl PolicyError {
    /// Every rule.
    pub const ALL: &[PolicyError] = &[
        Self::TooShort,
        Self::TooLong,
        Self::Common,
        Self::Repetitive,
        Self::SameAsEmail,
        Self::ControlCharacters,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::TooShort => "password_short",
            Self::TooLong => "password_long",
            Self::Common => "password_common",
            Self::Repetitive => "password_repetitive",
            Self::SameAsEmail => "password_email",
            Self::ControlCharacters => "password_control",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::TooShort => "Use at least 12 characters.",
            Self::TooLong => "Use at most 128 characters.",
            Self::Common => {
                "This password is too common; choose another one (a phrase of several words works well)."
            }
            Self::Repetitive => "This password repeats too few characters; choose another one.",
            Self::SameAsEmail => "The password must not be your email address.",
            Self::ControlCharacters => "The password contains invisible control characters.",
        }
    }
}

/// Checks a new password against the policy.
///
/// # Errors
/// The first rule it breaks.
pub fn check_policy(password: &str, email: &str) -> Result<(), PolicyError> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(PolicyError::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(PolicyError::TooLong);
    }
    if password.chars().any(char::is_control) {
        return Err(PolicyError::ControlCharacters);
    }
    let lower = password.to_lowercase();
    let core = lower.trim_matches(|c: char| !c.is_alphabetic());
    if common().contains(lower.as_str()) || (!core.is_empty() && common().contains(core)) {
        return Err(PolicyError::Common);
    }
    if password.chars().collect::<HashSet<_>>().len() <= 3 {
        return Err(PolicyError::Repetitive);
    }
    let email = email.to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if lower == email
        || (local.len() >= 4 && lower.trim_matches(|c: char| !c.is_alphanumeric()) == local)
    {
        return Err(PolicyError::SameAsEmail);
    }
    Ok(())
}

fn params() -> Params {
    Params::new(19 * 1024, 2, 1, Some(OUTPUT_LEN)).expect("static argon2 parameters are valid")
}

const OUTPUT_LEN: usize = 32;
const SALT_LEN: usize = 16;

fn hasher() -> Argon2<'static> {
    // Explicit rather than Argon2::default(), so a change of the crate's defaults cannot weaken hashes.
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

/// Argon2's working memory for one hash (19 MiB of blocks). The limited paths reuse a few of these instead of
/// allocating per hash: freed 19 MiB blocks tend to stay in the allocator's per-thread arenas, so allocating per
/// hash lets the resident size grow with the number of threads that ever hashed, not with the limit.
type Memory = Vec<Block>;

fn new_memory() -> Memory {
    vec![Block::default(); params().block_count()]
}

fn hash_with(memory: &mut Memory, password: &str) -> anyhow::Result<String> {
    use rand::RngCore;
    let mut salt = [0u8; SALT_LEN];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; OUTPUT_LEN];
    hasher()
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, memory)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params()).map_err(|e| anyhow::anyhow!("argon2: {e}"))?,
        salt: Some(Salt::new(&salt).map_err(|e| anyhow::anyhow!("argon2 salt: {e}"))?),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("argon2 output: {e}"))?),
    };
    Ok(phc.to_string())
}

fn verify_with(memory: &mut Memory, password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let ours = params();
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let same_parameters = parsed.algorithm == Algorithm::Argon2id.ident()
        && parsed
            .version
            .is_none_or(|v| v == u32::from(Version::V0x13))
        && expected.as_ref().len() == OUTPUT_LEN
        && Params::try_from(&parsed).is_ok_and(|p| {
            (p.m_cost(), p.t_cost(), p.p_cost()) == (ours.m_cost(), ours.t_cost(), ours.p_cost())
        });
    if !same_parameters {
        // A hash made with other parameters (none are stored today): the crate allocates what it needs.
        return hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
    }
    let mut out = [0u8; OUTPUT_LEN];
    if hasher()
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory)
        .is_err()
    {
        return false;
    }
    // Output's equality is constant-time.
    Output::new(&out).is_ok_and(|o| &o == expected)
}

/// Hashes a password into a PHC string (CPU-heavy, allocates its own 19 MiB: call through [`hash`]).
///
/// # Errors
/// Only if hashing fails (it does not for valid inputs).
pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    hash_with(&mut new_memory(), password)
}

/// Verifies a password against a PHC string (CPU-heavy, allocates its own 19 MiB: call through [`verify`]). A
/// malformed stored hash counts as a mismatch.
pub fn verify_blocking(password: &str, phc: &str) -> bool {
    verify_with(&mut new_memory(), password, phc)
}

/// Memory one hash or verification allocates (m = 19 MiB).
pub const MIB_PER_HASH: usize = 19;
/// Default number of hashes/verifications a process runs at once (4 × 19 MiB = 76 MiB).
pub const DEFAULT_CONCURRENCY: usize = crate::settings::DEFAULT_HASH_CONCURRENCY;
/// Default longest wait for a slot before the request is refused as busy.
pub const DEFAULT_WAIT: Duration = crate::settings::DEFAULT_HASH_WAIT;

/// The process-wide limit on concurrent argon2 work.
struct Limiter {
    slots: Arc<tokio::sync::Semaphore>,
    size: usize,
    wait: Duration,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// Working memory of idle slots (at most `size` ever exist: one per slot in use or idle).
    memory: std::sync::Mutex<Vec<Memory>>,
}

static LIMITER: OnceLock<Limiter> = OnceLock::new();

fn limiter() -> &'static Limiter {
    LIMITER.get_or_init(|| Limiter::new(DEFAULT_CONCURRENCY, DEFAULT_WAIT))
}

impl Limiter {
    fn new(size: usize, wait: Duration) -> Self {
        let size = size.max(1);
        Self {
            slots: Arc::new(tokio::sync::Semaphore::new(size)),
            size,
            wait,
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            memory: std::sync::Mutex::new(Vec::new()),
        }
    }
}

/// Sets the process-wide limit: at most `concurrency` hashes/verifications at once, each waiting at most `wait`
/// for a slot. Call once at start-up, before the first hash; later calls (and calls after a hash already used
/// the defaults) change nothing and return false.
pub fn configure(concurrency: usize, wait: Duration) -> bool {
    LIMITER.set(Limiter::new(concurrency, wait)).is_ok()
}

/// The configured number of slots.
pub fn concurrency() -> usize {
    limiter().size
}

/// The most hashes/verifications that ran at the same time in this process so far.
pub fn peak_in_flight() -> usize {
    limiter().peak.load(Ordering::Relaxed)
}

/// Every slot stayed taken for the whole wait: try again after `retry_after_secs`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("password hashing is at capacity; try again in {retry_after_secs} s")]
pub struct Busy {
    pub retry_after_secs: u64,
}

/// Why [`hash`] produced no hash.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Runs `work` on a blocking thread inside a slot of the limit, with the slot's reused working memory. The
/// slot is held until the work has finished, even when the caller stops waiting (a dropped request still uses
/// its memory until argon2 returns).
async fn limited<T: Send + 'static>(
    work: impl FnOnce(&mut Memory) -> T + Send + 'static,
) -> Result<anyhow::Result<T>, Busy> {
    let l = limiter();
    let permit = match tokio::time::timeout(l.wait, l.slots.clone().acquire_owned()).await {
        Ok(Ok(permit)) => permit,
        _ => {
            metrics::counter!("password_hash_busy_total").increment(1);
            tracing::warn!(
                slots = l.size,
                "password hashing at capacity; request refused"
            );
            return Err(Busy {
                retry_after_secs: l.wait.as_secs().max(1) + 1,
            });
        }
    };
    /// Counts the work in flight until it ends (also on a panic), together with its slot.
    struct InFlight(
        #[expect(dead_code, reason = "held for its Drop")] tokio::sync::OwnedSemaphorePermit,
    );
    impl Drop for InFlight {
        fn drop(&mut self) {
            limiter().in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let now = l.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    l.peak.fetch_max(now, Ordering::Relaxed);
    let slot = InFlight(permit);
    let result = crate::telemetry::spawn_blocking_in_span(move || {
        let pool = &limiter().memory;
        let taken = pool.lock().ok().and_then(|mut idle| idle.pop());
        let mut memory = taken.unwrap_or_else(new_memory);
        let out = work(&mut memory);
        if let Ok(mut idle) = pool.lock() {
            idle.push(memory);
        }
        drop(slot);
        out
    })
    .await;
    Ok(result.map_err(anyhow::Error::from))
}

static DUMMY: OnceLock<String> = OnceLock::new();

/// A real hash of a random password, verified against when the account does not exist (AU7).
fn dummy_hash() -> &'static str {
    DUMMY.get_or_init(|| hash_blocking(&crate::auth::random_secret()).unwrap_or_default())
}

/// Hashes on a blocking thread, inside the process-wide limit.
///
/// # Errors
/// [`HashError::Busy`] when no slot came free in time; random-generator failure or a cancelled blocking task.
pub async fn hash(password: String) -> Result<String, HashError> {
    Ok(limited(move |memory| hash_with(memory, &password)).await???)
}

/// Verifies on a blocking thread, inside the process-wide limit. With `phc = None` (unknown account) it verifies
/// against a dummy hash and returns false, taking the same time as a real check. A failed blocking task counts
/// as a mismatch.
///
/// # Errors
/// [`Busy`] when no slot came free in time (nothing was checked).
pub async fn verify(password: String, phc: Option<String>) -> Result<bool, Busy> {
    let checked = limited(move |memory| match phc {
        Some(h) => verify_with(memory, &password, &h),
        None => {
            let _ = verify_with(memory, &password, dummy_hash());
            false
        }
    })
    .await?;
    Ok(checked.unwrap_or(false))
}

/// Computes the dummy hash ahead of the first sign-in, so the first unknown-account check is not faster.
/// Blocking (one argon2 hash): call it from a blocking thread or at start-up.
pub fn warm_up() {
    let _ = dummy_hash();
}

/// Whether [`warm_up`] (or a first unknown-account check) has computed the dummy hash.
pub fn is_warm() -> bool {
    DUMMY.get().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_the_owasp_parameters_and_unique_salts() {
        let a = hash_blocking("correct horse battery staple").unwrap();
        let b = hash_blocking("correct horse battery staple").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salts must differ");
        let salt_b64 = a.split('$').nth(4).unwrap();
        assert!(salt_b64.len() >= 22, "salt of at least 16 bytes");
        assert!(verify_blocking("correct horse battery staple", &a));
        assert!(
            !verify_blocking("Correct horse battery staple", &a),
            "no case folding"
        );
        assert!(!verify_blocking("x", "not a phc string"));
    }

    #[test]
    fn hashes_of_the_crates_own_path_and_of_the_reused_memory_path_verify_each_other() {
        use argon2::PasswordHasher;
        let by_crate = hasher()
            .hash_password(b"correct horse battery staple")
            .unwrap()
            .to_string();
        let mut memory = new_memory();
        assert!(verify_with(
            &mut memory,
            "correct horse battery staple",
            &by_crate
        ));
        assert!(!verify_with(
            &mut memory,
            "correct horse battery stapler",
            &by_crate
        ));
        let ours = hash_with(&mut memory, "another long passphrase").unwrap();
        assert!(
            hasher()
                .verify_password(
                    b"another long passphrase",
                    &PasswordHash::new(&ours).unwrap()
                )
                .is_ok()
        );
        // Other parameters still verify (through the allocating path).
        let weaker = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, Some(32)).unwrap(),
        )
        .hash_password(b"old parameters here")
        .unwrap()
        .to_string();
        assert!(verify_with(&mut memory, "old parameters here", &weaker));
    }

    #[test]
    fn the_policy_accepts_long_passphrases_of_any_characters() {
        for ok in [
            "correct horse battery staple",
            "Zürich 🚀 liegt am See",
            "ℌ𝔢𝔩𝔩𝔬 𝔴𝔬𝔯𝔩𝔡 123",
            &"The quick brown fox jumps over the lazy dog; ".repeat(3)[..128], // exactly 128
        ] {
            assert_eq!(check_policy(ok, "trader@example.org"), Ok(()), "{ok}");
        }
    }

    #[test]
    fn the_policy_refuses_short_long_common_and_repetitive_passwords() {
        assert_eq!(
            check_policy("short pass", "a@b.co"),
            Err(PolicyError::TooShort)
        );
        assert_eq!(
            check_policy(&"abcd".repeat(33), "a@b.co"),
            Err(PolicyError::TooLong)
        );
        assert_eq!(
            check_policy("password1234", "a@b.co"),
            Err(PolicyError::Common)
        );
        assert_eq!(
            check_policy("Dragon123456!", "a@b.co"),
            Err(PolicyError::Common)
        );
        assert_eq!(
            check_policy("qwertyuiop123", "a@b.co"),
            Err(PolicyError::Common)
        );
        assert_eq!(
            check_policy("aaaaaaaaaaaaaaaa", "a@b.co"),
            Err(PolicyError::Repetitive)
        );
        assert_eq!(
            check_policy("longtrader@example.org", "longtrader@example.org"),
            Err(PolicyError::SameAsEmail)
        );
        assert_eq!(
            check_policy("tab\tinside passphrase", "a@b.co"),
            Err(PolicyError::ControlCharacters)
        );
    }

    #[test]
    fn the_common_list_is_bundled() {
        assert!(common().len() >= 29_000);
    }
}
