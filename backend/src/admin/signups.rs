//! Sign-up approval (docs/admin.md#pending-sign-ups): while the sign-up policy is `approval`, a new account
//! waits with the applicant's reason (a `signup_request` row) until an administrator approves or rejects it.
//!
//! * A **pending** account cannot sign in (the right password is told "awaiting approval", a wrong one gets
//!   the usual answer, so nobody else learns of the request), holds no seat (the overview and plan counts leave
//!   it out) and so runs nothing; its email confirmation link works as usual.
//! * **Approve** ([`approve`]) ends the wait, once the applicant has confirmed the address: the applicant is
//!   mailed and can sign in. Audited as `signup_approved`.
//! * **Reject** ([`reject`]) deletes the account (as an account deletion does: the audit trail keeps its
//!   entries by user id, without the address) and mails the applicant the administrator's reason. A confirmed
//!   address may apply again after [`REAPPLY_DAYS`] days (only a hash of it is kept until then); an
//!   unconfirmed one is not held. Audited as `signup_rejected`.
//! * **Approvers** ([`set_approver`]): administrators marked to be notified of new requests
//!   (`admin.signup_requested`); while none is marked, every active administrator is. Audited as
//!   `signup_approver_changed`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::event;
use crate::{
    Actor, Ctx,
    auth::Role,
    error::{Error, Result},
    mail::{outbox, templates},
};

/// Longest applicant's reason, in characters.
pub const MAX_REASON: usize = 1000;
/// Longest rejection reason (mailed to the applicant), in characters.
pub const MAX_REJECTION: usize = 500;
/// Days after a rejection before the same address may apply again.
pub const REAPPLY_DAYS: i64 = 30;
/// Most pending requests one list shows (oldest first).
pub const MAX_LIST: i64 = 500;
/// At most this many sign-ups wait for a decision at once: beyond it an application gets the usual answer but
/// creates nothing (no account, no mail, no approver notification), so a flood of applications cannot bury the
/// real ones or mail the approvers without end. Decide or reject waiting requests to take new ones.
pub const MAX_PENDING: i64 = 1000;

/// The refusal a pending account's right password gets at sign-in.
pub const PENDING_MESSAGE: &str = "Your request for an account is awaiting approval by an administrator. \
     You will get an email when it is decided.";

/// The refusal to change the role or approver flag of an account waiting for sign-up approval.
pub const PENDING_CHANGE: &str =
    "this account waits for sign-up approval: approve or reject it on /admin/signups first";

/// Unicode format characters (`\p{Cf}`: bidirectional overrides such as U+202E, zero-width characters),
/// which make a reason read differently from what it says.
fn has_format_chars(s: &str) -> bool {
    static CF: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\p{Cf}").expect("valid pattern"));
    CF.is_match(s)
}

/// A request waiting for a decision.
#[derive(Debug, Clone, Serialize)]
pub struct PendingSignup {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    /// The address's domain.
    pub domain: String,
    pub reason: String,
    pub email_verified: bool,
    pub requested_at: DateTime<Utc>,
}

/// The applicant's reason as stored: trimmed, 1..=[`MAX_REASON`] characters, line breaks allowed (as `\n`),
/// no other control characters and no format characters (`\p{Cf}`).
///
/// # Errors
/// [`Error::Invalid`] on `reason`.
pub fn parse_reason(reason: Option<&str>) -> Result<String> {
    let r = reason.unwrap_or_default().replace("\r\n", "\n");
    let r = r.trim();
    if r.is_empty() {
        return Err(Error::invalid(
            "reason",
            "Sign-ups on this instance are approved by an administrator: say why you want an account.",
        ));
    }
    if r.chars().count() > MAX_REASON
        || r.chars().any(|c| c.is_control() && c != '\n')
        || has_format_chars(r)
    {
        return Err(Error::invalid(
            "reason",
            format!(
                "Use at most {MAX_REASON} characters for your reason, without control or invisible formatting characters."
            ),
        ));
    }
    Ok(r.to_owned())
}

