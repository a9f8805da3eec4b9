//! Sign-in and sign-out of browser sessions.

use serde_json::json;

use crate::{
    Actor, Ctx,
    auth::{audit::event, password, session, signin, users::User},
    error::{Error, Result},
};

/// The refusal for a wrong email or password (unknown and disabled accounts answer the same).
pub fn wrong_credentials() -> Error {
    Error::invalid("credentials", "the email or password is not correct")
}

/// A signed-in user and their new session.
pub struct SignedIn {
    pub user: User,
    pub session: session::NewSession,
}

/// Checks the email and password (with the attempt limits of [`signin::sign_in`]) and starts a new session.
/// Unknown account and wrong password take the same time and give the same answer.
///
/// # Errors
/// [`wrong_credentials`], [`Error::RateLimited`], hashing busy ([`Error::Unavailable`]), database.
pub async fn sign_in(ctx: &Ctx, actor: &Actor, email: &str, password: String) -> Result<SignedIn> {
    let email = email.trim();
    if email.is_empty() || email.len() > 254 || password.chars().count() > password::MAX_CHARS {
        return Err(wrong_credentials());
    }
    let check = signin::sign_in(&ctx.db, email, password, &actor.meta).await?;
    if matches!(check, signin::Check::Wrong) {
        // The failed attempt is recorded by the check itself; this is its audit entry (about the address only:
        // whether an account has it is not revealed).
        let mut conn = ctx.db.acquire().await?;
        Actor::anonymous(actor.surface, actor.meta.clone(), actor.request_id.clone())
            .audit_email(
                &mut conn,
                event::SIGNIN_FAILED,
                None,
                Some(email),
                serde_json::Value::Null,
            )
            .await?;
    }
    let user = super::checked(check, wrong_credentials)?;
    let mut tx = ctx.db.begin().await?;
    let new = session::create(
        &mut *tx,
        &ctx.keys,
        &ctx.settings,
        user.user_id,
        &actor.meta,
    )
    .await?;
    actor
        .audit_email(
            &mut tx,
            event::SIGNIN_SUCCEEDED,
            Some(user.user_id),
            Some(&user.email),
            json!({ "session": session::public_id(&new.session_id) }),
        )
        .await?;
    tx.commit().await?;
    Ok(SignedIn { user, session: new })
}

/// Ends the actor's current session at once (anonymous actors: nothing to do).
///
/// # Errors
/// Database errors.
pub async fn sign_out(ctx: &Ctx, actor: &Actor) -> Result<()> {
    let Some(user) = actor.auth_user() else {
        return Ok(());
    };
    let mut tx = ctx.db.begin().await?;
    if let Some(sid) = user.session_id() {
        session::revoke(&mut *tx, user.user_id, sid).await?;
    }
    actor
        .audit(&mut tx, event::SIGNOUT, None, serde_json::Value::Null)
        .await?;
    tx.commit().await?;
    Ok(())
}
