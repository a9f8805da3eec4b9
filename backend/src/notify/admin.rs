//! Admin tools of notifications: send a test notification to a user ([`send_test`]), through the normal
//! pipeline (emit → fan-out → the user's preferences and destinations), so it proves what the user would get.
//! The delivery log of a user is [`super::log::for_user`].

use serde::Serialize;
use uuid::Uuid;

use super::{
    Channel, emit,
    event::{Event, SystemTest},
    push,
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