/// A rejection reason: trimmed, 1..=[`MAX_REJECTION`] characters, one line, no format characters
/// (`\p{Cf}`).
fn parse_rejection(reason: &str) -> Result<String> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(Error::invalid(
            "reason",
            "say why (the applicant is mailed the reason)",
        ));
    }
    if r.chars().count() > MAX_REJECTION || r.chars().any(char::is_control) || has_format_chars(r) {
        return Err(Error::invalid(
            "reason",
            format!(
                "use at most {MAX_REJECTION} characters, on one line, without invisible formatting characters"
            ),
        ));
    }
    Ok(r.to_owned())
}

fn domain_of(email: &str) -> String {
    email
        .rsplit_once('@')
        .map(|(_, d)| d.to_lowercase())
        .unwrap_or_default()
}

/// The hash a rejected address is remembered by (lower case, SHA-256, hex).
pub fn address_hash(email: &str) -> String {
    crate::settings::hex(&crate::auth::sha256(&email.trim().to_lowercase()))
}

/// Whether `user_id` waits for approval.
///
/// # Errors
/// Database errors.
pub async fn is_pending(conn: &mut sqlx::PgConnection, user_id: Uuid) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"select exists (select 1 from signup_request where user_id = $1) as "pending!""#,
        user_id,
    )
    .fetch_one(conn)
    .await?)
}

/// Whether `email` was rejected less than [`REAPPLY_DAYS`] days ago (a new application is then not taken).
///
/// # Errors
/// Database errors.
pub async fn cooling_off(conn: &mut sqlx::PgConnection, email: &str) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"select exists (select 1 from signup_rejection where email_hash = $1 and reapply_after > now())
           as "cooling!""#,
        address_hash(email),
    )
    .fetch_one(conn)
    .await?)
}

/// The number of sign-ups waiting for a decision.
///
/// # Errors
/// Database errors.
pub async fn pending_count(db: &sqlx::PgPool) -> Result<i64> {
    Ok(
        sqlx::query_scalar!(r#"select count(*) as "n!" from signup_request"#)
            .fetch_one(db)
            .await?,
    )
}

/// Records the new account `user_id` (address `email`) as waiting for approval with `reason`, in the sign-up's
/// transaction, and notifies the approvers (`admin.signup_requested`); returns the event to push after
/// committing.
///
/// # Errors
/// Database errors.
pub async fn request(
    ctx: &Ctx,
    conn: &mut sqlx::PgConnection,
    user_id: Uuid,
    email: &str,
    reason: &str,
) -> Result<crate::notify::Emitted> {
    sqlx::query!(
        "insert into signup_request (user_id, reason) values ($1, $2)",
        user_id,
        reason,
    )
    .execute(&mut *conn)
    .await?;
    let event = crate::notify::Event::SignupRequested(crate::notify::event::SignupRequested {
        user_id,
        email: crate::notify::unsubscribe::mask_email(email),
        domain: domain_of(email),
        reason: crate::notify::event::clip(reason, 500),
    });
    Ok(crate::notify::emit(conn, &ctx.jobs, &ctx.clock, &event).await?)
}

/// The requests waiting for a decision, oldest first, at most [`MAX_LIST`] (admins only).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], database.
pub async fn list(actor: &Actor, ctx: &Ctx) -> Result<Vec<PendingSignup>> {
    actor.admin()?;
    let rows = sqlx::query!(
        r#"select r.user_id, u.email, u.display_name, r.reason, r.created_at,
                  u.email_verified_at is not null as "verified!"
           from signup_request r join app_user u on u.user_id = r.user_id
           order by r.created_at, r.user_id
           limit $1"#,
        MAX_LIST,
    )
    .fetch_all(&ctx.db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| PendingSignup {
            domain: domain_of(&r.email),
            user_id: r.user_id,
            email: r.email,
            display_name: r.display_name,
            reason: r.reason,
            email_verified: r.verified,
            requested_at: r.created_at,
        })
        .collect())
}

/// The addresses of the active administrators marked as sign-up approvers (empty: none is marked, so every
/// active administrator is notified). Admins only.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], database.
pub async fn approvers(actor: &Actor, ctx: &Ctx) -> Result<Vec<String>> {
    actor.admin()?;
    Ok(sqlx::query_scalar!(
        "select email from app_user where role = 'admin' and disabled_at is null and signup_approver
         order by lower(email)"
    )
    .fetch_all(&ctx.db)
    .await?)
}

/// A pending request, locked.
struct Locked {
    email: String,
    reason: String,
    /// Whether the applicant has confirmed the address.
    verified: bool,
}

