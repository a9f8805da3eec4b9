//! Clearing the undeliverable mark of an address (docs/design/notifications.md §5, "SMTP results"): after the
//! relay refused an address for good, no notification mail goes to it ([`crate::mail::suppression`]). Once the
//! user fixed their mailbox they clear the mark ("Retry" in the banner, or an operator with
//! `vortex notify clear-undeliverable`), and a `system.test` notification checks that mail arrives again.

use serde::Serialize;
use uuid::Uuid;

use crate::{
    Actor, Ctx, Error, Result,
    notify::{
        emit,
        event::{Event, SystemTest},
        push,
    },
};

/// How often a user may clear their own address's mark per day (each sends a test mail to an address that
/// was refused: a bound on mail to a possibly dead mailbox).
pub const CLEARS_PER_DAY: i64 = 3;

/// What clearing did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cleared {
    /// The address (of the account) that was looked at.
    pub address: String,
    /// Whether it was marked (`false`: nothing to clear, nothing sent).
    pub cleared: bool,
    /// The `system.test` notification sent to check the address (when it was cleared).
    pub test_event_id: Option<Uuid>,
}

/// Clears the undeliverable mark of the actor's own address, at most [`CLEARS_PER_DAY`] times a day, and
/// sends a `system.test` notification (email and in-app) to check it.
///
/// # Errors
/// [`Error::RateLimited`] past the daily limit; [`Error::Forbidden`] for a read-only token;
/// [`Error::Unauthenticated`]; database errors.
pub async fn clear_undeliverable(ctx: &Ctx, actor: &Actor) -> Result<Cleared> {
    let user = actor.settings_writer()?;
    clear(ctx, actor, user.user_id, true).await
}

/// [`clear_undeliverable`] for any user, by an admin or the operator at the command line (no daily limit).
///
/// # Errors
/// [`Error::NotFound`] for an unknown user; [`Error::Forbidden`] for non-admins; database errors.
pub async fn clear_undeliverable_for(ctx: &Ctx, actor: &Actor, user_id: Uuid) -> Result<Cleared> {
    actor.admin_writer()?;
    clear(ctx, actor, user_id, false).await
}

async fn clear(ctx: &Ctx, actor: &Actor, user_id: Uuid, limited: bool) -> Result<Cleared> {
    let mut tx = ctx.db.begin().await?;
    // One user's clears are serialised, so the daily count is exact.
    let address = sqlx::query_scalar!(
        "select email from app_user where user_id = $1 for update",
        user_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    if limited {
        let row = sqlx::query!(
            r#"select min(created_at) as "oldest", count(*) as "n!" from audit_event
               where user_id = $1 and event = 'email_undeliverable_cleared'
                 and created_at > now() - interval '1 day'"#,
            user_id,
        )
        .fetch_one(&mut *tx)
        .await?;
        if row.n >= CLEARS_PER_DAY {
            let retry_after = row.oldest.map_or(3600, |t| {
                (t + chrono::Duration::days(1) - chrono::Utc::now())
                    .num_seconds()
                    .max(1)
            });
            return Err(Error::RateLimited {
                retry_after: u64::try_from(retry_after).unwrap_or(3600),
            });
        }
    }
    let removed = sqlx::query!(
        "delete from mail_suppression where address = lower($1) returning reason, smtp_code",
        &address,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(removed) = removed else {
        return Ok(Cleared {
            address,
            cleared: false,
            test_event_id: None,
        });
    };
    let event = Event::SystemTest(SystemTest {
        user_id,
        sent_by: "self".into(),
        note:
            "Your email address was marked undeliverable and is cleared now: if this mail arrives, \
               notifications reach you again."
                .into(),
        channel: None,
    });
    let emitted = emit(&mut tx, &ctx.jobs, &ctx.clock, &event).await?;
    actor
        .audit(
            &mut tx,
            "email_undeliverable_cleared",
            Some(user_id),
            serde_json::json!({
                "reason": removed.reason, "smtp_code": removed.smtp_code, "test_event_id": emitted.event_id,
            }),
        )
        .await?;
    tx.commit().await?;
    push(&ctx.jobs, &[emitted]).await;
    Ok(Cleared {
        address,
        cleared: true,
        test_event_id: Some(emitted.event_id),
    })
}
