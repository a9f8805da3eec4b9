//! The delivery log (docs/design/notifications.md §3, §8): every email and webhook delivery of a user, with its
//! status, reason and attempts, read from the view `notify_delivery_log` (notification deliveries and the
//! account-flow mails in one shape). [`mine`] is the user's own log, [`for_user`] an admin's view of anyone's,
//! and [`replay`] sends a failed webhook delivery again (same `webhook-id`, a fresh retry budget).
//!
//! The log never shows a webhook's URL (its hint lives on the webhook) nor a mail's content.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::webhook;
use crate::{Actor, Ctx, Error, Result};

/// Entries per page unless asked otherwise, and the most a page holds.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// The statuses a delivery can have (the `status` filter accepts exactly these).
pub const STATUSES: &[&str] = &[
    "pending",
    "queued",
    "sent",
    "failed",
    "suppressed",
    "batched",
    "cancelled",
];

/// One delivery in the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// The delivery id (for an account-flow mail, its outbox id).
    pub id: Uuid,
    /// `email` or `webhook`.
    pub channel: String,
    pub webhook_id: Option<Uuid>,
    pub category: String,
    /// The event type (`backtest.finished`), `notification.batch`, or an account mail's template.
    pub event_type: Option<String>,
    pub status: String,
    /// Why it was not sent (`off`, `unsubscribed`, `undeliverable`, `gone`, `http_4xx`, …).
    pub reason: Option<String>,
    pub attempts: i32,
    /// The last error, as the relay or the destination gave it (never a URL).
    pub last_error: Option<String>,
    /// The `Message-ID` or `webhook-id` of what was sent.
    pub provider_ref: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// A failed webhook delivery may be sent again ([`replay`]).
    pub replayable: bool,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only this webhook's deliveries.
    pub webhook: Option<Uuid>,
    /// Only deliveries with this status (one of [`STATUSES`]).
    pub status: Option<String>,
    /// Only entries older than this cursor (the previous page's `next_before`).
    pub before: Option<String>,
    /// Page size, 1..=[`MAX_LIMIT`] (default [`DEFAULT_LIMIT`]).
    pub limit: Option<i64>,
}

/// A page of the log, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    pub items: Vec<Entry>,
    /// Pass as `before` for the next page; `None` on the last page.
    pub next_before: Option<String>,
}

/// A cursor: the last entry's creation time (microseconds since the epoch) and id, `<micros>_<uuid>`; entries
/// written in one transaction share their time, so the id breaks the tie.
fn cursor(e: &Entry) -> String {
    format!("{}_{}", e.created_at.timestamp_micros(), e.id)
}

fn parse_cursor(s: &str) -> Result<(DateTime<Utc>, Uuid)> {
    let bad = || {
        Error::invalid(
            "before",
            "not a cursor from a previous page's `next_before`",
        )
    };
    let (micros, id) = s.split_once('_').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(bad)?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((at, id))
}

struct Checked {
    limit: i64,
    before: Option<(DateTime<Utc>, Uuid)>,
    status: Option<String>,
}

fn check(q: &Query) -> Result<Checked> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    if let Some(s) = &q.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(Error::invalid(
            "status",
            format!("`{s}` is not a status; use one of {}", STATUSES.join(", ")),
        ));
    }
    let before = q.before.as_deref().map(parse_cursor).transpose()?;
    Ok(Checked {
        limit,
        before,
        status: q.status.clone(),
    })
}

