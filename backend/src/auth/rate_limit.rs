//! Rate limits for the account flows, kept in Postgres, so they hold across all web replicas and survive
//! restarts. Limits (AU6):
//!
//! | what | key | limit |
//! |---|---|---|
//! | failed password checks | account + client | 5 free, then a delay doubling from 1 s to 15 min after each further failure (counted over 15 min) |
//! | failed password checks | account, clients that never signed in to it (30 days) | 50 per 15 min |
//! | failed password checks | client IP | 50 per 15 min |
//! | password confirmations (password change, new API token) | account | 10 per 15 min, successful or not |
//! | sign-ups | client IP | 10 per hour |
//! | reset / verification emails | email + client IP | 3 per hour |
//! | reset / verification emails | client IP | 20 per hour |
//!
//! Password checks are **reserved** before argon2 runs ([`reserve`]): the count and the new `pending` row are
//! written under advisory locks on the account and the client, so parallel guesses cannot slip past the limit;
//! [`Reservation::finish`] records the outcome. Failures are keyed on account + client, so a stranger's guesses
//! slow down the stranger, not the owner (who signs in from a client that has succeeded before); failures
//! before the account's last password change do not count, and a success from a client clears that client's
//! delay.

use std::time::Duration;

use sqlx::PgPool;

use super::audit::event;

pub const SIGNIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures per account + client before the progressive delay starts.
pub const FREE_FAILURES_PER_CLIENT: i64 = 5;
/// The delay after the first failure past the free ones; it doubles with each further failure.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest delay between two attempts of one client on one account.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// A client that signed in to the account successfully within this time is known to it.
pub const KNOWN_CLIENT: Duration = Duration::from_secs(30 * 24 * 3600);
pub const FAILURES_PER_ACCOUNT_FROM_UNKNOWN_CLIENTS: i64 = 50;
pub const SIGNIN_FAILURES_PER_IP: i64 = 50;
pub const REAUTHS_PER_ACCOUNT: i64 = 10;
pub const SIGNUPS_PER_IP_PER_HOUR: i64 = 10;
pub const EMAILS_PER_ADDRESS_AND_IP_PER_HOUR: i64 = 3;
pub const EMAILS_PER_IP_PER_HOUR: i64 = 20;
const HOUR: Duration = Duration::from_secs(3600);
/// How often, and how far apart, [`reserve`] tries to take its locks before refusing (about 1 s in all).
const LOCK_TRIES: u32 = 40;
const LOCK_RETRY: Duration = Duration::from_millis(25);

/// What a reserved password check is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SignIn,
    /// The current password confirming a password change or a new API token.
    Reauth,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "signin",
            Self::Reauth => "reauth",
        }
    }
}

/// A reserved password check: counts as a failure until [`Reservation::finish`] says otherwise.
#[derive(Debug)]
#[must_use = "record the outcome with finish()"]
pub struct Reservation {
    id: i64,
}

impl Reservation {
    /// Records the outcome of the check.
    ///
    /// # Errors
    /// Database errors.
    pub async fn finish(self, db: &PgPool, succeeded: bool) -> sqlx::Result<()> {
        sqlx::query!(
            "update auth_attempt set outcome = $2, finished_at = now() where auth_attempt_id = $1",
            self.id,
            if succeeded { "succeeded" } else { "failed" },
        )
        .execute(db)
        .await?;
        Ok(())
    }

    /// Withdraws the reservation when no check happened (e.g. every hashing slot was busy).
    ///
    /// # Errors
    /// Database errors.
    pub async fn cancel(self, db: &PgPool) -> sqlx::Result<()> {
        sqlx::query!(
            "delete from auth_attempt where auth_attempt_id = $1",
            self.id
        )
        .execute(db)
        .await?;
        Ok(())
    }
}

/// Seconds to wait before the next attempt after `failures` consecutive failures (0 while free).
pub fn delay_after(failures: i64) -> Duration {
    if failures < FREE_FAILURES_PER_CLIENT {
        return Duration::ZERO;
    }
    let doublings = u32::try_from(failures - FREE_FAILURES_PER_CLIENT)
        .unwrap_or(u32::MAX)
        .min(20);
    (FIRST_DELAY * 2u32.pow(doublings)).min(MAX_DELAY)
}

