//! Rate limits for the account flows, counted from the audit trail (Postgres), so they hold across all web
//! replicas and survive restarts. Limits (AU6):
//!
//! | what | key | limit |
//! |---|---|---|
//! | failed sign-ins | account (email) | 10 per 15 min, counted since the last password change |
//! | failed sign-ins | client IP | 50 per 15 min |
//! | sign-ups | client IP | 10 per hour |
//! | reset / verification emails | email | 3 per hour |
//! | reset / verification emails | client IP | 20 per hour |
//!
//! A locked account stays reachable through a password reset, which restarts its window.

use std::time::Duration;

use sqlx::PgPool;

use super::audit::event;

pub const SIGNIN_WINDOW: Duration = Duration::from_secs(15 * 60);
pub const SIGNIN_FAILURES_PER_ACCOUNT: i64 = 10;
pub const SIGNIN_FAILURES_PER_IP: i64 = 50;
pub const SIGNUPS_PER_IP_PER_HOUR: i64 = 10;
pub const EMAILS_PER_ADDRESS_PER_HOUR: i64 = 3;
pub const EMAILS_PER_IP_PER_HOUR: i64 = 20;
const HOUR: Duration = Duration::from_secs(3600);

/// `Err(seconds until the oldest counted event leaves the window)` when over the limit.
async fn over(
    db: &PgPool,
    events: &[&str],
    email: Option<&str>,
    ip: Option<&str>,
    window: Duration,
    limit: i64,
) -> sqlx::Result<Result<(), u64>> {
    let events: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
    let (count, retry): (i64, Option<f64>) = sqlx::query_as(
        r#"with since as (
               select greatest(now() - make_interval(secs => $4),
                               coalesce((select max(password_changed_at) from app_user
                                         where $2::text is not null and lower(email) = lower($2)), '-infinity'))
                      as t)
           select count(*),
                  extract(epoch from (min(created_at) + make_interval(secs => $4) - now()))::float8
           from audit_event, since
           where event = any($1)
             and ($2::text is null or lower(subject_email) = lower($2))
             and ($3::text is null or ip = $3)
             and created_at > since.t"#,
    )
    .bind(&events)
    .bind(email)
    .bind(ip)
    .bind(window.as_secs_f64())
    .fetch_one(db)
    .await?;
    if count >= limit {
        Ok(Err(retry.unwrap_or(60.0).ceil().max(1.0) as u64))
    } else {
        Ok(Ok(()))
    }
}

/// Whether another sign-in attempt for `email` from `ip` is allowed.
///
/// # Errors
/// Database errors.
pub async fn check_signin(db: &PgPool, email: &str, ip: &str) -> sqlx::Result<Result<(), u64>> {
    let account = over(
        db,
        &[event::SIGNIN_FAILED],
        Some(email),
        None,
        SIGNIN_WINDOW,
        SIGNIN_FAILURES_PER_ACCOUNT,
    )
    .await?;
    if account.is_err() {
        return Ok(account);
    }
    over(
        db,
        &[event::SIGNIN_FAILED],
        None,
        Some(ip),
        SIGNIN_WINDOW,
        SIGNIN_FAILURES_PER_IP,
    )
    .await
}

/// Whether another sign-up from `ip` is allowed.
///
/// # Errors
/// Database errors.
pub async fn check_signup(db: &PgPool, ip: &str) -> sqlx::Result<Result<(), u64>> {
    over(
        db,
        &[event::SIGNUP],
        None,
        Some(ip),
        HOUR,
        SIGNUPS_PER_IP_PER_HOUR,
    )
    .await
}

/// Whether another reset or verification email may be requested for `email` from `ip`.
///
/// # Errors
/// Database errors.
pub async fn check_email_request(
    db: &PgPool,
    email: &str,
    ip: &str,
) -> sqlx::Result<Result<(), u64>> {
    let kinds = [
        event::PASSWORD_RESET_REQUESTED,
        event::VERIFICATION_REQUESTED,
    ];
    let per_address = over(
        db,
        &kinds,
        Some(email),
        None,
        HOUR,
        EMAILS_PER_ADDRESS_PER_HOUR,
    )
    .await?;
    if per_address.is_err() {
        return Ok(per_address);
    }
    over(db, &kinds, None, Some(ip), HOUR, EMAILS_PER_IP_PER_HOUR).await
}
