//! Password policy and hashing.
//!
//! Policy (AU2–AU4): 12 to 128 characters, any printable Unicode (spaces and emoji too), no composition
//! rules, no truncation or case folding; refused when on the bundled common-password list (also after removing
//! leading/trailing digits and symbols), made of three or fewer distinct characters, or equal to the email.
//! Hashing (AU1): argon2id, m = 19 MiB, t = 2, p = 1, 16-byte random salt, PHC string.

use std::{collections::HashSet, sync::OnceLock};

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

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

fn hasher() -> Argon2<'static> {
    // Explicit rather than Argon2::default(), so a change of the crate's defaults cannot weaken hashes.
    let params =
        Params::new(19 * 1024, 2, 1, Some(32)).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (CPU-heavy: call through [`hash`]).
///
/// # Errors
/// Only if the OS random generator fails.
pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let hash = hasher()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

/// Verifies a password against a PHC string (CPU-heavy: call through [`verify`]). A malformed stored hash
/// counts as a mismatch.
pub fn verify_blocking(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

static DUMMY: OnceLock<String> = OnceLock::new();

/// A real hash of a random password, verified against when the account does not exist (AU7).
fn dummy_hash() -> &'static str {
    DUMMY.get_or_init(|| hash_blocking(&crate::auth::random_secret()).unwrap_or_default())
}

/// Hashes on a blocking thread.
///
/// # Errors
/// Random-generator failure or a cancelled blocking task.
pub async fn hash(password: String) -> anyhow::Result<String> {
    crate::telemetry::spawn_blocking_in_span(move || hash_blocking(&password)).await?
}

/// Verifies on a blocking thread. With `phc = None` (unknown account) it verifies against a dummy hash and
/// returns false, taking the same time as a real check.
pub async fn verify(password: String, phc: Option<String>) -> bool {
    crate::telemetry::spawn_blocking_in_span(move || match phc {
        Some(h) => verify_blocking(&password, &h),
        None => {
            let _ = verify_blocking(&password, dummy_hash());
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// Computes the dummy hash ahead of the first sign-in, so the first unknown-account check is not faster.
pub fn warm_up() {
    let _ = dummy_hash();
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
