//! The signed-in user's browser sessions: listing them and signing one out.

use serde_json::json;

use crate::{
    Actor, Ctx,
    auth::{audit::event, session},
    error::{Error, Result},
};

/// The actor's live sessions, most recently used first.
///
/// # Errors
/// [`Error::Unauthenticated`], database.
pub async fn list(ctx: &Ctx, actor: &Actor) -> Result<Vec<session::SessionInfo>> {
    let user = actor.reader()?;
    Ok(session::list(&ctx.db, &ctx.settings, user.user_id, user.session_id()).await?)
}

/// What [`revoke`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revoked {
    /// It was the actor's own current session (the client is signed out now).
    pub current: bool,
}

/// Signs out one of the actor's own sessions by its public id; other users' sessions are not found.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::NotFound`], database.
pub async fn revoke(ctx: &Ctx, actor: &Actor, public_id: &str) -> Result<Revoked> {
    let user = actor.reader()?;
    let target = session::list(&ctx.db, &ctx.settings, user.user_id, user.session_id())
        .await?
        .into_iter()
        .find(|s| s.public_id == public_id)
        .ok_or(Error::NotFound)?;
    let mut tx = ctx.db.begin().await?;
    if !session::revoke(&mut *tx, user.user_id, &target.session_id).await? {
        return Err(Error::NotFound);
    }
    actor
        .audit(
            &mut tx,
            event::SESSION_REVOKED,
            None,
            json!({ "session": public_id }),
        )
        .await?;
    tx.commit().await?;
    Ok(Revoked {
        current: target.current,
    })
}