/// The refusal to approve a request whose address is not confirmed.
pub const UNCONFIRMED_MESSAGE: &str = "the applicant has not confirmed the address yet";

/// Locks the pending request of `user_id`; the applicant's address, reason and whether it is confirmed.
async fn lock_pending(conn: &mut sqlx::PgConnection, user_id: Uuid) -> Result<Locked> {
    let r = sqlx::query!(
        r#"select u.email, r.reason, u.email_verified_at is not null as "verified!"
           from signup_request r join app_user u on u.user_id = r.user_id
           where r.user_id = $1 for update of r, u"#,
        user_id,
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound)?;
    Ok(Locked {
        email: r.email,
        reason: r.reason,
        verified: r.verified,
    })
}

/// Queues an applicant's outcome mail in the caller's transaction (to the address only: a rejected account is
/// gone by the time it is sent); returns the job to push after committing.
async fn queue_outcome(
    ctx: &Ctx,
    actor: &Actor,
    conn: &mut sqlx::PgConnection,
    to: &str,
    rendered: templates::Rendered,
) -> Result<Uuid> {
    let domain = ctx.mailer.message_id_domain();
    let (email_id, job) = outbox::queue(
        conn,
        &ctx.jobs,
        &domain,
        None,
        to,
        rendered,
        actor.request_id.clone(),
    )
    .await?;
    sqlx::query!(
        "update email_outbox set category = 'account', mail_class = 'transactional' where email_id = $1",
        email_id,
    )
    .execute(&mut *conn)
    .await?;
    Ok(job)
}

/// Approves a pending sign-up (admins with a read-write credential): the account can sign in from now on, and
/// the applicant is mailed. Audited as `signup_approved` (with the domain and the applicant's reason). Only
/// once the applicant has confirmed the address ([`UNCONFIRMED_MESSAGE`]): approving an address nobody has
/// shown to own would give its account to whoever typed it.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`] (no such pending request: already
/// decided, or never made), [`Error::Conflict`] (the address is not confirmed yet), database.
pub async fn approve(actor: &Actor, ctx: &Ctx, user_id: Uuid) -> Result<()> {
    actor.admin_writer()?;
    let mut tx = ctx.db.begin().await?;
    let Locked {
        email,
        reason,
        verified,
    } = lock_pending(&mut tx, user_id).await?;
    if !verified {
        return Err(Error::Conflict(UNCONFIRMED_MESSAGE.into()));
    }
    sqlx::query!("delete from signup_request where user_id = $1", user_id)
        .execute(&mut *tx)
        .await?;
    let mut signin = ctx.settings.public_url.clone();
    signin.set_path("/signin");
    let job = queue_outcome(
        ctx,
        actor,
        &mut tx,
        &email,
        templates::signup_approved(signin.as_str())?,
    )
    .await?;
    actor
        .audit_email(
            &mut tx,
            event::SIGNUP_APPROVED,
            Some(user_id),
            Some(&email),
            json!({ "domain": domain_of(&email), "reason": reason }),
        )
        .await?;
    tx.commit().await?;
    ctx.jobs.push(crate::jobs::DEFAULT_QUEUE, job).await;
    Ok(())
}