async fn page(ctx: &Ctx, user_id: Uuid, q: &Query) -> Result<Page> {
    let c = check(q)?;
    let (before_at, before_id) = c.before.unzip();
    let mut items = sqlx::query!(
        r#"select l.log_id as "id!", l.channel as "channel!", l.webhook_id, l.category as "category!",
                  l.event_type, l.status as "status!", l.reason, l.attempts as "attempts!", l.last_error,
                  l.provider_ref, l.sent_at, l.created_at as "created_at!",
                  exists (select 1 from notify_delivery d where d.delivery_id = l.log_id) as "is_delivery!"
           from notify_delivery_log l
           where l.user_id = $1
             and ($2::uuid is null or l.webhook_id = $2)
             and ($3::text is null or l.status = $3)
             and ($4::timestamptz is null or (l.created_at, l.log_id) < ($4, $5::uuid))
           order by l.created_at desc, l.log_id desc
           limit $6"#,
        user_id,
        q.webhook,
        c.status,
        before_at,
        before_id,
        c.limit + 1,
    )
    .fetch_all(&ctx.db)
    .await?
    .into_iter()
    .map(|r| Entry {
        replayable: r.is_delivery && r.channel == "webhook" && r.status == "failed",
        id: r.id,
        channel: r.channel,
        webhook_id: r.webhook_id,
        category: r.category,
        event_type: r.event_type,
        status: r.status,
        reason: r.reason,
        attempts: r.attempts,
        last_error: r.last_error,
        provider_ref: r.provider_ref,
        sent_at: r.sent_at,
        created_at: r.created_at,
    })
    .collect::<Vec<_>>();
    let next_before = if items.len() as i64 > c.limit {
        items.truncate(usize::try_from(c.limit).unwrap_or(usize::MAX));
        items.last().map(cursor)
    } else {
        None
    };
    Ok(Page { items, next_before })
}

/// The actor's own delivery log, newest first.
///
/// # Errors
/// [`Error::Unauthenticated`]; [`Error::Invalid`] on `limit`, `status` or `before`.
pub async fn mine(ctx: &Ctx, actor: &Actor, q: Query) -> Result<Page> {
    let user = actor.reader()?;
    page(ctx, user.user_id, &q).await
}

/// Anyone's delivery log (admins, and the operator at the command line).
///
/// # Errors
/// [`Error::NotFound`] for an unknown user; [`Error::Forbidden`] for non-admins; [`Error::Invalid`] as
/// [`mine`].
pub async fn for_user(ctx: &Ctx, actor: &Actor, user_id: Uuid, q: Query) -> Result<Page> {
    actor.admin()?;
    check(&q)?;
    let exists = sqlx::query_scalar!(
        r#"select exists (select 1 from app_user where user_id = $1) as "x!""#,
        user_id
    )
    .fetch_one(&ctx.db)
    .await?;
    if !exists {
        return Err(Error::NotFound);
    }
    page(ctx, user_id, &q).await
}

/// A replayed delivery and the job that sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Replayed {
    pub delivery_id: Uuid,
    pub job_id: Uuid,
}

/// Replays one user may ask for per minute.
pub const REPLAYS_PER_MIN: u64 = 10;

