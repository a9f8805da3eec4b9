//! Changing the account's email address: the trader asks with the new address and the current password; a
//! single-use link (24 hours, only its hash stored) goes to the NEW address; opening it makes the change, and the
//! OLD address gets a security notice. The address stays unique (case-insensitive) at both steps.

use chrono::Utc;
use serde_json::json;

use crate::{
    Actor, Ctx,
    auth::{random_secret, rate_limit, sha256, users},
    error::{Error, Result},
    mail::{outbox, templates},
    settings::hex,
};

/// How long the confirmation link works, in hours.
pub const LINK_HOURS: i64 = 24;

/// Audit event names.
pub mod event {
    pub const REQUESTED: &str = "email_change_requested";
    /// On the trail of the account that has the address someone asked to move another account to.
    pub const ADDRESS_TAKEN: &str = "email_change_address_taken";
    pub const CHANGED: &str = "email_changed";
}

/// Voids the user's pending email-change links, in the caller's transaction: a password reset or change, a
/// sign-out everywhere, turning on or resetting two-factor sign-in and a suspension all call it, so a change
/// requested by whoever had access before cannot be completed afterwards. Returns how many were voided.
///
/// # Errors
/// Database errors.
pub async fn void_pending(conn: &mut sqlx::PgConnection, user_id: uuid::Uuid) -> Result<u64> {
    Ok(sqlx::query!(
        "update email_change set used_at = now() where user_id = $1 and used_at is null",
        user_id,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

fn taken() -> Error {
    Error::invalid(
        "new_email",
        "This address cannot be used: another account has it.",
    )
}

async fn address_taken(ctx: &Ctx, email: &str, user_id: uuid::Uuid) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"select exists (select 1 from app_user where lower(email) = lower($1) and user_id <> $2) as "taken!""#,
        email,
        user_id,
    )
    .fetch_one(&ctx.db)
    .await?)
}

/// The requester's audit entries for a request to move to `email`: the same whether or not the address is free
/// (the trail is the requester's to read), and counted by the per-address mail limit (as a verification request
/// for the new address).
async fn audit_request(actor: &Actor, tx: &mut sqlx::PgConnection, email: &str) -> Result<()> {
    actor
        .audit_email(
            &mut *tx,
            crate::auth::audit::event::VERIFICATION_REQUESTED,
            None,
            Some(email),
            json!({ "email_change": true }),
        )
        .await?;
    actor
        .audit(&mut *tx, event::REQUESTED, None, json!({}))
        .await?;
    Ok(())
}

/// Asks to change the signed-in user's address to `new_email` (needs the current password): mails a
/// confirmation link to the new address. Earlier requests stop working. Limited like the other account mails.
/// An address that already has an account gets a notice instead of a link, and the requester the same answer.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Invalid`] (`new_email`: malformed, the same), the password
/// refusals, [`Error::RateLimited`], database.
pub async fn request(
    ctx: &Ctx,
    actor: &Actor,
    new_email: &str,
    current_password: String,
) -> Result<()> {
    let user = actor.settings_writer()?;
    let email = users::parse_email(new_email).map_err(|m| Error::invalid("new_email", m))?;
    if email.eq_ignore_ascii_case(&user.email) {
        return Err(Error::invalid(
            "new_email",
            "This is your current address already.",
        ));
    }
    if current_password.chars().count() > crate::auth::password::MAX_CHARS {
        return Err(super::password::wrong_current_password());
    }
    super::password::confirm_current(ctx, actor, current_password, "email_change").await?;
    // The sign-up domain lists hold for a new address too.
    crate::admin::settings::check_email_domain(ctx, &email)
        .await
        .map_err(|e| match e {
            Error::Forbidden(m) => Error::invalid("new_email", m),
            other => other,
        })?;
    super::limited(rate_limit::check_email_request(&ctx.db, &email, &actor.meta.ip).await?)?;
    if address_taken(ctx, &email, user.user_id).await? {
        // The requester is answered as for a free address (whether an address has an account is not theirs to
        // learn); the address's owner is told instead of being sent a link, and nothing else changes.
        let owner = users::find_for_signin(&ctx.db, &email).await?;
        let (owner_id, owner_email) =
            owner.map_or((None, email.clone()), |(u, _)| (Some(u.user_id), u.email));
        let mut tx = ctx.db.begin().await?;
        let rendered = templates::email_change_taken(&super::forgot_url(ctx))?;
        let job = super::queue_mail(ctx, actor, &mut tx, owner_id, &owner_email, rendered).await?;
        // Earlier requests stop working and the requester's own trail reads exactly as for a free address
        // (the trail is theirs to read: it must not tell either).
        void_pending(&mut tx, user.user_id).await?;
        audit_request(actor, &mut tx, &email).await?;
        // What happened is kept on the trail of the account that has the address.
        if let Some(owner_id) = owner_id {
            actor
                .audit(&mut tx, event::ADDRESS_TAKEN, Some(owner_id), json!({}))
                .await?;
        }
        tx.commit().await?;
        super::push(ctx, job).await;
        return Ok(());
    }
    let token = random_secret();
    let mut tx = ctx.db.begin().await?;
    void_pending(&mut tx, user.user_id).await?;
    sqlx::query!(
        "insert into email_change (token_hash, user_id, new_email, expires_at) values ($1, $2, $3, $4)",
        hex(&sha256(&token)),
        user.user_id,
        email,
        Utc::now() + chrono::Duration::hours(LINK_HOURS),
    )
    .execute(&mut *tx)
    .await?;
    let rendered =
        templates::confirm_email_change(&super::link(ctx, "/confirm-email-change", &token))?;
    let job = super::queue_mail(ctx, actor, &mut tx, Some(user.user_id), &email, rendered).await?;
    audit_request(actor, &mut tx, &email).await?;
    tx.commit().await?;
    super::push(ctx, job).await;
    Ok(())
}