fn ceil_secs(secs: f64) -> u64 {
    // Whole seconds for Retry-After, at least 1 (clamped first, so the cast is exact).
    secs.ceil().clamp(1.0, 86_400.0) as u64
}

/// Reserves a password check for `email` from `client`, or answers `Err(seconds to wait)`.
///
/// # Errors
/// Database errors.
pub async fn reserve(
    db: &PgPool,
    kind: Kind,
    email: &str,
    client: &str,
) -> sqlx::Result<Result<Reservation, u64>> {
    let account = email.trim().to_lowercase();
    // Serialises the count-then-insert per account and per client. The locks are only tried, and the
    // connection is given back between tries: parallel requests for one account wait without holding pool
    // connections, and when the locks stay taken the request is refused (fail closed) instead of queueing.
    let mut tx = None;
    for _ in 0..LOCK_TRIES {
        let mut t = db.begin().await?;
        let locked = sqlx::query_scalar!(
            r#"select pg_try_advisory_xact_lock(hashtextextended('vortex/auth-account/' || $1, 0))
                  and pg_try_advisory_xact_lock(hashtextextended('vortex/auth-client/' || $2, 0)) as "locked!""#,
            account,
            client,
        )
        .fetch_one(&mut *t)
        .await?;
        if locked {
            tx = Some(t);
            break;
        }
        drop(t);
        tokio::time::sleep(LOCK_RETRY).await;
    }
    let Some(mut tx) = tx else {
        return Ok(Err(1));
    };
    let window = SIGNIN_WINDOW.as_secs_f64();
    // Failures of this account from this client since the later of: the window start, the account's last
    // password change, this client's last success on this account; and how long ago the last one ended.
    let row = sqlx::query!(
        r#"with since as (
               select greatest(
                   now() - make_interval(secs => $3),
                   coalesce((select max(password_changed_at) from app_user where lower(email) = $1), '-infinity'),
                   coalesce((select max(created_at) from auth_attempt
                             where account = $1 and client = $2 and outcome = 'succeeded'), '-infinity')) as t)
           select count(*) as "failures!",
                  -- a check still running counts as failing now (for at most a minute: a reservation whose
                  -- process died never finishes)
                  extract(epoch from now() - max(coalesce(finished_at,
                      least(now(), created_at + interval '1 minute'))))::float8 as "last_failure_age?",
                  exists (select 1 from auth_attempt where account = $1 and client = $2 and outcome = 'succeeded'
                          and created_at > now() - make_interval(secs => $4)) as "known!"
           from auth_attempt, since
           where account = $1 and client = $2 and outcome in ('pending', 'failed') and created_at > since.t"#,
        account,
        client,
        window,
        KNOWN_CLIENT.as_secs_f64(),
    )
    .fetch_one(&mut *tx)
    .await?;
    let (failures, last_failure_age, known) = (row.failures, row.last_failure_age, row.known);
    let delay = delay_after(failures).as_secs_f64();
    if let Some(age) = last_failure_age
        && delay > age
    {
        return Ok(Err(ceil_secs(delay - age)));
    }
    let by_account = failures_since(&mut tx, &account, client, window, true).await?;
    let by_client = failures_since(&mut tx, &account, client, window, false).await?;
    let over = |(n, oldest_age): (i64, Option<f64>), limit: i64| {
        (n >= limit).then(|| ceil_secs(window - oldest_age.unwrap_or(0.0)))
    };
    if !known && let Some(wait) = over(by_account, FAILURES_PER_ACCOUNT_FROM_UNKNOWN_CLIENTS) {
        return Ok(Err(wait));
    }
    if let Some(wait) = over(by_client, SIGNIN_FAILURES_PER_IP) {
        return Ok(Err(wait));
    }
    if kind == Kind::Reauth {
        // Every confirmation counts, successful or not: each one costs two argon2 runs.
        let r = sqlx::query!(
            r#"select count(*) as "n!", extract(epoch from now() - min(created_at))::float8 as "oldest_age?"
               from auth_attempt
               where account = $1 and kind = 'reauth' and created_at > now() - make_interval(secs => $2)"#,
            account,
            window,
        )
        .fetch_one(&mut *tx)
        .await?;
        if let Some(wait) = over((r.n, r.oldest_age), REAUTHS_PER_ACCOUNT) {
            return Ok(Err(wait));
        }
    }
    let id = sqlx::query_scalar!(
        "insert into auth_attempt (kind, account, client) values ($1, $2, $3) returning auth_attempt_id",
        kind.as_str(),
        account,
        client,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Ok(Reservation { id }))
}

