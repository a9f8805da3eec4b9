//! Two-factor sign-in (TOTP, RFC 6238) with single-use recovery codes, for every user.
//!
//! * Enrolment ([`begin`], [`confirm`]): the current password starts it and stores a new secret (encrypted,
//!   [`totp::seal`]) as pending; the account page shows it as text and as an `otpauth://` URI; the first right
//!   code turns it on and returns [`totp::RECOVERY_CODES`] recovery codes, shown once (only their SHA-256 is
//!   kept).
//! * Sign-in: after the right password, [`challenge`] stores a pending second step (a random token in a
//!   short-lived cookie, [`CHALLENGE_SECS`], [`CHALLENGE_ATTEMPTS`] attempts); [`sign_in_code`] takes a code or
//!   a recovery code and starts the session. The last accepted time step is kept in Postgres (the row is
//!   locked while a code is checked), so a code works once across replicas; ± 1 step of drift is accepted.
//!   Failed codes are audited (`two_factor_failed`) and limited per account ([`FAILURES_PER_ACCOUNT`] in
//!   [`FAILURE_WINDOW_SECS`]): the count and the failure's record happen in one transaction under the
//!   `user_totp` row lock, so parallel requests cannot exceed it. At most [`MAX_OPEN_CHALLENGES`] pending
//!   sign-ins per account; a new one replaces the oldest.
//! * [`disable`] and [`regenerate_codes`] need a current code, a recovery code or the password.
//! * An administrator resets a user's two-factor sign-in ([`admin_reset`]); the platform setting
//!   `admin_two_factor_required` sends admins without it to enrol first ([`must_enrol`]).
//!
//! Every change is audited and emits the critical `security.two_factor_changed` notification (email and
//! in-app). The REST API and the CLI never sign in with a password: they use API tokens, which are not affected.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    Actor, Ctx,
    auth::{AuthUser, random_secret, session, sha256, totp, users},
    error::{Error, Result},
    notify::{
        self, Event,
        event::{TwoFactorChanged, TwoFactorFailed, device},
    },
    settings::hex,
};

/// How long the second step of a sign-in waits for its code.
pub const CHALLENGE_SECS: i64 = 300;
/// Codes one pending sign-in may try.
pub const CHALLENGE_ATTEMPTS: i32 = 5;
/// Pending sign-ins (second steps) one account may have open; a new one replaces the oldest.
pub const MAX_OPEN_CHALLENGES: i64 = 5;
/// Failed codes per account in [`FAILURE_WINDOW_SECS`] before every code is refused for a while.
pub const FAILURES_PER_ACCOUNT: i64 = 10;
pub const FAILURE_WINDOW_SECS: i64 = 15 * 60;
/// The issuer authenticator apps show.
pub const ISSUER: &str = "Vortex";

/// Audit event names.
pub mod event {
    pub const CHALLENGED: &str = "two_factor_challenged";
    pub const FAILED: &str = "two_factor_failed";
    pub const ENROLMENT_STARTED: &str = "two_factor_enrolment_started";
    pub const ENABLED: &str = "two_factor_enabled";
    pub const DISABLED: &str = "two_factor_disabled";
    pub const RECOVERY_CODES_REGENERATED: &str = "two_factor_recovery_codes_regenerated";
    pub const RECOVERY_CODE_USED: &str = "two_factor_recovery_code_used";
    pub const RESET_BY_ADMIN: &str = "two_factor_reset_by_admin";
}

/// A pending sign-in's second step: the token for the cookie (shown once, only its hash is stored).
#[derive(Debug, Clone)]
pub struct Challenge {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// A pending enrolment as the account page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Enrolment {
    /// The secret in base32 (what a person types into an authenticator app).
    pub secret: String,
    /// The `otpauth://totp/…` URI (what a QR code would carry).
    pub uri: String,
}

/// The account's two-factor state.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub enabled: bool,
    pub enabled_at: Option<DateTime<Utc>>,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
    /// An enrolment waiting for its first code.
    pub pending: Option<Enrolment>,
    /// This account must turn it on before using anything else (admins, when the platform requires it).
    pub required: bool,
}

