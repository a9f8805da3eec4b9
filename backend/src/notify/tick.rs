//! The `notify_tick` job (queue `notify`, every `NOTIFY_TICK_SECS`): releases what is due by the notification
//! clock (docs/design/notifications.md §4.5). [`run_once`] is public so tests move a manual clock and tick
//! deterministically.
//!
//! 1. Open batches with `flush_at <= now`, each in its own transaction (`for update skip locked`, at most
//!    [`BATCH_LIMIT`] per pass): the batch is `flushed`, its waiting items `batched`, and one batch-message
//!    delivery (`ids::batch_message`, `is_batch_message`) is queued with its job. A batch of a single item
//!    (not a digest) sends that item itself. Coalesced and quiet-hours messages pass the hourly cap first (over
//!    it, their items move to the `cap` batch); a quiet batch flushing into new quiet hours (the schedule
//!    changed) waits for their end instead.
//! 2. Users whose `next_digest_at` passed get their next one computed (their due digest batches were flushed
//!    by 1.; no items → no digest).
//! 3. Jobs that failed (gave up) in the last hour without an `admin.job_dead` event get one (dedupe key
//!    `job_dead:<job id>`), so administrators hear of them in-app and by email (coalesced).
//! 4. Backstop: events left unfanned for five minutes without a pending fan-out job get one again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{
    catalogue::Channel,
    event::{Event, JobDead, clip},
    fanout, ids, prefs,
    release::{self, BatchKind, Decision},
};
use crate::{
    Ctx,
    jobs::{JobCtx, JobError, JobKind, NOTIFY_QUEUE, Schedule},
    settings::NotifySettings,
};

pub const KIND: &str = "notify_tick";

/// At most this many batches, users or events per step of one pass.
pub const BATCH_LIMIT: i64 = 500;

/// The tick job, enqueued every `NOTIFY_TICK_SECS` by the workers serving the `notify` queue.
pub const JOB: JobKind = JobKind {
    schedule: Some(Schedule {
        every: |s| Duration::from_secs(s.notify.tick_secs),
        enqueue: |ctx| Box::pin(enqueue(ctx)),
        at_start: None,
    }),
    ..JobKind::new(KIND, NOTIFY_QUEUE, |job| Box::pin(run(job)))
};

/// Enqueues a tick unless one is pending.
///
/// # Errors
/// Database errors.
pub async fn enqueue(ctx: &Ctx) -> sqlx::Result<Option<Uuid>> {
    let mut job = ctx.jobs.new_job(NOTIFY_QUEUE, KIND, serde_json::json!({}));
    job.dedupe_key = Some("notify_tick:scheduled".into());
    ctx.jobs.enqueue(&job).await
}

async fn run(job: &JobCtx) -> Result<(), JobError> {
    let report = run_once(&job.ctx).await?;
    if report != Tick::default() {
        tracing::info!(?report, "notification tick");
    }
    let tx = job.ctx.db.begin().await?;
    job.complete(tx).await
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    /// Batches flushed (or re-opened) this pass.
    pub batches: u64,
    /// Batch messages queued.
    pub messages: u64,
    /// Single waiting items sent as themselves.
    pub released: u64,
    /// Users whose next digest was scheduled.
    pub digests_scheduled: u64,
    /// `admin.job_dead` events emitted.
    pub jobs_dead: u64,
    /// Fan-out jobs enqueued again by the backstop.
    pub refanned: u64,
}

