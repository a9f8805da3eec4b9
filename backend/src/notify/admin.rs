//! Admin tools of notifications: send a test notification to a user ([`send_test`]), through the normal
//! pipeline (emit → fan-out → the user's preferences and destinations), so it proves what the user would get.
//! The delivery log of a user is [`super::log::for_user`]; [`user_notifications`] is what the admin page
//! shows about one user, found by email address (the account, its address's undeliverable mark, its log).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{
    Channel, emit,
    event::{Event, SystemTest},
    log, push,
};
use crate::{Actor, Ctx, Error, Result};

/// A test notification on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TestSent {
    pub event_id: Uuid,
}

/// Emits a `system.test` notification for `user_id` (only on `channel` when given; every channel the user's
/// preferences allow otherwise). The fan-out and the delivery jobs do the rest; the result shows in the
/// user's delivery log.
///
/// # Errors
/// [`Error::NotFound`] for an unknown user; [`Error::Conflict`] for a disabled account (nothing reaches it);
/// [`Error::Forbidden`] for non-admins; database errors.
pub async fn send_test(
    ctx: &Ctx,
    actor: &Actor,
    user_id: Uuid,
    channel: Option<Channel>,
) -> Result<TestSent> {
    let admin = actor.admin_writer()?;
    let mut tx = ctx.db.begin().await?;
    let disabled = sqlx::query_scalar!(
        r#"select disabled_at is not null as "d!" from app_user where user_id = $1"#,
        user_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    if disabled {
        return Err(Error::Conflict(
            "the account is disabled; it receives no notifications".into(),
        ));
    }
    let by = if admin.is_some() {
        "an administrator"
    } else {
        "the operator"
    };
    let event = Event::SystemTest(SystemTest {
        user_id,
        sent_by: "admin".into(),
        note: format!("A test notification sent by {by}."),
        channel,
    });
    let emitted = emit(&mut tx, &ctx.jobs, &ctx.clock, &event).await?;
    actor
        .audit(
            &mut tx,
            "notify_test_sent",
            Some(user_id),
            serde_json::json!({
                "event_id": emitted.event_id, "channel": channel.map(Channel::as_str),
            }),
        )
        .await?;
    tx.commit().await?;
    push(&ctx.jobs, &[emitted]).await;
    Ok(TestSent {
        event_id: emitted.event_id,
    })
}

/// The longest address [`user_notifications`] looks up.
pub const MAX_EMAIL_LEN: usize = 320;

/// The undeliverable mark of an address (the relay refused it for good, or an operator marked it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Undeliverable {
    /// `rejected` or `manual`.
    pub reason: String,
    pub smtp_code: Option<i32>,
    pub smtp_message: Option<String>,
    pub since: DateTime<Utc>,
}

/// One user's notification state as an admin sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserNotifications {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub disabled: bool,
    pub email_verified: bool,
    /// `Some` while no notification mail goes to the address.
    pub undeliverable: Option<Undeliverable>,
    /// The newest page of the user's delivery log ([`log::for_user`]).
    pub deliveries: log::Page,
}

/// Looks a user up by email address (case-insensitive) for an admin: the account, the undeliverable mark of
/// its address and a page of its delivery log. `Ok(None)` when `email` is empty or no account has it.
///
/// # Errors
/// [`Error::Unauthenticated`]; [`Error::Forbidden`] for non-admins (checked before anything is looked up);
/// [`Error::Invalid`] on `email` (too long) and as [`log::for_user`]; database errors.
pub async fn user_notifications(
    ctx: &Ctx,
    actor: &Actor,
    email: &str,
    q: log::Query,
) -> Result<Option<UserNotifications>> {
    actor.admin()?;
    let email = email.trim();
    if email.is_empty() {
        return Ok(None);
    }
    if email.chars().count() > MAX_EMAIL_LEN {
        return Err(Error::invalid(
            "email",
            format!("an email address has at most {MAX_EMAIL_LEN} characters"),
        ));
    }
    let Some(u) = sqlx::query!(
        r#"select u.user_id, u.email, u.display_name, u.disabled_at is not null as "disabled!",
                  u.email_verified_at is not null as "verified!",
                  s.reason as "reason?", s.smtp_code as "smtp_code?", s.smtp_message as "smtp_message?",
                  s.created_at as "since?"
           from app_user u left join mail_suppression s on s.address = lower(u.email)
           where lower(u.email) = lower($1)"#,
        email,
    )
    .fetch_optional(&ctx.db)
    .await?
    else {
        return Ok(None);
    };
    let deliveries = log::for_user(ctx, actor, u.user_id, q).await?;
    Ok(Some(UserNotifications {
        user_id: u.user_id,
        email: u.email,
        display_name: u.display_name,
        disabled: u.disabled,
        email_verified: u.verified,
        undeliverable: u.reason.zip(u.since).map(|(reason, since)| Undeliverable {
            reason,
            smtp_code: u.smtp_code,
            smtp_message: u.smtp_message,
            since,
        }),
        deliveries,
    }))
}