/// Sends one of the actor's failed webhook deliveries again: the delivery goes back to `queued` with a fresh
/// attempt budget and a new `notify_webhook` job (the same `webhook-id`, so a receiver that did get it
/// deduplicates). The destination is vetted again now (and before every attempt), so a URL that points at a
/// private address today is refused.
///
/// # Errors
/// [`Error::NotFound`] (also another user's delivery, and account-flow mails); [`Error::Conflict`] for an
/// email delivery, a delivery that did not fail, or a disabled webhook (enable it first); [`Error::Invalid`]
/// on `url` when the destination is refused; [`Error::RateLimited`] past [`REPLAYS_PER_MIN`]; permission and
/// database errors.
pub async fn replay(ctx: &Ctx, actor: &Actor, delivery_id: Uuid) -> Result<Replayed> {
    let user = actor.runner()?;
    // Each replay is a new attempt budget against the user's endpoint: bounded, and refused without Redis.
    crate::redis::rate_limit_strict(
        &ctx.redis,
        &ctx.settings.redis_namespace,
        &format!("notify_replay:{}", user.user_id),
        REPLAYS_PER_MIN,
    )
    .await
    .map_err(crate::redis::Refused::into_error)?;
    let d = sqlx::query!(
        r#"select d.channel, d.status, d.webhook_id, w.url as "url?", w.disabled_at
           from notify_delivery d left join notify_webhook w on w.webhook_id = d.webhook_id
           where d.delivery_id = $1 and d.user_id = $2"#,
        delivery_id,
        user.user_id,
    )
    .fetch_optional(&ctx.db)
    .await?
    .ok_or(Error::NotFound)?;
    let (Some(webhook_id), Some(url)) = (d.webhook_id, d.url) else {
        return Err(Error::Conflict(
            "only webhook deliveries can be replayed".into(),
        ));
    };
    if d.status != "failed" {
        return Err(Error::Conflict(format!(
            "only failed deliveries can be replayed; this one is {}",
            d.status
        )));
    }
    if d.disabled_at.is_some() {
        return Err(Error::Conflict(
            "the webhook is disabled; enable it first".into(),
        ));
    }
    ctx.net
        .vet(&url)
        .await
        .map_err(|r| Error::invalid("url", r.to_string()))?;

    let mut tx = ctx.db.begin().await?;
    // Only a delivery still failed (not replayed by a concurrent request) goes back to the queue.
    let n = sqlx::query!(
        r#"update notify_delivery
           set status = 'queued', reason = null, attempts = 0, last_error = null, released_at = $3
           where delivery_id = $1 and user_id = $2 and status = 'failed'"#,
        delivery_id,
        user.user_id,
        ctx.clock.now(),
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(Error::Conflict(
            "the delivery is being replayed already".into(),
        ));
    }
    let mut job = ctx.jobs.new_job(
        crate::jobs::NOTIFY_QUEUE,
        webhook::job::KIND,
        serde_json::json!(webhook::job::Payload { delivery_id }),
    );
    job.dedupe_key = Some(format!("{}:{delivery_id}", webhook::job::KIND));
    job.request_id.clone_from(&actor.request_id);
    job.max_attempts += webhook::job::SPARE_ATTEMPTS;
    let job_id = ctx
        .jobs
        .insert(&mut tx, &job)
        .await?
        .ok_or_else(|| Error::Conflict("the delivery is being sent already".into()))?;
    sqlx::query!(
        "update notify_delivery set job_id = $2 where delivery_id = $1",
        delivery_id,
        job_id,
    )
    .execute(&mut *tx)
    .await?;
    actor
        .audit(
            &mut tx,
            "notify_replayed",
            None,
            serde_json::json!({ "delivery_id": delivery_id, "webhook_id": webhook_id, "job_id": job_id }),
        )
        .await?;
    tx.commit().await?;
    ctx.jobs.push(crate::jobs::NOTIFY_QUEUE, job_id).await;
    Ok(Replayed {
        delivery_id,
        job_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let e = Entry {
            id: Uuid::new_v4(),
            channel: "email".into(),
            webhook_id: None,
            category: "backtests".into(),
            event_type: None,
            status: "sent".into(),
            reason: None,
            attempts: 1,
            last_error: None,
            provider_ref: None,
            sent_at: None,
            created_at: DateTime::<Utc>::from_timestamp_micros(1_800_000_000_123_456).unwrap(),
            replayable: false,
        };
        assert_eq!(parse_cursor(&cursor(&e)).unwrap(), (e.created_at, e.id));
        for bad in [
            "",
            "12",
            "x_y",
            "12_nope",
            "99999999999999999999_00000000-0000-0000-0000-000000000000",
        ] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn queries_are_bounded() {
        let q = |limit, status: Option<&str>| Query {
            limit,
            status: status.map(Into::into),
            ..Query::default()
        };
        assert!(check(&q(Some(0), None)).is_err());
        assert!(check(&q(Some(MAX_LIMIT + 1), None)).is_err());
        assert!(check(&q(Some(MAX_LIMIT), Some("failed"))).is_ok());
        assert!(check(&q(None, Some("exploded"))).is_err());
    }
}