/// How a sensitive change is confirmed: a current code or recovery code, or else the password.
#[derive(Debug, Clone, Default)]
pub struct Proof {
    pub code: String,
    pub password: String,
}

fn wrong_code() -> Error {
    Error::invalid(
        "code",
        "The code is not correct: enter the 6-digit code your authenticator app shows now, or an unused recovery code.",
    )
}

fn expired_challenge() -> Error {
    Error::invalid(
        "challenge",
        "This sign-in expired or used up its attempts: sign in again with your password.",
    )
}

/// Two-factor settings are changed from a browser session, never with an API token.
fn session_user(actor: &Actor) -> Result<&AuthUser> {
    let user = actor.reader()?;
    if user.session_id().is_none() {
        return Err(Error::Forbidden(
            "two-factor sign-in is managed on the account page in the browser, not with an API token".into(),
        ));
    }
    Ok(user)
}

/// Whether the account has two-factor sign-in on.
///
/// # Errors
/// Database errors.
pub async fn enabled(ctx: &Ctx, user_id: Uuid) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"select exists (select 1 from user_totp where user_id = $1 and enabled_at is not null) as "on!""#,
        user_id,
    )
    .fetch_one(&ctx.db)
    .await?)
}

/// Whether the platform requires two-factor sign-in of administrators.
///
/// # Errors
/// Database errors.
pub async fn required_for_admins(ctx: &Ctx) -> Result<bool> {
    Ok(
        sqlx::query_scalar!("select admin_two_factor_required from platform_settings where id")
            .fetch_optional(&ctx.db)
            .await?
            .unwrap_or(false),
    )
}

/// Whether `user` must turn on two-factor sign-in before using anything else: an administrator without it
/// while the platform setting requires it.
///
/// # Errors
/// Database errors.
pub async fn must_enrol(ctx: &Ctx, user: &AuthUser) -> Result<bool> {
    Ok(user.is_admin() && required_for_admins(ctx).await? && !enabled(ctx, user.user_id).await?)
}

/// The signed-in user's two-factor state (with the pending enrolment's secret, for their eyes only).
///
/// # Errors
/// [`Error::Unauthenticated`], database.
pub async fn status(ctx: &Ctx, actor: &Actor) -> Result<Status> {
    let user = actor.reader()?;
    let row = sqlx::query!(
        r#"select secret_enc, enabled_at,
                  (select count(*) from user_recovery_code r where r.user_id = t.user_id and r.used_at is null)
                    as "left!"
           from user_totp t where user_id = $1"#,
        user.user_id,
    )
    .fetch_optional(&ctx.db)
    .await?;
    let required = must_enrol(ctx, user).await?;
    Ok(match row {
        None => Status {
            enabled: false,
            enabled_at: None,
            recovery_codes_left: 0,
            pending: None,
            required,
        },
        Some(r) => Status {
            enabled: r.enabled_at.is_some(),
            enabled_at: r.enabled_at,
            recovery_codes_left: r.left,
            // Only the session that started the enrolment can read its secret (see `totp::enrolment_key`).
            pending: if r.enabled_at.is_none()
                && let Some(session) = user.session_id()
            {
                let key = totp::enrolment_key(&ctx.keys.totp, session);
                totp::open(&key, user.user_id, &r.secret_enc).map(|secret| Enrolment {
                    uri: totp::otpauth_uri(&secret, &user.email, ISSUER),
                    secret: totp::base32_encode(&secret),
                })
            } else {
                None
            },
            required,
        },
    })
}

