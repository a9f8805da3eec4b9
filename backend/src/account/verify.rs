//! Email verification: using an emailed link, and asking for a new one.

use crate::{
    Actor, Ctx,
    auth::{
        audit::event,
        email_token::{self, Purpose},
        rate_limit, users,
    },
    error::{Error, Result},
    mail::templates,
};

/// The refusal for an emailed link that is unknown, used or expired.
pub fn invalid_token() -> Error {
    Error::invalid(
        "token",
        "This link is invalid, already used or expired. Request a new one.",
    )
}

/// Confirms the address the link was sent to. Anyone holding the link may use it (it is the proof), once.
///
/// # Errors
/// [`invalid_token`], database.
pub async fn verify_email(ctx: &Ctx, actor: &Actor, token: &str) -> Result<()> {
    let mut tx = ctx.db.begin().await?;
    let user_id = email_token::consume(&mut tx, token.trim(), Purpose::VerifyEmail)
        .await?
        .ok_or_else(invalid_token)?;
    users::mark_verified(&mut tx, user_id).await?;
    actor
        .audit(
            &mut tx,
            event::EMAIL_VERIFIED,
            Some(user_id),
            serde_json::Value::Null,
        )
        .await?;
    tx.commit().await?;
    Ok(())
}

/// What [`resend_verification`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resent {
    /// A new link is on its way.
    Sent,
    /// The address is confirmed already: nothing was sent.
    AlreadyVerified,
}

/// Mails the signed-in user a new verification link (earlier links stop working). Limited per address and
/// client ([`rate_limit::check_email_request`]).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::RateLimited`], database.
pub async fn resend_verification(ctx: &Ctx, actor: &Actor) -> Result<Resent> {
    let user = actor.reader()?;
    if user.email_verified {
        return Ok(Resent::AlreadyVerified);
    }
    send_link(ctx, actor, user.user_id, &user.email, None).await?;
    Ok(Resent::Sent)
}

/// Mails user `user_id` at `email` a new verification link (earlier links stop working), limited per address
/// and client; audited as `verification_requested` about `subject` (`None`: the actor is the user). The
/// caller has checked that `actor` may ask.
///
/// # Errors
/// [`Error::RateLimited`], database.
pub(crate) async fn send_link(
    ctx: &Ctx,
    actor: &Actor,
    user_id: uuid::Uuid,
    email: &str,
    subject: Option<uuid::Uuid>,
) -> Result<()> {
    super::limited(rate_limit::check_email_request(&ctx.db, email, &actor.meta.ip).await?)?;
    let mut tx = ctx.db.begin().await?;
    let token = email_token::create(&mut tx, user_id, Purpose::VerifyEmail).await?;
    let rendered = templates::verify(&super::link(ctx, "/verify-email", &token))?;
    let job = super::queue_mail(ctx, actor, &mut tx, Some(user_id), email, rendered).await?;
    actor
        .audit_email(
            &mut tx,
            event::VERIFICATION_REQUESTED,
            subject,
            Some(email),
            serde_json::Value::Null,
        )
        .await?;
    tx.commit().await?;
    super::push(ctx, job).await;
    Ok(())
}
