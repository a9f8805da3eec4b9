//! The `notify_webhook` job: one delivery to one destination (docs/design/notifications.md §4.4 and §6).
//!
//! 1. A delivery already `sent`/`failed`/`suppressed`/`cancelled` is done (a duplicate job).
//! 2. Send-time re-checks: the webhook still exists and is enabled (else `suppressed`, `channel_disabled`);
//!    the SSRF guard vets the URL again (a refusal is a failed attempt).
//! 3. Per-destination rate window in Redis (over → deferred, not an attempt); post (pinned, signed, with a
//!    timeout); every try is logged in `notify_attempt`.
//! 4. 2xx → `sent`, the webhook's failure counter reset. 429 → retried after `Retry-After`. 5xx and network
//!    errors → retried with back-off (`JOB_RETRY_WEBHOOK`, about a day) until the delivery's attempts reach
//!    its budget, then failed. 410 (or 404 from Slack/Discord) → failed and the webhook disabled at once
//!    (`gone`). Other 4xx/3xx and refusals → failed.
//!    Each failed delivery adds one to the webhook's consecutive failures; at `WEBHOOK_DISABLE_AFTER` the
//!    webhook is disabled (`failing`), its open deliveries cancelled and `notify.webhook_disabled` emitted
//!    to its owner in the same transaction.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    format, send,
    send::{Attempted, Destination, Outcome},
    sign,
    ssrf::Refusal,
};
use crate::{
    jobs::{JobCtx, JobError, JobKind, NOTIFY_QUEUE},
    notify::{
        catalogue::Channel,
        digest,
        event::{Event, WebhookDisabled},
    },
    redis::{RateCheck, check_rate_window},
};

pub const KIND: &str = "notify_webhook";

/// Job attempts beyond the `JOB_RETRY_WEBHOOK` budget: only infrastructure errors (database) use them, so a
/// user's broken endpoint completes the job with the delivery `failed` instead of failing the job.
pub const SPARE_ATTEMPTS: i32 = 3;

pub const JOB: JobKind = JobKind::new(KIND, NOTIFY_QUEUE, |job| Box::pin(run(job)));

/// The job's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    pub delivery_id: Uuid,
}