/// Starts (or restarts) an enrolment: needs the current password; refused while two-factor sign-in is on.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`] (API token), [`Error::Conflict`] (already on), the
/// password refusals of [`super::password`], database.
pub async fn begin(ctx: &Ctx, actor: &Actor, current_password: String) -> Result<Enrolment> {
    let user = session_user(actor)?;
    if current_password.chars().count() > crate::auth::password::MAX_CHARS {
        return Err(super::password::wrong_current_password());
    }
    if enabled(ctx, user.user_id).await? {
        return Err(Error::Conflict(
            "two-factor sign-in is already on; turn it off first to move it to another app".into(),
        ));
    }
    super::password::confirm_current(ctx, actor, current_password, "two_factor_enrolment").await?;
    let secret = totp::new_secret();
    let session = user.session_id().ok_or(Error::Unauthenticated)?;
    let sealed = totp::seal(
        &totp::enrolment_key(&ctx.keys.totp, session),
        user.user_id,
        &secret,
    );
    let mut tx = ctx.db.begin().await?;
    let started = sqlx::query!(
        "insert into user_totp (user_id, secret_enc) values ($1, $2)
         on conflict (user_id) do update set secret_enc = $2, last_step = null, created_at = now()
         where user_totp.enabled_at is null",
        user.user_id,
        sealed,
    )
    .execute(&mut *tx)
    .await?;
    if started.rows_affected() != 1 {
        return Err(Error::Conflict("two-factor sign-in is already on".into()));
    }
    actor
        .audit(&mut tx, event::ENROLMENT_STARTED, None, json!({}))
        .await?;
    tx.commit().await?;
    Ok(Enrolment {
        uri: totp::otpauth_uri(&secret, &user.email, ISSUER),
        secret: totp::base32_encode(&secret),
    })
}

/// Replaces the account's recovery codes with new ones (returned in plain text, once).
async fn new_codes(conn: &mut PgConnection, user_id: Uuid) -> Result<Vec<String>> {
    sqlx::query!("delete from user_recovery_code where user_id = $1", user_id)
        .execute(&mut *conn)
        .await?;
    let codes = totp::new_recovery_codes();
    let hashes: Vec<String> = codes
        .iter()
        .filter_map(|c| totp::recovery_hash(user_id, c))
        .collect();
    sqlx::query!(
        "insert into user_recovery_code (user_id, code_hash) select $1, unnest($2::text[])
         on conflict do nothing",
        user_id,
        &hashes,
    )
    .execute(&mut *conn)
    .await?;
    Ok(codes)
}

async fn emit_change(
    ctx: &Ctx,
    conn: &mut PgConnection,
    user_id: Uuid,
    change: &str,
) -> Result<notify::Emitted> {
    super::emit(
        ctx,
        conn,
        &Event::TwoFactorChanged(TwoFactorChanged {
            user_id,
            change: change.to_owned(),
            change_id: Uuid::new_v4(),
        }),
    )
    .await
}

