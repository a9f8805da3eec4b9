//! Authentication: the signing secret, the operator token, session lifetimes and password hashing.

use std::time::Duration;

use secrecy::SecretString;

use super::{random_token, reader::Reader};

/// Default number of password hashes/verifications a process runs at once (4 × 19 MiB = 76 MiB).
pub const DEFAULT_HASH_CONCURRENCY: usize = 4;
/// Default longest wait for a password-hashing slot before the request is refused as busy.
pub const DEFAULT_HASH_WAIT: Duration = Duration::from_secs(2);

/// `JWT_SECRET` (required in production; a fresh random key per process in development) and `OPS_TOKEN`.
pub(super) fn secrets(
    r: &mut Reader<'_>,
    prod: bool,
) -> (Option<SecretString>, Option<SecretString>) {
    let jwt_secret = match r.secret("JWT_SECRET") {
        Some(v) => Some(v),
        None if prod => {
            r.problem(
                "JWT_SECRET",
                "is required (at least 32 random bytes, see SECRETS.md)",
            );
            None
        }
        None => {
            // Development convenience: a fresh random key per process (sessions end at restart).
            Some(SecretString::from(random_token(48)))
        }
    };
    let ops_token = r.secret("OPS_TOKEN");
    (jwt_secret, ops_token)
}

pub(super) struct Sessions {
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub password_hash_concurrency: usize,
    pub password_hash_wait: Duration,
}

/// `SESSION_IDLE_MINUTES`, `SESSION_ABSOLUTE_HOURS`, `PASSWORD_HASH_CONCURRENCY`, `PASSWORD_HASH_WAIT_MS`.
pub(super) fn sessions(r: &mut Reader<'_>) -> Sessions {
    let session_idle = Duration::from_secs(r.bounded("SESSION_IDLE_MINUTES", 30u64, 1, 1440) * 60);
    let session_absolute =
        Duration::from_secs(r.bounded("SESSION_ABSOLUTE_HOURS", 12u64, 1, 720) * 3600);
    let password_hash_concurrency = r.bounded(
        "PASSWORD_HASH_CONCURRENCY",
        DEFAULT_HASH_CONCURRENCY,
        1,
        256,
    );
    let password_hash_wait = Duration::from_millis(r.bounded(
        "PASSWORD_HASH_WAIT_MS",
        u64::try_from(DEFAULT_HASH_WAIT.as_millis()).unwrap_or(2000),
        0,
        60_000,
    ));

    Sessions {
        session_idle,
        session_absolute,
        password_hash_concurrency,
        password_hash_wait,
    }
}