async fn run(job: &JobCtx) -> Result<(), JobError> {
    let p: Payload = job.payload()?;
    let ctx = &job.ctx;
    let Some(d) = sqlx::query!(
        r#"select d.status, d.webhook_id, d.event_id, d.is_batch_message, d.batch_id,
                  e.payload as "payload?", e.occurred_at as "occurred_at?"
           from notify_delivery d left join notify_event e on e.event_id = d.event_id
           where d.delivery_id = $1"#,
        p.delivery_id,
    )
    .fetch_optional(&ctx.db)
    .await?
    else {
        return Ok(());
    };
    if !matches!(d.status.as_str(), "queued" | "pending") {
        return Ok(());
    }
    let Some(webhook_id) = d.webhook_id else {
        return Err(JobError::Permanent("not a webhook delivery".into()));
    };
    let Some(hook) = Destination::load(&ctx.db, webhook_id).await? else {
        return Ok(()); // deleted: its deliveries went with it
    };
    if hook.disabled_at.is_some() {
        return close(job, p.delivery_id, "suppressed", "channel_disabled", None).await;
    }
    let body = if d.is_batch_message {
        // A batch message lists its items as they are wanted now (unsubscribed or turned off since: dropped).
        let content = match d.batch_id {
            Some(b) => {
                digest::load(
                    &mut *ctx.db.acquire().await?,
                    &ctx.settings.notify,
                    ctx.clock.now(),
                    b,
                    Channel::Webhook,
                )
                .await?
            }
            None => None,
        };
        match content {
            Some(c) if c.total > 0 => {
                format::batch_body(&hook.kind, &c, &ctx.settings.public_url, ctx.clock.now())
            }
            _ => return close(job, p.delivery_id, "suppressed", "off", None).await,
        }
    } else {
        let (Some(event_id), Some(payload), Some(occurred_at)) =
            (d.event_id, d.payload, d.occurred_at)
        else {
            return close(job, p.delivery_id, "failed", "unreadable", None).await;
        };
        let event: Event = match serde_json::from_value(payload) {
            Ok(e) => e,
            Err(e) => {
                let msg = format!("payload not readable: {e}");
                return close(job, p.delivery_id, "failed", "unreadable", Some(&msg)).await;
            }
        };
        format::body(
            &hook.kind,
            &format::Message {
                event_id,
                event: &event,
                occurred_at,
                public_url: &ctx.settings.public_url,
            },
        )
    };
    // The destination's own limits (Slack 1/s, Discord 25/min, generic WEBHOOK_RATE_PER_MIN): over → come
    // back when the window ends, without spending an attempt. Redis down → send (a 429 is the backstop).
    let (limit, window) = match hook.kind.as_str() {
        "slack" => (1, 1),
        "discord" => (25, 60),
        _ => (ctx.settings.webhook.rate_per_min, 60),
    };
    if let RateCheck::Over(wait) = check_rate_window(
        &ctx.redis,
        &ctx.settings.redis_namespace,
        &format!("webhook:{webhook_id}"),
        limit,
        window,
    )
    .await
    {
        return Err(JobError::Defer(Duration::from_secs(wait.max(1))));
    }
    let message_id = sign::message_id(p.delivery_id);
    let a = send::attempt_body(ctx, &hook, &message_id, &body).await;
    let tries = log_attempt(ctx, p.delivery_id, &a).await?;
    let last_try = tries >= ctx.settings.jobs.retry.webhook.max_attempts
        || job.job.attempt >= job.job.max_attempts;
    let error = a.error.clone().unwrap_or_default();
    match a.outcome {
        Outcome::Ok => {
            let mut tx = ctx.db.begin().await?;
            sqlx::query!(
                r#"update notify_delivery set status = 'sent', reason = null, sent_at = now(), provider_ref = $2,
                       last_error = null
                   where delivery_id = $1"#,
                p.delivery_id,
                message_id,
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!(
                r#"update notify_webhook set consecutive_failures = 0, last_success_at = now()
                   where webhook_id = $1"#,
                webhook_id,
            )
            .execute(&mut *tx)
            .await?;
            job.complete(tx).await
        }
        Outcome::RateLimited(wait) if !last_try => Err(JobError::RetryAfter(
            wait,
            anyhow::anyhow!("rate limited by the destination (HTTP 429)"),
        )),
        Outcome::Retry | Outcome::Refused(Refusal::Unresolvable) if !last_try => {
            Err(JobError::Retry(anyhow::anyhow!("{error}")))
        }
        Outcome::Gone => fail(job, &hook, p.delivery_id, "gone", true, &error).await,
        Outcome::Refused(Refusal::Unresolvable) | Outcome::Retry | Outcome::RateLimited(_) => {
            fail(job, &hook, p.delivery_id, "gave_up", false, &error).await
        }
        Outcome::Refused(_) => {
            fail(
                job,
                &hook,
                p.delivery_id,
                "refused_destination",
                false,
                &error,
            )
            .await
        }
        Outcome::Rejected => fail(job, &hook, p.delivery_id, "http_4xx", false, &error).await,
    }
}

/// Records one try (its own statement, so failed tries are logged too) and counts it on the delivery.
async fn log_attempt(ctx: &crate::Ctx, delivery_id: Uuid, a: &Attempted) -> sqlx::Result<i32> {
    let n = sqlx::query_scalar!(
        r#"update notify_delivery set attempts = attempts + 1, last_error = $2 where delivery_id = $1
           returning attempts"#,
        delivery_id,
        a.error.as_deref(),
    )
    .fetch_one(&ctx.db)
    .await?;
    sqlx::query!(
        r#"insert into notify_attempt (delivery_id, attempt, duration_ms, outcome, http_status, remote_addr, error)
           values ($1, $2, $3, $4, $5, $6, $7)"#,
        delivery_id,
        n,
        i32::try_from(a.duration.as_millis()).unwrap_or(i32::MAX),
        a.outcome.as_str(),
        a.http_status.map(i32::from),
        a.remote_addr.as_deref(),
        a.error.as_deref().map(|e| format::clip(e, 2000)),
    )
    .execute(&ctx.db)
    .await?;
    Ok(n)
}

/// Ends the delivery without sending (and without touching the webhook's counters).
async fn close(
    job: &JobCtx,
    delivery_id: Uuid,
    status: &str,
    reason: &str,
    error: Option<&str>,
) -> Result<(), JobError> {
    let mut tx = job.ctx.db.begin().await?;
    sqlx::query!(
        "update notify_delivery set status = $2, reason = $3, last_error = coalesce($4, last_error) where delivery_id = $1",
        delivery_id,
        status,
        reason,
        error,
    )
    .execute(&mut *tx)
    .await?;
    job.complete(tx).await
}

/// A failed delivery: counted on the webhook, which is disabled when it is gone or has failed
/// `WEBHOOK_DISABLE_AFTER` times in a row (its open deliveries are then cancelled). The job completes: a
/// user's broken endpoint is not an operator's failed job.
async fn fail(
    job: &JobCtx,
    hook: &Destination,
    delivery_id: Uuid,
    reason: &str,
    gone: bool,
    error: &str,
) -> Result<(), JobError> {
    let ctx = &job.ctx;
    let mut tx = ctx.db.begin().await?;
    sqlx::query!(
        "update notify_delivery set status = 'failed', reason = $2, last_error = $3 where delivery_id = $1",
        delivery_id,
        reason,
        format::clip(error, 2000),
    )
    .execute(&mut *tx)
    .await?;
    let disabled = sqlx::query_scalar!(
        r#"update notify_webhook
           set consecutive_failures = consecutive_failures + 1, last_failure_at = now(),
               disabled_at = case when disabled_at is null and ($2 or consecutive_failures + 1 >= $3)
                                  then now() else disabled_at end,
               disabled_reason = case when disabled_at is not null then disabled_reason
                                      when $2 then 'gone'
                                      when consecutive_failures + 1 >= $3 then 'failing'
                                      else disabled_reason end
           where webhook_id = $1
           returning (disabled_at is not null) as "disabled!""#,
        hook.webhook_id,
        gone,
        ctx.settings.webhook.disable_after,
    )
    .fetch_optional(&mut *tx)
    .await?
    .unwrap_or(false);
    if disabled {
        sqlx::query!(
            r#"update notify_delivery set status = 'cancelled', reason = 'channel_disabled'
               where webhook_id = $1 and status in ('pending', 'queued') and delivery_id <> $2"#,
            hook.webhook_id,
            delivery_id,
        )
        .execute(&mut *tx)
        .await?;
        tracing::warn!(webhook_id = %hook.webhook_id, reason, "webhook disabled");
    }
    // The owner hears of it (email and in-app) in the transaction that disabled it.
    let emitted = if disabled && hook.disabled_at.is_none() {
        let event = Event::WebhookDisabled(WebhookDisabled {
            user_id: hook.user_id,
            webhook_id: hook.webhook_id,
            name: hook.name.clone(),
            reason: if gone { "gone" } else { "failing" }.to_owned(),
            delivery_id,
        });
        Some(crate::notify::emit(&mut tx, &ctx.jobs, &ctx.clock, &event).await?)
    } else {
        None
    };
    job.complete(tx).await?;
    if let Some(e) = emitted {
        crate::notify::push(&ctx.jobs, &[e]).await;
    }
    Ok(())
}