/// Turns two-factor sign-in on with the first code of the pending enrolment; returns the recovery codes
/// (shown once).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`] (API token), [`Error::Conflict`] (nothing pending),
/// [`Error::Invalid`] on `code`, database.
pub async fn confirm(ctx: &Ctx, actor: &Actor, code: &str) -> Result<Vec<String>> {
    let user = session_user(actor)?;
    let mut tx = ctx.db.begin().await?;
    let row = sqlx::query!(
        "select secret_enc, enabled_at, last_step from user_totp where user_id = $1 for update",
        user.user_id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row.filter(|r| r.enabled_at.is_none()) else {
        return Err(Error::Conflict(
            "there is no enrolment waiting for a code; start again on the account page".into(),
        ));
    };
    let key = totp::enrolment_key(
        &ctx.keys.totp,
        user.session_id().ok_or(Error::Unauthenticated)?,
    );
    let secret = totp::open(&key, user.user_id, &row.secret_enc).ok_or_else(|| {
        Error::Conflict(
            "this enrolment was started in another browser session (or can no longer be read); start again here"
                .into(),
        )
    })?;
    let now = totp::step_of(Utc::now().timestamp());
    let Some(step) = totp::verify(&secret, code, now, row.last_step) else {
        return Err(wrong_code());
    };
    // From now on the sign-in reads the secret: sealed with the account key, no longer the session's.
    sqlx::query!(
        "update user_totp set enabled_at = now(), last_step = $2, secret_enc = $3 where user_id = $1",
        user.user_id,
        step,
        totp::seal(&ctx.keys.totp, user.user_id, &secret),
    )
    .execute(&mut *tx)
    .await?;
    let codes = new_codes(&mut tx, user.user_id).await?;
    super::email_change::void_pending(&mut tx, user.user_id).await?;
    // Sessions signed in with the password alone end: from now on the account needs the second factor.
    let ended = session::revoke_all(&mut *tx, user.user_id, user.session_id()).await?;
    actor
        .audit(
            &mut tx,
            event::ENABLED,
            None,
            json!({ "sessions_ended": ended }),
        )
        .await?;
    let emitted = emit_change(ctx, &mut tx, user.user_id, "enabled").await?;
    tx.commit().await?;
    notify::push(&ctx.jobs, &[emitted]).await;
    Ok(codes)
}

/// What [`check_code`] accepted.
enum Accepted {
    Totp,
    RecoveryCode,
}

/// Checks a code (TOTP, not a reused step) or an unused recovery code of `user_id` in the caller's
/// transaction, with the `user_totp` row locked; uses it up. `Ok(None)`: wrong.
async fn check_code(
    ctx: &Ctx,
    conn: &mut PgConnection,
    user_id: Uuid,
    code: &str,
) -> Result<Option<Accepted>> {
    let row = sqlx::query!(
        "select secret_enc, last_step from user_totp where user_id = $1 and enabled_at is not null for update",
        user_id,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    if totp::normalize_code(code).is_some() {
        let now = totp::step_of(Utc::now().timestamp());
        if let Some(secret) = totp::open(&ctx.keys.totp, user_id, &row.secret_enc)
            && let Some(step) = totp::verify(&secret, code, now, row.last_step)
        {
            sqlx::query!(
                "update user_totp set last_step = $2 where user_id = $1",
                user_id,
                step,
            )
            .execute(&mut *conn)
            .await?;
            return Ok(Some(Accepted::Totp));
        }
        return Ok(None);
    }
    let Some(hash) = totp::recovery_hash(user_id, code) else {
        return Ok(None);
    };
    let used = sqlx::query!(
        "update user_recovery_code set used_at = now()
         where user_id = $1 and code_hash = $2 and used_at is null",
        user_id,
        hash,
    )
    .execute(&mut *conn)
    .await?;
    Ok((used.rows_affected() == 1).then_some(Accepted::RecoveryCode))
}

/// Locks the account's `user_totp` row (if any) to the end of the caller's transaction. Everything that
/// changes an account's sign-in challenges or its `user_totp` row takes this lock first (then the challenge
/// rows), so they never wait on each other in opposite orders.
async fn lock_totp(conn: &mut PgConnection, user_id: Uuid) -> Result<()> {
    sqlx::query!(
        "select user_id from user_totp where user_id = $1 for update",
        user_id,
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(())
}

/// Refuses when the account had too many failed codes lately. Locks the account's `user_totp` row first and
/// holds it to the end of the caller's transaction, which also records a failure ([`record_failure`]): checks
/// of one account run one at a time, each counting every failure before it, so parallel requests cannot try
/// more codes than the limit allows.
/// Returns the account's wrong codes in the window so far.
async fn check_limit(conn: &mut PgConnection, user_id: Uuid) -> Result<i64> {
    lock_totp(conn, user_id).await?;
    let r = sqlx::query!(
        r#"select count(*) as "n!", min(created_at) as first from audit_event
           where user_id = $1 and event = $2 and created_at > now() - make_interval(secs => $3)"#,
        user_id,
        event::FAILED,
        FAILURE_WINDOW_SECS as f64,
    )
    .fetch_one(&mut *conn)
    .await?;
    if r.n >= FAILURES_PER_ACCOUNT {
        let waited = r.first.map_or(0, |f| (Utc::now() - f).num_seconds());
        let retry = u64::try_from(FAILURE_WINDOW_SECS - waited)
            .unwrap_or(1)
            .max(1);
        return Err(Error::RateLimited { retry_after: retry });
    }
    Ok(r.n)
}

/// Records a failed code (the count the limit reads) in the transaction that holds the `user_totp` lock
/// ([`check_limit`]).
async fn record_failure(
    conn: &mut PgConnection,
    actor: &Actor,
    user_id: Uuid,
    during: &str,
) -> Result<()> {
    actor
        .audit(
            conn,
            event::FAILED,
            Some(user_id),
            json!({ "during": during }),
        )
        .await
}

/// Stores the second step of a sign-in whose password was right (called by [`super::signin::sign_in`]).
///
/// # Errors
/// Database errors.
pub(super) async fn challenge(ctx: &Ctx, actor: &Actor, user: &users::User) -> Result<Challenge> {
    let token = random_secret();
    let expires_at = Utc::now() + chrono::Duration::seconds(CHALLENGE_SECS);
    let mut tx = ctx.db.begin().await?;
    // One sign-in at a time per account counts and trims its pending second steps.
    lock_totp(&mut tx, user.user_id).await?;
    sqlx::query!(
        "delete from signin_challenge where user_id = $1 and (expires_at < now() or used_at is not null)",
        user.user_id,
    )
    .execute(&mut *tx)
    .await?;
    // At most MAX_OPEN_CHALLENGES stay open: the oldest make room for this one.
    sqlx::query!(
        "delete from signin_challenge where challenge_hash in (
             select challenge_hash from signin_challenge where user_id = $1
             order by created_at desc, challenge_hash offset $2)",
        user.user_id,
        MAX_OPEN_CHALLENGES - 1,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "insert into signin_challenge (challenge_hash, user_id, expires_at) values ($1, $2, $3)",
        hex(&sha256(&token)),
        user.user_id,
        expires_at,
    )
    .execute(&mut *tx)
    .await?;
    actor
        .audit_email(
            &mut tx,
            event::CHALLENGED,
            Some(user.user_id),
            Some(&user.email),
            json!({}),
        )
        .await?;
    tx.commit().await?;
    Ok(Challenge { token, expires_at })
}

/// The second step of a sign-in: the pending sign-in named by `challenge` and a code (or a recovery code)
/// start the session. A wrong code counts against the pending sign-in and the account.
///
/// # Errors
/// [`Error::Invalid`] on `challenge` (expired, used up, unknown) or `code`, [`Error::RateLimited`],
/// [`Error::Forbidden`] (suspended meanwhile, or waiting for sign-up approval), database.
pub async fn sign_in_code(
    ctx: &Ctx,
    actor: &Actor,
    challenge: &str,
    code: &str,
) -> Result<super::signin::SignedIn> {
    if challenge.len() != 64 || code.chars().count() > 32 {
        return Err(if code.chars().count() > 32 {
            wrong_code()
        } else {
            expired_challenge()
        });
    }
    let mut tx = ctx.db.begin().await?;
    let Some(user_id) = sqlx::query_scalar!(
        "select user_id from signin_challenge where challenge_hash = $1",
        hex(&sha256(challenge)),
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(expired_challenge());
    };
    // The account's lock first (see `lock_totp`), then the challenge's attempt.
    let failed_before = check_limit(&mut tx, user_id).await?;
    let row = sqlx::query!(
        "update signin_challenge set attempts = attempts + 1
         where challenge_hash = $1 and user_id = $3 and used_at is null and expires_at > now()
           and attempts < $2
         returning user_id, attempts",
        hex(&sha256(challenge)),
        CHALLENGE_ATTEMPTS,
        user_id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(expired_challenge());
    };
    let accepted = check_code(ctx, &mut tx, row.user_id, code).await?;
    let Some(accepted) = accepted else {
        // The attempt counts (the challenge's counter and the audit entry) although the code was wrong.
        record_failure(&mut tx, actor, row.user_id, "signin").await?;
        tx.commit().await?;
        // Whoever this is knows the password. The owner hears of it once the pending sign-in has used up its
        // attempts or the account reached its limit (not at a first typo), at most once per 15-minute window
        // (someone with the password cannot turn it into a stream of mail). After the commit, in its own
        // transaction: the failure counts whatever happens to the notice.
        let failures = failed_before + 1;
        let locked = failures >= FAILURES_PER_ACCOUNT;
        if locked || row.attempts >= CHALLENGE_ATTEMPTS {
            let now = Utc::now();
            let event = Event::TwoFactorFailed(TwoFactorFailed {
                user_id: row.user_id,
                ip: actor.meta.ip.clone(),
                device: device(&actor.meta.user_agent),
                at: now,
                failures,
                locked,
                window: now.timestamp().div_euclid(FAILURE_WINDOW_SECS),
            });
            let sent = async {
                let mut tx = ctx.db.begin().await?;
                let emitted = super::emit(ctx, &mut tx, &event).await?;
                tx.commit().await?;
                notify::push(&ctx.jobs, &[emitted]).await;
                Ok::<_, Error>(())
            }
            .await;
            if let Err(e) = sent {
                tracing::error!(user_id = %row.user_id, error = %e, "could not record the failed second step notice");
            }
        }
        return Err(wrong_code());
    };
    sqlx::query!(
        "update signin_challenge set used_at = now() where challenge_hash = $1",
        hex(&sha256(challenge)),
    )
    .execute(&mut *tx)
    .await?;
    if matches!(accepted, Accepted::RecoveryCode) {
        actor
            .audit(
                &mut tx,
                event::RECOVERY_CODE_USED,
                Some(row.user_id),
                json!({}),
            )
            .await?;
    }
    tx.commit().await?;
    let user = users::get(&ctx.db, row.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| Error::Forbidden("Your account is suspended.".into()))?;
    // A sign-in begun before the account was put back to wait for approval (or by an older release that
    // ignored the request) starts no session.
    if crate::admin::signups::is_pending(&mut *ctx.db.acquire().await?, row.user_id).await? {
        return Err(Error::Forbidden(
            crate::admin::signups::PENDING_MESSAGE.into(),
        ));
    }
    super::signin::start_session(ctx, actor, user, true).await
}

/// Confirms a sensitive change with a code, a recovery code or (when no code is given) the password.
async fn prove(
    ctx: &Ctx,
    actor: &Actor,
    user: &AuthUser,
    proof: Proof,
    during: &str,
) -> Result<()> {
    let code = proof.code.trim();
    if code.is_empty() {
        if proof.password.is_empty() {
            return Err(Error::invalid(
                "code",
                "Enter a code from your authenticator app, a recovery code or your password.",
            ));
        }
        if proof.password.chars().count() > crate::auth::password::MAX_CHARS {
            return Err(super::password::wrong_current_password());
        }
        return super::password::confirm_current(ctx, actor, proof.password, during).await;
    }
    if code.chars().count() > 32 {
        return Err(wrong_code());
    }
    let mut tx = ctx.db.begin().await?;
    check_limit(&mut tx, user.user_id).await?;
    let ok = check_code(ctx, &mut tx, user.user_id, code).await?;
    if ok.is_none() {
        record_failure(&mut tx, actor, user.user_id, during).await?;
    }
    tx.commit().await?;
    match ok {
        Some(_) => Ok(()),
        None => Err(wrong_code()),
    }
}

/// Turns two-factor sign-in off (with a code, a recovery code or the password).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`] (API token), [`Error::Conflict`] (not on), the code and
/// password refusals, [`Error::RateLimited`], database.
pub async fn disable(ctx: &Ctx, actor: &Actor, proof: Proof) -> Result<()> {
    let user = session_user(actor)?;
    if !enabled(ctx, user.user_id).await? {
        return Err(Error::Conflict("two-factor sign-in is not on".into()));
    }
    prove(ctx, actor, user, proof, "two_factor_disable").await?;
    let mut tx = ctx.db.begin().await?;
    remove(&mut tx, user.user_id).await?;
    actor
        .audit(&mut tx, event::DISABLED, None, json!({}))
        .await?;
    let emitted = emit_change(ctx, &mut tx, user.user_id, "disabled").await?;
    tx.commit().await?;
    notify::push(&ctx.jobs, &[emitted]).await;
    Ok(())
}

async fn remove(conn: &mut PgConnection, user_id: Uuid) -> Result<u64> {
    lock_totp(conn, user_id).await?;
    sqlx::query!("delete from user_recovery_code where user_id = $1", user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query!("delete from signin_challenge where user_id = $1", user_id)
        .execute(&mut *conn)
        .await?;
    let r = sqlx::query!("delete from user_totp where user_id = $1", user_id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}

/// Replaces the recovery codes (with a code, a recovery code or the password); returns the new ones, once.
///
/// # Errors
/// As [`disable`].
pub async fn regenerate_codes(ctx: &Ctx, actor: &Actor, proof: Proof) -> Result<Vec<String>> {
    let user = session_user(actor)?;
    if !enabled(ctx, user.user_id).await? {
        return Err(Error::Conflict("two-factor sign-in is not on".into()));
    }
    prove(ctx, actor, user, proof, "two_factor_recovery_codes").await?;
    let mut tx = ctx.db.begin().await?;
    let codes = new_codes(&mut tx, user.user_id).await?;
    super::email_change::void_pending(&mut tx, user.user_id).await?;
    actor
        .audit(&mut tx, event::RECOVERY_CODES_REGENERATED, None, json!({}))
        .await?;
    let emitted = emit_change(ctx, &mut tx, user.user_id, "recovery_codes_regenerated").await?;
    tx.commit().await?;
    notify::push(&ctx.jobs, &[emitted]).await;
    Ok(codes)
}

/// An administrator turns off a user's two-factor sign-in (e.g. a lost phone); audited, and the user is told
/// by the security email. The user's pending sign-ins end too. Not on oneself (the account page does that,
/// with a code or the password), and not on an administrator with an API token (a leaked admin token must not
/// strip an administrator's second factor: that takes a signed-in administrator in the browser).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`] (oneself; an API token on an administrator),
/// [`Error::NotFound`], [`Error::Conflict`] (not on), database.
pub async fn admin_reset(ctx: &Ctx, actor: &Actor, user_id: Uuid) -> Result<()> {
    let admin = actor.admin_writer()?;
    if admin.is_some_and(|a| a.user_id == user_id) {
        return Err(Error::Forbidden(
            "use your account page to turn off your own two-factor sign-in".into(),
        ));
    }
    let user = users::get(&ctx.db, user_id).await?.ok_or(Error::NotFound)?;
    if user.role == crate::auth::Role::Admin && admin.is_some_and(|a| a.session_id().is_none()) {
        return Err(Error::Forbidden(
            "an administrator's two-factor sign-in is reset in the admin console in the browser, not with an \
             API token"
                .into(),
        ));
    }
    let mut tx = ctx.db.begin().await?;
    if remove(&mut tx, user_id).await? == 0 {
        return Err(Error::Conflict(
            "this user has no two-factor sign-in to reset".into(),
        ));
    }
    super::email_change::void_pending(&mut tx, user_id).await?;
    actor
        .audit_email(
            &mut tx,
            event::RESET_BY_ADMIN,
            Some(user_id),
            Some(&user.email),
            json!({}),
        )
        .await?;
    let emitted = emit_change(ctx, &mut tx, user_id, "reset_by_admin").await?;
    tx.commit().await?;
    notify::push(&ctx.jobs, &[emitted]).await;
    Ok(())
}

/// The cookie carrying a pending sign-in's challenge token to the code form (HttpOnly, [`CHALLENGE_SECS`]).
pub fn challenge_cookie_name(settings: &crate::settings::Settings) -> &'static str {
    if settings.secure_cookies() {
        "__Host-vortex_2fa"
    } else {
        "vortex_2fa"
    }
}

/// The short-lived cookie carrying new recovery codes to the one page view that shows them.
pub fn codes_cookie_name(settings: &crate::settings::Settings) -> &'static str {
    if settings.secure_cookies() {
        "__Host-vortex_recovery_codes"
    } else {
        "vortex_recovery_codes"
    }
}

/// `Set-Cookie` for the recovery codes (`max_age_secs = 0` deletes it): HttpOnly, SameSite=Strict.
pub fn codes_cookie(
    settings: &crate::settings::Settings,
    codes: &[String],
    max_age_secs: u64,
) -> String {
    format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
        codes_cookie_name(settings),
        codes.join("."),
        if settings.secure_cookies() {
            "; Secure"
        } else {
            ""
        }
    )
}

/// The codes a [`codes_cookie`] carries (`None` for anything malformed).
pub fn codes_from_cookie(raw: &str) -> Option<Vec<String>> {
    let codes: Vec<String> = raw.split('.').map(str::to_owned).collect();
    (codes.len() == totp::RECOVERY_CODES && codes.iter().all(|c| totp::is_recovery_code(c)))
        .then_some(codes)
}
