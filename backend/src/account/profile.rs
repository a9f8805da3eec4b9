//! The signed-in user's own profile: reading it and changing what they may change (name, time zone).

use crate::{
    Actor, Ctx,
    auth::{AuthUser, audit::event, users},
    error::{Error, Result},
};

/// The signed-in user (any credential).
///
/// # Errors
/// [`Error::Unauthenticated`].
pub fn me(actor: &Actor) -> Result<&AuthUser> {
    actor.reader()
}

/// A profile change: `None` keeps the current value. Nothing else (role, email, verification) can be set.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    pub time_zone: Option<String>,
}

/// Changes the actor's display name and time zone: needs a writer (not a viewer, not a read-only token).
/// Returns the user as changed.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Invalid`] (`display_name`, `time_zone`),
/// database.
pub async fn update(ctx: &Ctx, actor: &Actor, input: ProfileUpdate) -> Result<AuthUser> {
    let user = actor.writer()?;
    let name = match input.display_name {
        Some(n) => users::parse_display_name(&n).map_err(|m| Error::invalid("display_name", m))?,
        None => user.display_name.clone(),
    };
    let tz = match input.time_zone {
        Some(t) => users::parse_time_zone(&t).map_err(|m| Error::invalid("time_zone", m))?,
        None => user.time_zone.clone(),
    };
    let mut tx = ctx.db.begin().await?;
    users::update_profile(&mut *tx, user.user_id, &name, &tz).await?;
    if tz != user.time_zone {
        // Digests and quiet hours are local times: move the next digest and waiting batches with the zone.
        crate::notify::prefs::reschedule(&mut tx, user.user_id, &ctx.clock).await?;
    }
    actor
        .audit(
            &mut tx,
            event::PROFILE_UPDATED,
            None,
            serde_json::Value::Null,
        )
        .await?;
    tx.commit().await?;
    let mut updated = user.clone();
    updated.display_name = name;
    updated.time_zone = tz;
    Ok(updated)
}