/// One pass of the tick at `ctx.clock.now()`; the delivery jobs it queued are pushed before it returns.
///
/// # Errors
/// Database errors.
pub async fn run_once(ctx: &Ctx) -> sqlx::Result<Tick> {
    let now = ctx.clock.now();
    let mut tick = Tick::default();

    // 1. Due batches.
    let due = sqlx::query_scalar!(
        r#"select batch_id from notify_batch where status = 'open' and flush_at <= $1
           order by flush_at limit $2"#,
        now,
        BATCH_LIMIT,
    )
    .fetch_all(&ctx.db)
    .await?;
    for batch_id in due {
        let mut tx = ctx.db.begin().await?;
        let mut jobs = Vec::new();
        let flushed = flush(
            &mut tx,
            &ctx.jobs,
            &ctx.settings.notify,
            now,
            batch_id,
            &mut jobs,
        )
        .await?;
        tx.commit().await?;
        for (queue, job_id) in jobs {
            ctx.jobs.push(queue, job_id).await;
        }
        if let Some(f) = flushed {
            tick.batches += 1;
            match f {
                Flushed::Message => tick.messages += 1,
                Flushed::Item => tick.released += 1,
                Flushed::Nothing => {}
            }
        }
    }

    // 2. The next digest of users whose digest time passed.
    let users = sqlx::query_scalar!(
        r#"select user_id from notify_settings where next_digest_at <= $1 order by next_digest_at limit $2"#,
        now,
        BATCH_LIMIT,
    )
    .fetch_all(&ctx.db)
    .await?;
    for user_id in users {
        let mut conn = ctx.db.acquire().await?;
        if let Some(s) = prefs::schedule_of(&mut conn, user_id).await? {
            sqlx::query!(
                "update notify_settings set next_digest_at = $2 where user_id = $1 and next_digest_at <= $3",
                user_id,
                s.next_digest(now),
                now,
            )
            .execute(&mut *conn)
            .await?;
            tick.digests_scheduled += 1;
        }
    }

    // 3. Jobs that gave up in the last hour tell the administrators (once per job: the dedupe key).
    let dead = sqlx::query!(
        r#"select j.job_id, j.kind, j.queue, coalesce(j.last_error, '') as "last_error!"
           from job j
           where j.status = 'failed' and j.finished_at > now() - interval '1 hour'
             and not exists (select 1 from notify_event e where e.dedupe_key = 'job_dead:' || j.job_id::text)
           order by j.finished_at limit $1"#,
        BATCH_LIMIT,
    )
    .fetch_all(&ctx.db)
    .await?;
    for j in dead {
        let event = Event::JobDead(JobDead {
            job_id: j.job_id,
            kind: j.kind,
            queue: j.queue,
            last_error: clip(&j.last_error, 500),
        });
        let mut tx = ctx.db.begin().await?;
        let e = super::emit(&mut tx, &ctx.jobs, &ctx.clock, &event).await?;
        tx.commit().await?;
        super::push(&ctx.jobs, &[e]).await;
        tick.jobs_dead += 1;
    }

    // 4. Backstop: events whose fan-out job went missing (database time: rows' `created_at`).
    let lost = sqlx::query_scalar!(
        r#"select e.event_id from notify_event e
           where e.fanned_out_at is null and e.created_at < now() - interval '5 minutes'
             and not exists (select 1 from job j where j.dedupe_key = 'notify_fanout:' || e.event_id::text
                               and j.status in ('queued', 'running'))
           order by e.created_at limit $1"#,
        BATCH_LIMIT,
    )
    .fetch_all(&ctx.db)
    .await?;
    for event_id in lost {
        let mut job = ctx.jobs.new_job(
            NOTIFY_QUEUE,
            fanout::KIND,
            serde_json::json!(fanout::Payload { event_id }),
        );
        job.dedupe_key = Some(format!("{}:{event_id}", fanout::KIND));
        if ctx.jobs.enqueue(&job).await?.is_some() {
            tracing::warn!(%event_id, "notification event was not fanned out; fan-out enqueued again");
            tick.refanned += 1;
        }
    }
    Ok(tick)
}

enum Flushed {
    Message,
    Item,
    Nothing,
}

