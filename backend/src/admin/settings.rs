//! Platform settings: the sign-up policy (`open` or `closed`) and the maintenance banner. Anyone may read them
//! (the sign-up form and every page need them); only admins change them, audited as `platform_settings_changed`.

use serde::Serialize;
use serde_json::json;

use crate::{
    Actor, Ctx,
    error::{Error, Result},
};

/// Longest banner, in characters.
pub const MAX_BANNER: usize = 500;

/// The settings as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformSettings {
    /// `open` (anyone may sign up) or `closed` (nobody; admins create or promote accounts).
    pub signup_policy: String,
    /// Shown at the top of every page when not empty.
    pub banner: String,
}

/// The current settings (no permission needed: they are shown to everyone).
///
/// # Errors
/// Database errors.
pub async fn current(ctx: &Ctx) -> Result<PlatformSettings> {
    let r = sqlx::query_as!(
        PlatformSettings,
        "select signup_policy, banner from platform_settings where id",
    )
    .fetch_optional(&ctx.db)
    .await?;
    Ok(r.unwrap_or_else(|| PlatformSettings {
        signup_policy: "open".into(),
        banner: String::new(),
    }))
}

/// Whether sign-up is open now.
///
/// # Errors
/// [`Error::Forbidden`] when it is closed (the message is for the visitor), database.
pub async fn check_signup_open(ctx: &Ctx) -> Result<()> {
    if current(ctx).await?.signup_policy == "closed" {
        return Err(Error::Forbidden(
            "Sign-up is closed on this instance. Ask an administrator for an account.".into(),
        ));
    }
    Ok(())
}

/// Sets the sign-up policy and the banner (admins with a read-write credential); audited with the old and new
/// values.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Invalid`] (`signup_policy`, `banner`), database.
pub async fn update(
    actor: &Actor,
    ctx: &Ctx,
    signup_policy: &str,
    banner: &str,
) -> Result<PlatformSettings> {
    actor.admin_writer()?;
    let policy = signup_policy.trim();
    if !["open", "closed"].contains(&policy) {
        return Err(Error::invalid("signup_policy", "choose open or closed"));
    }
    let banner = banner.trim();
    if banner.chars().count() > MAX_BANNER || banner.chars().any(char::is_control) {
        return Err(Error::invalid(
            "banner",
            format!("use at most {MAX_BANNER} characters, on one line"),
        ));
    }
    let mut tx = ctx.db.begin().await?;
    let old = sqlx::query_as!(
        PlatformSettings,
        "select signup_policy, banner from platform_settings where id for update",
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!(
        "update platform_settings set signup_policy = $1, banner = $2, updated_by = $3, updated_at = now()
         where id",
        policy,
        banner,
        actor.user_id(),
    )
    .execute(&mut *tx)
    .await?;
    actor
        .audit(
            &mut tx,
            super::event::SETTINGS_CHANGED,
            None,
            json!({
                "signup_policy": { "from": old.signup_policy, "to": policy },
                "banner": { "from": old.banner, "to": banner },
            }),
        )
        .await?;
    tx.commit().await?;
    Ok(PlatformSettings {
        signup_policy: policy.to_owned(),
        banner: banner.to_owned(),
    })
}
