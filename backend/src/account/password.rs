//! Changing the password of the signed-in account (with the current password).

use serde_json::json;

use crate::{
    Actor, Ctx,
    auth::{api_token, audit::event, password, session, signin, users},
    error::{Error, Result},
    notify::{self, Event, event::PasswordChanged},
};
use uuid::Uuid;

/// The refusal for a wrong current password.
pub fn wrong_current_password() -> Error {
    Error::invalid("current_password", "The current password is not correct.")
}

/// What the password form sends.
#[derive(Debug, Clone, Default)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
    /// Also end the other sessions and revoke every API token ("sign out everywhere").
    pub sign_out_others: bool,
}

/// Confirms the actor's current password (limited per account and client, see [`signin::confirm_password`]);
/// `during` names the change in the audit trail.
pub(super) async fn confirm_current(
    ctx: &Ctx,
    actor: &Actor,
    current_password: String,
    during: &str,
) -> Result<()> {
    let user = actor.reader()?;
    let check = signin::confirm_password(
        &ctx.db,
        user.user_id,
        &user.email,
        current_password,
        &actor.meta,
    )
    .await?;
    if matches!(check, signin::Check::Wrong) {
        let mut conn = ctx.db.acquire().await?;
        actor
            .audit_email(
                &mut conn,
                event::SIGNIN_FAILED,
                None,
                Some(&user.email),
                json!({ "during": during }),
            )
            .await?;
    }
    super::checked(check, wrong_current_password)
}

/// Changes the signed-in user's password: needs the current one; the current session is always replaced (a
/// new id after a privilege change), the other sessions and the API tokens only with
/// [`ChangePassword::sign_out_others`]. Mails a notification. Returns the new session of this client.
///
/// # Errors
/// [`Error::Unauthenticated`], [`wrong_current_password`], [`Error::RateLimited`], [`Error::Invalid`] on
/// [`super::PASSWORD_FIELD`], hashing busy ([`Error::Unavailable`]), database.
pub async fn change_password(
    ctx: &Ctx,
    actor: &Actor,
    input: ChangePassword,
) -> Result<session::NewSession> {
    let user = actor.reader()?;
    confirm_current(ctx, actor, input.current_password, "password_change").await?;
    super::check_policy(&input.new_password, &user.email)?;
    let hash = password::hash(input.new_password).await?;
    let mut tx = ctx.db.begin().await?;
    users::set_password(&mut tx, user.user_id, &hash).await?;
    super::email_change::void_pending(&mut tx, user.user_id).await?;
    let mut tokens = 0;
    let ended = if input.sign_out_others {
        tokens = api_token::revoke_all(&mut *tx, user.user_id).await?;
        session::revoke_all(&mut *tx, user.user_id, None).await?
    } else {
        match user.session_id() {
            Some(sid) => u64::from(session::revoke(&mut *tx, user.user_id, sid).await?),
            None => 0,
        }
    };
    let emitted = super::emit(
        ctx,
        &mut tx,
        &Event::PasswordChanged(PasswordChanged {
            user_id: user.user_id,
            reset: false,
            everywhere: input.sign_out_others,
            sessions_ended: ended,
            tokens_revoked: tokens,
            change_id: Uuid::new_v4(),
        }),
    )
    .await?;
    actor
        .audit(
            &mut tx,
            event::PASSWORD_CHANGED,
            None,
            json!({
                "sign_out_others": input.sign_out_others,
                "sessions_ended": ended,
                "tokens_revoked": tokens,
            }),
        )
        .await?;
    let new = session::create(
        &mut *tx,
        &ctx.keys,
        &ctx.settings,
        user.user_id,
        &actor.meta,
    )
    .await?;
    tx.commit().await?;
    notify::push(&ctx.jobs, &[emitted]).await;
    Ok(new)
}