/// Flushes one due batch in the caller's transaction; `None` when another tick has it or it is not due.
async fn flush(
    conn: &mut PgConnection,
    jobs: &crate::jobs::JobQueue,
    volume: &NotifySettings,
    now: DateTime<Utc>,
    batch_id: Uuid,
    new_jobs: &mut Vec<(&'static str, Uuid)>,
) -> sqlx::Result<Option<Flushed>> {
    let Some(b) = sqlx::query!(
        r#"select user_id, channel, webhook_id, kind from notify_batch
           where batch_id = $1 and status = 'open' and flush_at <= $2
           for update skip locked"#,
        batch_id,
        now,
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let kind = BatchKind::parse(&b.kind).unwrap_or(BatchKind::Coalesce);
    let channel = Channel::parse(&b.channel).unwrap_or(Channel::Email);

    // Quiet hours that started again (the schedule changed): wait for their end.
    if kind == BatchKind::Quiet
        && let Some(s) = prefs::schedule_of(conn, b.user_id).await?
        && s.in_quiet(now)
    {
        sqlx::query!(
            "update notify_batch set flush_at = $2 where batch_id = $1",
            batch_id,
            s.quiet_end(now),
        )
        .execute(&mut *conn)
        .await?;
        sqlx::query!(
            "update notify_delivery set not_before = $2 where batch_id = $1 and status = 'pending'",
            batch_id,
            s.quiet_end(now),
        )
        .execute(&mut *conn)
        .await?;
        return Ok(Some(Flushed::Nothing));
    }

    sqlx::query!(
        "update notify_batch set status = 'flushed' where batch_id = $1",
        batch_id
    )
    .execute(&mut *conn)
    .await?;
    let items = sqlx::query!(
        r#"select delivery_id, category from notify_delivery
           where batch_id = $1 and status = 'pending' order by created_at, delivery_id"#,
        batch_id,
    )
    .fetch_all(&mut *conn)
    .await?;
    if items.is_empty() {
        return Ok(Some(Flushed::Nothing));
    }
    // Coalesced and deferred messages count against the hourly cap; digests and the cap's own "N more" do not
    // wait for it (they still count).
    if matches!(kind, BatchKind::Coalesce | BatchKind::Quiet)
        && let Decision::Batch {
            batch_id: cap_batch,
            flush_at,
            ..
        } = release::cap(conn, volume, now, b.user_id, channel, b.webhook_id).await?
    {
        sqlx::query!(
            r#"update notify_delivery set batch_id = $2, not_before = $3, reason = 'capped'
               where batch_id = $1 and status = 'pending'"#,
            batch_id,
            cap_batch,
            flush_at,
        )
        .execute(&mut *conn)
        .await?;
        return Ok(Some(Flushed::Nothing));
    }

    if kind != BatchKind::Digest && items.len() == 1 {
        let delivery_id = items[0].delivery_id;
        sqlx::query!(
            r#"update notify_delivery set status = 'queued', reason = null, released_at = $2, not_before = null
               where delivery_id = $1"#,
            delivery_id,
            now,
        )
        .execute(&mut *conn)
        .await?;
        if let Some(job) = fanout::insert_delivery_job(conn, jobs, channel, delivery_id).await? {
            new_jobs.push(job);
        }
        return Ok(Some(Flushed::Item));
    }

    sqlx::query!(
        r#"update notify_delivery set status = 'batched', not_before = null
           where batch_id = $1 and status = 'pending'"#,
        batch_id,
    )
    .execute(&mut *conn)
    .await?;
    let first = items[0].category.as_str();
    let category = if kind == BatchKind::Digest {
        "digest"
    } else if items.iter().all(|i| i.category == first) {
        first
    } else {
        "mixed"
    };
    let message_id = ids::batch_message(batch_id);
    let n = sqlx::query!(
        r#"insert into notify_delivery (delivery_id, user_id, batch_id, is_batch_message, channel, webhook_id,
               category, status, released_at)
           values ($1, $2, $3, true, $4, $5, $6, 'queued', $7)
           on conflict do nothing"#,
        message_id,
        b.user_id,
        batch_id,
        channel.as_str(),
        b.webhook_id,
        category,
        now,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n > 0
        && let Some(job) = fanout::insert_delivery_job(conn, jobs, channel, message_id).await?
    {
        new_jobs.push(job);
    }
    Ok(Some(Flushed::Message))
}