/// Failed (or pending) password checks since the window start, with the age in seconds of the oldest one:
/// of the account (`by_account`, counted since its last password change too) or else of the client.
async fn failures_since(
    conn: &mut sqlx::PgConnection,
    account: &str,
    client: &str,
    window: f64,
    by_account: bool,
) -> sqlx::Result<(i64, Option<f64>)> {
    let r = sqlx::query!(
        r#"with since as (
               select greatest(
                   now() - make_interval(secs => $3),
                   case when $4 then coalesce((select max(password_changed_at) from app_user
                                               where lower(email) = $1), '-infinity')
                        else '-infinity' end) as t)
           select count(*) as "n!", extract(epoch from now() - min(created_at))::float8 as "oldest_age?"
           from auth_attempt, since
           where (case when $4 then account = $1 else client = $2 end)
             and outcome in ('pending', 'failed') and created_at > since.t"#,
        account,
        client,
        window,
        by_account,
    )
    .fetch_one(conn)
    .await?;
    Ok((r.n, r.oldest_age))
}

/// `Err(seconds until the oldest counted event leaves the window)` when over the limit (counted from the audit
/// trail).
async fn over(
    db: &PgPool,
    events: &[&str],
    email: Option<&str>,
    ip: Option<&str>,
    window: Duration,
    limit: i64,
) -> sqlx::Result<Result<(), u64>> {
    let events: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
    let r = sqlx::query!(
        r#"with since as (
               select greatest(now() - make_interval(secs => $4),
                               coalesce((select max(password_changed_at) from app_user
                                         where $2::text is not null and lower(email) = lower($2)), '-infinity'))
                      as t)
           select count(*) as "count!",
                  extract(epoch from (min(created_at) + make_interval(secs => $4) - now()))::float8 as "retry?"
           from audit_event, since
           where event = any($1)
             and ($2::text is null or lower(subject_email) = lower($2))
             and ($3::text is null or ip = $3)
             and created_at > since.t"#,
        &events,
        email,
        ip,
        window.as_secs_f64(),
    )
    .fetch_one(db)
    .await?;
    let (count, retry) = (r.count, r.retry);
    if count >= limit {
        Ok(Err(retry.unwrap_or(60.0).ceil().max(1.0) as u64))
    } else {
        Ok(Ok(()))
    }
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
    // Keyed on address + client: requests from a stranger do not use up the owner's quota.
    let per_address = over(
        db,
        &kinds,
        Some(email),
        Some(ip),
        HOUR,
        EMAILS_PER_ADDRESS_AND_IP_PER_HOUR,
    )
    .await?;
    if per_address.is_err() {
        return Ok(per_address);
    }
    over(db, &kinds, None, Some(ip), HOUR, EMAILS_PER_IP_PER_HOUR).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_starts_after_the_free_failures_and_doubles_up_to_the_cap() {
        assert_eq!(delay_after(0), Duration::ZERO);
        assert_eq!(delay_after(4), Duration::ZERO);
        assert_eq!(delay_after(5), Duration::from_secs(1));
        assert_eq!(delay_after(6), Duration::from_secs(2));
        assert_eq!(delay_after(10), Duration::from_secs(32));
        assert_eq!(delay_after(20), MAX_DELAY);
        assert_eq!(delay_after(i64::MAX), MAX_DELAY);
    }
}
