//! Deleting one's own account: with the current password and the account's address typed as confirmation.
//!
//! What goes: the `app_user` row and with it (foreign keys `on delete cascade`) sessions, API tokens, one-time
//! tokens, two-factor data, strategies with their versions, backtest runs with results and trades, paper runs
//! with their fills and trades, notifications and their preferences, webhooks, the plan assignment and the
//! billing record; the queued and sent mail to the account and the password-attempt records of its address are
//! deleted too.
//!
//! What is kept, for security and accountability: the audit trail's rows about the account, with its user id but
//! without its address (`subject_email` cleared; the audit foreign keys do not null the id), the client address
//! and user agent of each event, and the `account_deleted` entry itself.
//!
//! Refused while the account is the last active administrator, while a paid subscription is running (cancel it
//! first, so the provider stops charging), and while backtests or paper runs are still running (stop them
//! first).

use serde_json::json;

use crate::{
    Actor, Ctx,
    auth::Role,
    error::{Error, Result},
};

/// The audit event.
pub const DELETED: &str = "account_deleted";

/// What the delete form sends.
#[derive(Debug, Clone, Default)]
pub struct DeleteAccount {
    pub current_password: String,
    /// The account's email address, typed again.
    pub confirm_email: String,
}

/// Deletes the acting user's account (see the module documentation for what goes and what is kept).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`] (an API token), [`Error::Invalid`] (`confirm_email`), the
/// password refusals, [`Error::Conflict`] (last admin, running subscription or work), database.
pub async fn delete_account(ctx: &Ctx, actor: &Actor, input: DeleteAccount) -> Result<()> {
    let user = actor.reader()?;
    if user.session_id().is_none() {
        return Err(Error::Forbidden(
            "an account is deleted on its account page in the browser, not with an API token"
                .into(),
        ));
    }
    if !input.confirm_email.trim().eq_ignore_ascii_case(&user.email) {
        return Err(Error::invalid(
            "confirm_email",
            "Type your account's email address exactly to confirm.",
        ));
    }
    if input.current_password.chars().count() > crate::auth::password::MAX_CHARS {
        return Err(super::password::wrong_current_password());
    }
    super::password::confirm_current(ctx, actor, input.current_password, "account_deletion")
        .await?;
    erase(
        ctx,
        actor,
        &Target {
            user_id: user.user_id,
            email: user.email.clone(),
            role: user.role,
        },
        false,
    )
    .await
}

/// The account being deleted.
pub(crate) struct Target {
    pub user_id: uuid::Uuid,
    pub email: String,
    pub role: Role,
}

/// Deletes `target`'s account for `actor` (the owner, or an administrator when `by_admin`), with the guards of
/// the module documentation, checked on the locked account row; audited as `account_deleted` (about the
/// account, by the actor). An administrator may delete a suspended account whose paper runs are paused (the
/// suspension paused them); otherwise paper runs are stopped first.
///
/// # Errors
/// [`Error::Conflict`] (last admin, running subscription or work), [`Error::NotFound`], database.
pub(crate) async fn erase(ctx: &Ctx, actor: &Actor, target: &Target, by_admin: bool) -> Result<()> {
    let mut tx = ctx.db.begin().await?;
    // The account as it is now, locked: a promotion or a suspension lifted since the caller looked counts.
    let Some(now) = sqlx::query!(
        r#"select role, disabled_at is not null as "suspended!" from app_user where user_id = $1 for update"#,
        target.user_id,
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(Error::NotFound);
    };
    if by_admin && now.role == Role::Admin.as_str() {
        return Err(Error::Conflict(
            "this account is an administrator: change its role first".into(),
        ));
    }
    // The admin rows are locked while the last-admin guard decides (as for demotions and suspensions).
    let admins = sqlx::query_scalar!(
        "select user_id from app_user where role = 'admin' and disabled_at is null for update"
    )
    .fetch_all(&mut *tx)
    .await?;
    if target.role == Role::Admin && admins.iter().all(|a| *a == target.user_id) {
        return Err(Error::Conflict(
            "you are the last administrator: make another account an administrator first".into(),
        ));
    }
    let busy = sqlx::query!(
        r#"select
             exists (select 1 from subscription where user_id = $1
                     and status in ('trialing', 'active', 'past_due', 'unpaid', 'paused')) as "subscribed!",
             exists (select 1 from backtest_run where user_id = $1 and status in ('queued', 'running')) as "backtests!",
             exists (select 1 from paper_run where user_id = $1
                     and (status in ('active', 'stopping') or (status = 'paused' and not $2))) as "paper!""#,
        target.user_id,
        // An administrator may delete paused runs of a suspended account (nobody can resume them).
        by_admin && now.suspended,
    )
    .fetch_one(&mut *tx)
    .await?;
    if busy.subscribed {
        return Err(Error::Conflict(if by_admin {
            "their subscription is still running: cancel it with the payment provider first".into()
        } else {
            "your subscription is still running: cancel it on /account/plan first".into()
        }));
    }
    if busy.backtests || busy.paper {
        return Err(Error::Conflict(if by_admin {
            "their backtests or paper runs are still running: suspend the account first (it pauses the paper runs) and let running backtests finish".into()
        } else {
            "backtests or paper runs of yours are still running: stop them first".into()
        }));
    }
    // The audit rows stay with the user id but lose the address; the foreign keys must not null the id.
    sqlx::query!(
        "update audit_event set subject_email = null where user_id = $1 or actor_id = $1",
        target.user_id,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "delete from auth_attempt where lower(account) = lower($1)",
        target.email
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "delete from email_outbox where user_id = $1",
        target.user_id
    )
    .execute(&mut *tx)
    .await?;
    let deleted = sqlx::query!("delete from app_user where user_id = $1", target.user_id)
        .execute(&mut *tx)
        .await?;
    if deleted.rows_affected() != 1 {
        return Err(Error::NotFound);
    }
    actor
        .audit(
            &mut tx,
            DELETED,
            Some(target.user_id),
            json!({ "role": target.role.as_str(), "by_admin": by_admin }),
        )
        .await?;
    tx.commit().await?;
    Ok(())
}