/// Rejects a pending sign-up with a `reason` mailed to the applicant (admins with a read-write credential):
/// the account is deleted (sessions, tokens, one-time links and mail to it go with it; the audit trail keeps
/// its entries by id without the address) and the address may apply again after [`REAPPLY_DAYS`] days (when
/// the applicant had confirmed it; an unconfirmed address is not held, so nobody can lock another's address
/// out by applying with it).
/// Audited as `signup_rejected` (with the domain and both reasons).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Invalid`] (`reason`), [`Error::NotFound`] (no
/// such pending request), database.
pub async fn reject(actor: &Actor, ctx: &Ctx, user_id: Uuid, reason: &str) -> Result<()> {
    actor.admin_writer()?;
    let rejection = parse_rejection(reason)?;
    let mut tx = ctx.db.begin().await?;
    let Locked {
        email,
        reason: applicant_reason,
        verified,
    } = lock_pending(&mut tx, user_id).await?;
    // As an account deletion: the audit rows stay with the id but lose the address.
    sqlx::query!(
        "update audit_event set subject_email = null where user_id = $1 or actor_id = $1",
        user_id,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "delete from auth_attempt where lower(account) = lower($1)",
        email
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("delete from email_outbox where user_id = $1", user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query!("delete from app_user where user_id = $1", user_id)
        .execute(&mut *tx)
        .await?;
    // The hold only for an address its owner confirmed: anyone may type someone else's address into the
    // form, and a rejection of that must not keep the real owner out for a month.
    let reapply = verified.then(|| ctx.clock.now() + chrono::Duration::days(REAPPLY_DAYS));
    if let Some(reapply) = reapply {
        sqlx::query!(
            "insert into signup_rejection (email_hash, reapply_after) values ($1, $2)
             on conflict (email_hash) do update set rejected_at = now(), reapply_after = excluded.reapply_after",
            address_hash(&email),
            reapply,
        )
        .execute(&mut *tx)
        .await?;
    }
    let reapply_day = reapply
        .unwrap_or_else(|| ctx.clock.now())
        .format("%Y-%m-%d")
        .to_string();
    let job = queue_outcome(
        ctx,
        actor,
        &mut tx,
        &email,
        templates::signup_rejected(&rejection, &reapply_day)?,
    )
    .await?;
    actor
        .audit(
            &mut tx,
            event::SIGNUP_REJECTED,
            Some(user_id),
            json!({
                "domain": domain_of(&email),
                "reason": rejection,
                "applicant_reason": applicant_reason,
                "reapply_after": reapply,
            }),
        )
        .await?;
    tx.commit().await?;
    ctx.jobs.push(crate::jobs::DEFAULT_QUEUE, job).await;
    Ok(())
}

/// Marks or unmarks the administrator `user_id` as a sign-up approver (admins with a read-write credential).
/// Audited as `signup_approver_changed`; a change to the same value stores and audits nothing.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], [`Error::Conflict`] (not an
/// administrator, or waiting for sign-up approval), database.
pub async fn set_approver(actor: &Actor, ctx: &Ctx, user_id: Uuid, approver: bool) -> Result<()> {
    actor.admin_writer()?;
    let mut tx = ctx.db.begin().await?;
    let r = sqlx::query!(
        "select role, signup_approver, email from app_user where user_id = $1 for update",
        user_id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    if is_pending(&mut tx, user_id).await? {
        return Err(Error::Conflict(PENDING_CHANGE.into()));
    }
    if r.role != Role::Admin.as_str() {
        return Err(Error::Conflict(
            "only administrators approve sign-ups: make this account an administrator first".into(),
        ));
    }
    if r.signup_approver == approver {
        return Ok(());
    }
    sqlx::query!(
        "update app_user set signup_approver = $2 where user_id = $1",
        user_id,
        approver,
    )
    .execute(&mut *tx)
    .await?;
    actor
        .audit_email(
            &mut tx,
            event::SIGNUP_APPROVER_CHANGED,
            Some(user_id),
            Some(&r.email),
            json!({ "from": r.signup_approver, "to": approver }),
        )
        .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_trimmed_bounded_and_free_of_control_characters() {
        assert_eq!(
            parse_reason(Some("  I trade for a living \r\n and test here ")).unwrap(),
            "I trade for a living \n and test here"
        );
        for bad in [
            None,
            Some(""),
            Some("   \n "),
            Some("a\u{0}b"),
            Some("a\u{1b}[31m"),
            Some("fine \u{202e}txt.exe"),
            Some("zero\u{200b}width"),
        ] {
            assert!(parse_reason(bad).is_err(), "{bad:?}");
        }
        assert!(parse_reason(Some(&"x".repeat(MAX_REASON))).is_ok());
        assert!(parse_reason(Some(&"x".repeat(MAX_REASON + 1))).is_err());
        assert_eq!(parse_rejection(" not a fit ").unwrap(), "not a fit");
        assert!(parse_rejection("").is_err());
        assert!(parse_rejection("two\nlines").is_err());
        assert!(parse_rejection("not \u{202e}a fit").is_err());
        assert!(parse_rejection("no\u{feff}").is_err());
        assert!(parse_rejection(&"x".repeat(MAX_REJECTION + 1)).is_err());
        assert_eq!(
            address_hash("Ann@Example.org"),
            address_hash("ann@example.org")
        );
        assert_eq!(domain_of("ann@Example.ORG"), "example.org");
    }
}
