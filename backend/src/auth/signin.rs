//! Password checks with their limits: signing in, and confirming the current password before a sensitive
//! change (password change, new API token). Each check is reserved first ([`rate_limit::reserve`]), then runs
//! argon2 inside the process-wide hashing limit ([`password::verify`]), then records its outcome. The actions in
//! `crate::account` write failures to the audit trail (as their actor).

use sqlx::PgPool;
use uuid::Uuid;

use super::{
    RequestMeta, password,
    rate_limit::{self, Kind},
    users::{self, User},
};

/// The result of a password check.
#[derive(Debug)]
pub enum Check<T> {
    /// The password is right.
    Passed(T),
    /// Wrong password or unknown account (indistinguishable on purpose).
    Wrong,
    /// Too many attempts: try again after this many seconds (nothing was checked).
    Limited { retry_after_secs: u64 },
    /// Every hashing slot stayed busy (nothing was checked or counted).
    Busy(password::Busy),
}

async fn check(
    db: &PgPool,
    kind: Kind,
    email: &str,
    password: String,
    stored_hash: Option<String>,
    meta: &RequestMeta,
) -> sqlx::Result<Check<()>> {
    let reservation = match rate_limit::reserve(db, kind, email, &meta.ip).await? {
        Ok(r) => r,
        Err(retry_after_secs) => {
            tracing::warn!(client_ip = %meta.ip, kind = ?kind, "password check rate limited");
            return Ok(Check::Limited { retry_after_secs });
        }
    };
    // Own task: the outcome is recorded even when the client goes away while argon2 runs (a dropped request
    // would otherwise leave its reservation pending).
    let db = db.clone();
    let finished = tokio::spawn(async move {
        match password::verify(password, stored_hash).await {
            Ok(true) => {
                reservation.finish(&db, true).await?;
                Ok(Check::Passed(()))
            }
            Ok(false) => {
                reservation.finish(&db, false).await?;
                Ok(Check::Wrong)
            }
            Err(busy) => {
                reservation.cancel(&db).await?;
                Ok(Check::Busy(busy))
            }
        }
    })
    .await;
    finished.unwrap_or_else(|e| Err(sqlx::Error::Protocol(format!("password check task: {e}"))))
}

/// Checks a sign-in. Unknown accounts are verified against a dummy hash (same time, same answer). A disabled
/// (suspended) account is checked against its own hash and passes with [`User::disabled`] set: whoever knows
/// the password is told about the suspension by the caller, nobody else learns of it.
///
/// # Errors
/// Database errors.
pub async fn sign_in(
    db: &PgPool,
    email: &str,
    password: String,
    meta: &RequestMeta,
) -> sqlx::Result<Check<User>> {
    let found = users::find_for_signin(db, email).await?;
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), Some(h)),
        None => (None, None),
    };
    let outcome = check(db, Kind::SignIn, email, password, hash, meta).await?;
    Ok(match (outcome, user) {
        (Check::Passed(()), Some(user)) => Check::Passed(user),
        (Check::Limited { retry_after_secs }, _) => Check::Limited { retry_after_secs },
        (Check::Busy(b), _) => Check::Busy(b),
        (Check::Wrong | Check::Passed(()), _) => Check::Wrong,
    })
}

/// Confirms the signed-in user's current password before a sensitive change. Every confirmation counts towards
/// the per-account limit, successful or not.
///
/// # Errors
/// Database errors.
pub async fn confirm_password(
    db: &PgPool,
    user_id: Uuid,
    email: &str,
    password: String,
    meta: &RequestMeta,
) -> sqlx::Result<Check<()>> {
    let stored = users::password_hash(db, user_id).await?;
    check(db, Kind::Reauth, email, password, stored, meta).await
}
