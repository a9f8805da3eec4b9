//! The audit trail as users and admins read it.

use crate::{
    Actor, Ctx,
    auth::audit::{self, AuditRow},
    error::Result,
};

/// The newest events about the actor (any signed-in user), at most `limit` (1–1000).
///
/// # Errors
/// [`crate::Error::Unauthenticated`], database.
pub async fn mine(ctx: &Ctx, actor: &Actor, limit: i64) -> Result<Vec<AuditRow>> {
    let user = actor.reader()?;
    Ok(audit::list(&ctx.db, Some(user.user_id), limit).await?)
}
