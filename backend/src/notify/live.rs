//! Live in-app updates (docs/design/notifications.md §7): one Postgres listener per web process on
//! [`PG_CHANNEL`] (the fan-out and mark-read `pg_notify` it in their transactions, so a change is announced on
//! commit, to every replica), fanned out to the process's open streams of that user.
//!
//! The fan-out is a [`crate::live::Topic`] keyed by user, fed by the process's one [`crate::live::Listener`]:
//! [`Hub::subscribe`] gives a stream its [`Subscription`]. After a reconnect, or when a receiver lagged behind,
//! a stream hears [`Signal::Resync`]. Streams answer a signal by re-reading ([`updates`]).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::PG_CHANNEL;
use crate::{Actor, Ctx, Result, live::Topic};

/// What a stream hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The user's notifications changed (a new one, or read marks).
    Changed,
    /// Changes may have been missed (the listener reconnected, or this receiver lagged): re-read everything.
    Resync,
}

/// The process's fan-out of notification changes, keyed by user (started by [`crate::live::Listener`]).
pub type Hub = Topic<Signal>;
/// One stream's subscription to a user's changes.
pub type Subscription = crate::live::Subscription<Signal>;

/// The `pg_notify` payload: `{"u": "<user id>"}`.
#[derive(Debug, Deserialize)]
struct Payload {
    u: Uuid,
}

/// A new hub on [`PG_CHANNEL`]; it hears nothing until a listener is started with [`Hub::handle`].
pub fn hub() -> Hub {
    Topic::new(
        PG_CHANNEL,
        |p| {
            serde_json::from_str::<Payload>(p)
                .ok()
                .map(|p| (p.u, Signal::Changed))
        },
        Signal::Resync,
    )
}

/// A new notification as a stream shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub id: Uuid,
    pub seq: i64,
    pub title: String,
    pub url: Option<String>,
}

/// What changed for the actor since `after_seq`: the notifications newer than it (oldest first, at most
/// `limit`), the newest `seq` seen and the unread count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updates {
    pub items: Vec<Item>,
    pub last_seq: i64,
    pub unread: i64,
}

/// The actor's notifications after `after_seq` (at most `limit`, oldest first) and the unread count now.
/// `after_seq = None` reads only the newest `seq` (a stream's start).
///
/// # Errors
/// [`crate::Error::Unauthenticated`]; database errors.
pub async fn updates(
    ctx: &Ctx,
    actor: &Actor,
    after_seq: Option<i64>,
    limit: i64,
) -> Result<Updates> {
    let user = actor.reader()?;
    let head = sqlx::query!(
        r#"select coalesce(max(seq), 0) as "last!",
                  count(*) filter (where read_at is null) as "unread!"
           from notification where user_id = $1"#,
        user.user_id,
    )
    .fetch_one(&ctx.db)
    .await?;
    let Some(after) = after_seq else {
        return Ok(Updates {
            items: Vec::new(),
            last_seq: head.last,
            unread: head.unread,
        });
    };
    let items = sqlx::query_as!(
        Item,
        r#"select notification_id as id, seq, title, url from notification
           where user_id = $1 and seq > $2 order by seq limit $3"#,
        user.user_id,
        after,
        limit.clamp(1, 100),
    )
    .fetch_all(&ctx.db)
    .await?;
    let limit = limit.clamp(1, 100);
    // More than `limit` new ones: the rest are skipped (the unread count still tells).
    let last_seq = if items.len() as i64 >= limit {
        head.last
    } else {
        items.last().map_or(after, |i| i.seq)
    };
    Ok(Updates {
        last_seq,
        items,
        unread: head.unread,
    })
}
