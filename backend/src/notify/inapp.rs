//! The in-app centre's actions: list, unread count, mark read, open. Each takes the acting user and only ever
//! reads or changes that user's own rows; another user's notification is [`Error::NotFound`].

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::fanout::changed;
use crate::{Actor, Ctx, Error, Result};

/// Items per page unless asked otherwise, and the most a page holds.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 100;

/// One notification in the centre.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub id: Uuid,
    /// The order (newest highest); pages continue with `before = seq` of the last item.
    pub seq: i64,
    pub event_type: String,
    pub category: String,
    pub critical: bool,
    pub title: String,
    pub body: String,
    /// A path on this site.
    pub url: Option<String>,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Which notifications to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListQuery {
    /// Only unread ones.
    pub unread: bool,
    /// Only those older than this `seq` (the previous page's `next_before`).
    pub before: Option<i64>,
    /// Page size, 1..=[`MAX_LIMIT`] (default [`DEFAULT_LIMIT`]).
    pub limit: Option<i64>,
}

/// A page of notifications, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    pub items: Vec<Notification>,
    /// Pass as `before` for the next page; `None` on the last page.
    pub next_before: Option<i64>,
}

/// The actor's notifications, newest first.
///
/// # Errors
/// [`Error::Unauthenticated`]; [`Error::Invalid`] for a limit outside 1..=100 or a negative cursor.
pub async fn list(ctx: &Ctx, actor: &Actor, q: ListQuery) -> Result<Page> {
    let user = actor.reader()?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    if q.before.is_some_and(|b| b < 0) {
        return Err(Error::invalid("before", "must not be negative"));
    }
    let mut items = sqlx::query_as!(
        Notification,
        r#"select notification_id as id, seq, event_type, category, critical, title, body, url, read_at, created_at
           from notification
           where user_id = $1 and ($2::bigint is null or seq < $2) and (not $3 or read_at is null)
           order by seq desc
           limit $4"#,
        user.user_id,
        q.before,
        q.unread,
        limit + 1,
    )
    .fetch_all(&ctx.db)
    .await?;
    let next_before = if items.len() as i64 > limit {
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        items.last().map(|n| n.seq)
    } else {
        None
    };
    Ok(Page { items, next_before })
}

/// How many of the actor's notifications are unread.
///
/// # Errors
/// [`Error::Unauthenticated`], database errors.
pub async fn unread_count(ctx: &Ctx, actor: &Actor) -> Result<i64> {
    let user = actor.reader()?;
    let n = sqlx::query_scalar!(
        r#"select count(*) as "n!" from notification where user_id = $1 and read_at is null"#,
        user.user_id,
    )
    .fetch_one(&ctx.db)
    .await?;
    Ok(n)
}

/// What the header shows of the actor's notifications on every page: the bell's unread count and whether
/// their address is marked undeliverable (the banner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderSummary {
    pub unread: i64,
    pub undeliverable: bool,
}

/// The actor's [`HeaderSummary`] in one query: [`unread_count`] and
/// [`address_undeliverable`](super::email::address_undeliverable) together, as every page asks for both.
///
/// # Errors
/// [`Error::Unauthenticated`], database errors.
pub async fn header_summary(ctx: &Ctx, actor: &Actor) -> Result<HeaderSummary> {
    let user = actor.reader()?;
    let row = sqlx::query!(
        r#"select (select count(*) from notification where user_id = $1 and read_at is null) as "unread!",
                  exists (select 1 from mail_suppression where address = lower($2)) as "undeliverable!""#,
        user.user_id,
        user.email,
    )
    .fetch_one(&ctx.db)
    .await?;
    Ok(HeaderSummary {
        unread: row.unread,
        undeliverable: row.undeliverable,
    })
}

/// Marks one of the actor's notifications read (again: no change) and returns its url.
async fn mark_one(ctx: &Ctx, actor: &Actor, id: Uuid) -> Result<Option<String>> {
    let user = actor.settings_writer()?;
    let mut tx = ctx.db.begin().await?;
    let row = sqlx::query!(
        r#"update notification set read_at = coalesce(read_at, now())
           where notification_id = $1 and user_id = $2
           returning url, (read_at = now()) as "changed!""#,
        id,
        user.user_id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    if row.changed {
        changed(&mut tx, user.user_id).await?;
    }
    tx.commit().await?;
    Ok(row.url)
}

/// Marks one of the actor's notifications read. Idempotent.
///
/// # Errors
/// [`Error::NotFound`] (also for another user's notification), [`Error::Unauthenticated`],
/// [`Error::Forbidden`] for a read-only token.
pub async fn mark_read(ctx: &Ctx, actor: &Actor, id: Uuid) -> Result<()> {
    mark_one(ctx, actor, id).await.map(drop)
}

/// Marks one of the actor's notifications read and returns where it leads (`/notifications` when it leads
/// nowhere).
///
/// # Errors
/// As [`mark_read`].
pub async fn open(ctx: &Ctx, actor: &Actor, id: Uuid) -> Result<String> {
    Ok(mark_one(ctx, actor, id)
        .await?
        .unwrap_or_else(|| "/notifications".to_owned()))
}

/// Marks all of the actor's unread notifications read, or those up to `up_to` (a `seq`, so what arrived after
/// the list was shown stays unread). Returns how many changed.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`] for a read-only token, [`Error::Invalid`] for a negative
/// `up_to`.
pub async fn mark_all_read(ctx: &Ctx, actor: &Actor, up_to: Option<i64>) -> Result<u64> {
    let user = actor.settings_writer()?;
    if up_to.is_some_and(|s| s < 0) {
        return Err(Error::invalid("up_to", "must not be negative"));
    }
    let mut tx = ctx.db.begin().await?;
    let n = sqlx::query!(
        r#"update notification set read_at = now()
           where user_id = $1 and read_at is null and ($2::bigint is null or seq <= $2)"#,
        user.user_id,
        up_to,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n > 0 {
        changed(&mut tx, user.user_id).await?;
    }
    tx.commit().await?;
    Ok(n)
}