/// Uses a confirmation link: the account's address becomes the new one (confirmed, since the link reached it)
/// and the old address is told. Anyone holding the link may use it (it is the proof), once.
///
/// # Errors
/// [`super::verify::invalid_token`], [`Error::Invalid`] (`new_email`: another account took it meanwhile),
/// database.
pub async fn confirm(ctx: &Ctx, actor: &Actor, token: &str) -> Result<()> {
    let token = token.trim();
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(super::verify::invalid_token());
    }
    let mut tx = ctx.db.begin().await?;
    let row = sqlx::query!(
        "update email_change set used_at = now()
         where token_hash = $1 and used_at is null and expires_at > now()
         returning user_id, new_email",
        hex(&sha256(token)),
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(super::verify::invalid_token)?;
    let old = sqlx::query_scalar!(
        "select email from app_user where user_id = $1 and disabled_at is null for update",
        row.user_id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(super::verify::invalid_token)?;
    let changed = sqlx::query!(
        "update app_user set email = $2, email_verified_at = coalesce(email_verified_at, now())
         where user_id = $1
           and not exists (select 1 from app_user o where lower(o.email) = lower($2) and o.user_id <> $1)",
        row.user_id,
        row.new_email,
    )
    .execute(&mut *tx)
    .await;
    match changed {
        Ok(r) if r.rows_affected() == 1 => {}
        Ok(_) => return Err(taken()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Err(taken()),
        Err(e) => return Err(e.into()),
    }
    // Reset and verification links mailed to the old address stop working with it.
    sqlx::query!(
        "update user_token set used_at = now() where user_id = $1 and used_at is null",
        row.user_id,
    )
    .execute(&mut *tx)
    .await?;
    let masked = crate::notify::unsubscribe::mask_email(&row.new_email);
    let rendered = templates::email_changed(&masked, &super::forgot_url(ctx))?;
    let domain = ctx.mailer.message_id_domain();
    let (email_id, job) = outbox::queue(
        &mut tx,
        &ctx.jobs,
        &domain,
        Some(row.user_id),
        &old,
        rendered,
        actor.request_id.clone(),
    )
    .await?;
    sqlx::query!(
        "update email_outbox set category = 'security', mail_class = 'transactional' where email_id = $1",
        email_id,
    )
    .execute(&mut *tx)
    .await?;
    actor
        .audit_email(
            &mut tx,
            event::CHANGED,
            Some(row.user_id),
            Some(&old),
            json!({
                "from": crate::notify::unsubscribe::mask_email(&old),
                "to": masked,
            }),
        )
        .await?;
    tx.commit().await?;
    super::push(ctx, job).await;
    Ok(())
}
