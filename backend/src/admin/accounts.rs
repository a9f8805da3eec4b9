//! An administrator acting on someone's account as its owner could (docs/admin.md#users): mail a new
//! verification link, download the account's data (the owner's "Download my data" document), and delete the
//! account — only after an administrator exported its data in the last [`EXPORT_BEFORE_DELETE_HOURS`] hours,
//! with the address typed as confirmation. The same guards as the owner's own deletion apply (last admin, a running
//! subscription, running work); an administrator's own account and other administrators' accounts are not
//! deleted here. Each action is audited about the user, by the admin.

use serde_json::Value;
use uuid::Uuid;

use crate::{
    Actor, Ctx,
    account::{delete, export, verify},
    auth::Role,
    error::{Error, Result},
};

/// An account is deleted by an administrator only after an export of its data this recent.
pub const EXPORT_BEFORE_DELETE_HOURS: i64 = 24;

struct Account {
    email: String,
    role: Role,
    verified: bool,
}

async fn account(ctx: &Ctx, user_id: Uuid) -> Result<Account> {
    let r = sqlx::query!(
        "select email, role, email_verified_at is not null as \"verified!\" from app_user where user_id = $1",
        user_id,
    )
    .fetch_optional(&ctx.db)
    .await?
    .ok_or(Error::NotFound)?;
    Ok(Account {
        email: r.email,
        role: Role::parse(&r.role).unwrap_or(Role::Viewer),
        verified: r.verified,
    })
}

/// Mails the user a new link to confirm their address (earlier links stop working); limited per address like
/// the user's own request. Audited as `verification_requested` about the user.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], [`Error::Conflict`] (already
/// confirmed), [`Error::RateLimited`], database.
pub async fn resend_verification(actor: &Actor, ctx: &Ctx, user_id: Uuid) -> Result<()> {
    actor.admin_writer()?;
    let a = account(ctx, user_id).await?;
    if a.verified {
        return Err(Error::Conflict("the address is confirmed already".into()));
    }
    verify::send_link(ctx, actor, user_id, &a.email, Some(user_id)).await
}

/// The user's data as their own "Download my data" gives it (format `vortex-export/1`, the same bounds and
/// the same one-per-2-minutes limit per account, counted apart from the owner's own). Audited as
/// `data_exported` about the user; needs a read-write credential.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], the export's refusals, database.
pub async fn export(actor: &Actor, ctx: &Ctx, user_id: Uuid) -> Result<Value> {
    // A recorded act (the audit entry and the condition for a deletion), so not for read-only tokens.
    actor.admin_writer()?;
    account(ctx, user_id).await?;
    export::document(ctx, actor, user_id, Some(user_id)).await
}

/// Deletes the user's account (what goes and what the audit trail keeps: `account::delete`). `confirm_email`
/// must be the account's address. Audited as `account_deleted` about the user, by the admin.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`] (not an admin, a read-only token), [`Error::NotFound`],
/// [`Error::Invalid`] (`confirm_email`), [`Error::Conflict`] (the admin's own account, an administrator's, no
/// recent export, a running subscription, running work), database.
pub async fn delete(actor: &Actor, ctx: &Ctx, user_id: Uuid, confirm_email: &str) -> Result<()> {
    let admin = actor.admin_writer()?;
    if admin.is_some_and(|u| u.user_id == user_id) {
        return Err(Error::Conflict(
            "this is your own account: delete it on your account page".into(),
        ));
    }
    let a = account(ctx, user_id).await?;
    if !confirm_email.trim().eq_ignore_ascii_case(&a.email) {
        return Err(Error::invalid(
            "confirm_email",
            "Type the account's email address exactly to confirm.",
        ));
    }
    if a.role == Role::Admin {
        return Err(Error::Conflict(
            "this account is an administrator: change its role first".into(),
        ));
    }
    let exported = sqlx::query_scalar!(
        // An administrator's export (this one's or another's), not the owner's own download.
        r#"select exists (select 1 from audit_event where user_id = $1 and event = $2
                          and actor_id is distinct from user_id
                          and created_at > now() - make_interval(hours => $3::int)) as "exported!""#,
        user_id,
        export::EXPORTED,
        i32::try_from(EXPORT_BEFORE_DELETE_HOURS).unwrap_or(24),
    )
    .fetch_one(&ctx.db)
    .await?;
    if !exported {
        return Err(Error::Conflict(format!(
            "download the account's data first (Download their data); an account is deleted only after an administrator's export of the last {EXPORT_BEFORE_DELETE_HOURS} hours"
        )));
    }
    delete::erase(
        ctx,
        actor,
        &delete::Target {
            user_id,
            email: a.email,
            role: a.role,
        },
        true,
    )
    .await
}
