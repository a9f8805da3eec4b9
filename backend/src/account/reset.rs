//! Password reset by emailed link: asking for the link, and setting the new password with it.

use serde_json::json;

use crate::{
    Actor, Ctx,
    auth::{
        api_token,
        audit::event,
        email_token::{self, Purpose},
        password, rate_limit, session, users,
    },
    error::{Error, Result},
    mail::templates,
    notify::{self, Event, event::PasswordChanged},
};
use uuid::Uuid;

/// Mails a reset link if an enabled account has this address; the same answer either way. Limited per
/// address and client ([`rate_limit::check_email_request`]).
///
/// # Errors
/// [`Error::Invalid`] (`email`), [`Error::RateLimited`], database.
pub async fn request_reset(ctx: &Ctx, actor: &Actor, email: &str) -> Result<()> {
    let email = users::parse_email(email).map_err(|m| Error::invalid("email", m))?;
    super::limited(rate_limit::check_email_request(&ctx.db, &email, &actor.meta.ip).await?)?;
    let found = users::find_for_signin(&ctx.db, &email).await?;
    let mut tx = ctx.db.begin().await?;
    let mut job = None;
    let mut user_id = None;
    if let Some((user, _)) = found.filter(|(u, _)| !u.disabled) {
        let token = email_token::create(&mut tx, user.user_id, Purpose::ResetPassword).await?;
        let rendered = templates::reset(
            &user.display_name,
            &super::link(ctx, "/reset-password", &token),
        )?;
        job = Some(
            super::queue_mail(
                ctx,
                actor,
                &mut tx,
                Some(user.user_id),
                &user.email,
                rendered,
            )
            .await?,
        );
        user_id = Some(user.user_id);
    }
    actor
        .audit_email(
            &mut tx,
            event::PASSWORD_RESET_REQUESTED,
            user_id,
            Some(&email),
            serde_json::Value::Null,
        )
        .await?;
    tx.commit().await?;
    if let Some(job) = job {
        super::push(ctx, job).await;
    }
    Ok(())
}

/// Sets a new password with a reset link: single use; ends every session and revokes every API token of the
/// account (whoever had access before the reset keeps none of it), audited and said in the notification mail.
///
/// # Errors
/// [`super::verify::invalid_token`], [`Error::Invalid`] on [`super::PASSWORD_FIELD`], hashing busy, database.
pub async fn reset_password(
    ctx: &Ctx,
    actor: &Actor,
    token: &str,
    new_password: String,
) -> Result<()> {
    let token = token.trim();
    let user_id = email_token::peek(&ctx.db, token, Purpose::ResetPassword)
        .await?
        .ok_or_else(super::verify::invalid_token)?;
    let user = users::get(&ctx.db, user_id)
        .await?
        .ok_or_else(super::verify::invalid_token)?;
    super::check_policy(&new_password, &user.email)?;
    let hash = password::hash(new_password).await?;
    let mut tx = ctx.db.begin().await?;
    if email_token::consume(&mut tx, token, Purpose::ResetPassword).await? != Some(user_id) {
        return Err(super::verify::invalid_token());
    }
    users::set_password(&mut tx, user_id, &hash).await?;
    let ended = session::revoke_all(&mut *tx, user_id, None).await?;
    let tokens = api_token::revoke_all(&mut *tx, user_id).await?;
    super::email_change::void_pending(&mut tx, user_id).await?;
    // Sign-ins waiting for their second step started with the old password.
    sqlx::query!("delete from signin_challenge where user_id = $1", user_id)
        .execute(&mut *tx)
        .await?;
    let emitted = super::emit(
        ctx,
        &mut tx,
        &Event::PasswordChanged(PasswordChanged {
            user_id,
            reset: true,
            everywhere: true,
            sessions_ended: ended,
            tokens_revoked: tokens,
            change_id: Uuid::new_v4(),
        }),
    )
    .await?;
    actor
        .audit(
            &mut tx,
            event::PASSWORD_RESET,
            Some(user_id),
            json!({ "sessions_ended": ended, "tokens_revoked": tokens }),
        )
        .await?;
    tx.commit().await?;
    notify::push(&ctx.jobs, &[emitted]).await;
    Ok(())
}
