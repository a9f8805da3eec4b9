//! The email channel: the `notify_email` job (queue `mail`) delivers one `notify_delivery` row, exactly once per
//! delivery id (docs/design/notifications.md §4.4 and §5).
//!
//! 1. The delivery is loaded; anything but `queued` means a duplicate job: nothing to do.
//! 2. Send-time re-checks: the user is not disabled, the category's email is not off or unsubscribed (criticals
//!    exempt), the address is confirmed (security mail exempt) and not marked undeliverable
//!    ([`crate::mail::suppression`]). A failed check marks the delivery `suppressed` with its reason.
//! 3. The first attempt renders ([`render`]) and inserts the outbox row with `email_id = delivery_id`
//!    (`on conflict do nothing`); retries reuse it, so content and `Message-ID <n-{delivery_id}@{domain}>`
//!    never change. A batch message (`is_batch_message`: coalesced, quiet hours, the cap's "N more", a
//!    digest) renders its items at this moment ([`digest::load`]), dropping those unsubscribed since; with
//!    none left it is `suppressed` (`unsubscribed`).
//! 4. Send; each try is a `notify_attempt` row.
//! 5. Success: delivery `sent` (with the `Message-ID`), outbox `sent` and the job done, in one transaction.
//!    A permanent rejection of the address marks it undeliverable, fails the delivery (`rejected_address`),
//!    suppresses the user's other waiting email and tells the user in-app (`notify.email_undeliverable`); another permanent refusal fails the delivery; transient
//!    failures are retried with the `mail` back-off, re-checking at every attempt.

pub mod render;
pub mod sparkline;
pub mod undeliverable;

pub use undeliverable::{clear_undeliverable, clear_undeliverable_for};

use std::time::Instant;

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{
    catalogue::{self, Category, Channel, Mode},
    digest, emit,
    event::{EmailUndeliverable, Event},
    prefs::{self, RuleSource},
};
use crate::{
    jobs::{JobCtx, JobError, JobKind, MAIL_QUEUE},
    mail::{SendErrorKind, outbox, suppression},
};

pub const KIND: &str = "notify_email";

/// The delivery job (queue `mail`, the `mail` retry class).
pub const JOB: JobKind = JobKind::new(KIND, MAIL_QUEUE, |job| Box::pin(run(job)));

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    pub delivery_id: Uuid,
}

/// The `Message-ID` of a delivery's email.
pub fn message_id(delivery_id: Uuid, domain: &str) -> String {
    format!("<n-{delivery_id}@{domain}>")
}

/// Whether the actor's own address is marked undeliverable (`mail_suppression`): the header banner and the
/// settings page's email status. Any signed-in reader, about their own address only.
///
/// # Errors
/// [`crate::Error::Unauthenticated`], database errors.
pub async fn address_undeliverable(ctx: &crate::Ctx, actor: &crate::Actor) -> crate::Result<bool> {
    let user = actor.reader()?;
    let mut conn = ctx.db.acquire().await?;
    Ok(suppression::is_suppressed(&mut conn, &user.email).await?)
}

/// Why a queued email is not sent (`None`: send it).
async fn recheck(
    conn: &mut PgConnection,
    user_id: Uuid,
    spec: &catalogue::EventSpec,
    paper_run_id: Option<Uuid>,
    address: &str,
    disabled: bool,
    verified: bool,
) -> sqlx::Result<Option<&'static str>> {
    if disabled {
        return Ok(Some("user_disabled"));
    }
    if !prefs::locked(spec, Channel::Email) {
        let rules = prefs::load(conn, user_id).await?;
        let unsubscribed = rules.iter().any(|r| {
            r.source == RuleSource::Unsubscribe
                && r.mode == Mode::Off
                && r.category.as_deref() == Some(spec.category.as_str())
                && r.channel.is_none_or(|c| c == Channel::Email)
        });
        if unsubscribed {
            return Ok(Some("unsubscribed"));
        }
        if prefs::resolve(spec, Channel::Email, paper_run_id, &rules) == Mode::Off {
            return Ok(Some("off"));
        }
    }
    if !verified && spec.category != Category::Security {
        return Ok(Some("undeliverable"));
    }
    if suppression::is_suppressed(conn, address).await? {
        return Ok(Some("undeliverable"));
    }
    Ok(None)
}

async fn run(job: &JobCtx) -> Result<(), JobError> {
    let Payload { delivery_id } = job.payload()?;
    let ctx = &job.ctx;
    let mut conn = ctx.db.acquire().await?;
    let Some(d) = sqlx::query!(
        r#"select d.status, d.user_id, d.attempts, d.is_batch_message, d.batch_id,
                  e.event_type as "event_type?", e.payload as "payload?", e.paper_run_id,
                  u.email, u.disabled_at is not null as "disabled!", u.email_verified_at is not null as "verified!"
           from notify_delivery d
           left join notify_event e on e.event_id = d.event_id
           join app_user u on u.user_id = d.user_id
           where d.delivery_id = $1 and d.channel = 'email'"#,
        delivery_id,
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        tracing::info!(%delivery_id, "email delivery gone; nothing to do");
        return Ok(());
    };
    if d.status != "queued" {
        tracing::info!(%delivery_id, status = %d.status, "email delivery already handled; nothing to do");
        return Ok(());
    }
    let domain = ctx.mailer.message_id_domain();
    let site = render::Site {
        public_url: ctx.settings.public_url.as_str(),
        domain: &domain,
        keys: &ctx.keys,
    };
    // A batch message renders its items now, dropping those unsubscribed since; an event's email renders the
    // event. Each re-checks what may have changed since the delivery was queued.
    let rendered = if d.is_batch_message {
        let content = match d.batch_id {
            Some(b) => {
                digest::load(
                    &mut conn,
                    &ctx.settings.notify,
                    ctx.clock.now(),
                    b,
                    Channel::Email,
                )
                .await?
            }
            None => None,
        };
        let reason = if d.disabled {
            Some("user_disabled")
        } else if !d.verified || suppression::is_suppressed(&mut conn, &d.email).await? {
            Some("undeliverable")
        } else if content.as_ref().is_none_or(|c| c.total == 0) {
            Some("unsubscribed")
        } else {
            None
        };
        match (reason, content) {
            (None, Some(c)) => Ok(render::render_batch(&site, &c).map_err(JobError::Retry)?),
            (r, _) => Err(r.unwrap_or("unsubscribed")),
        }
    } else {
        let (Some(event_type), Some(payload)) = (d.event_type, d.payload) else {
            return Err(JobError::Permanent(
                "email delivery without its event".into(),
            ));
        };
        let spec = catalogue::find(&event_type).ok_or_else(|| {
            JobError::Permanent(format!("unknown notification type `{event_type}`"))
        })?;
        match recheck(
            &mut conn,
            d.user_id,
            spec,
            d.paper_run_id,
            &d.email,
            d.disabled,
            d.verified,
        )
        .await?
        {
            Some(reason) => Err(reason),
            None => {
                // Render once: retries send the stored row, so the content and the Message-ID never change.
                let event: Event = serde_json::from_value(payload).map_err(|e| {
                    JobError::Permanent(format!("notification payload not readable: {e}"))
                })?;
                Ok(render::render(&site, spec, &event, d.user_id).map_err(JobError::Retry)?)
            }
        }
    };
    let r = match rendered {
        Ok(r) => r,
        Err(reason) => {
            sqlx::query!(
                r#"update notify_delivery set status = 'suppressed', reason = $2
                   where delivery_id = $1 and status = 'queued'"#,
                delivery_id,
                reason,
            )
            .execute(&mut *conn)
            .await?;
            tracing::info!(%delivery_id, reason, "email not sent (send-time check)");
            return Ok(());
        }
    };
    let headers: serde_json::Map<String, serde_json::Value> = r
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let class = match r.class {
        catalogue::MailClass::Transactional => "transactional",
        catalogue::MailClass::Subscription => "subscription",
    };
    sqlx::query!(
        r#"insert into email_outbox (email_id, user_id, to_address, template, subject, body_text, body_html,
               message_id, mail_class, category, event_id, delivery_id, headers)
           select $1, d.user_id, $2, $3, $4, $5, $6, $7, $8, d.category, d.event_id, d.delivery_id, $9
           from notify_delivery d where d.delivery_id = $1
           on conflict do nothing"#,
        delivery_id,
        &d.email,
        &r.template,
        &r.subject,
        &r.text,
        &r.html,
        message_id(delivery_id, &domain),
        class,
        serde_json::Value::Object(headers),
    )
    .execute(&mut *conn)
    .await?;
    let Some(mut email) = outbox::pending(&ctx.db, delivery_id).await? else {
        // Sent before, but the delivery was not marked (a crash in between): record it now.
        let mut tx = ctx.db.begin().await?;
        mark_sent(&mut tx, delivery_id, None).await?;
        job.complete(tx).await?;
        return Ok(());
    };

    // Only when the stored HTML refers to them (rendered by this version of the template).
    if email.html.contains("cid:") {
        email.inline = r.inline;
    }
    let attempt = d.attempts + 1;
    let started = Instant::now();
    let result = ctx.mailer.send(&email).await;
    let duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    let (outcome, smtp_code, error) = match &result {
        Ok(()) => ("ok", None, None),
        Err(e) => (
            match e.kind {
                SendErrorKind::RejectedAddress => "rejected_address",
                SendErrorKind::Permanent => "failed",
                SendErrorKind::Transient => "retry",
            },
            e.smtp_code.map(i32::from),
            Some(e.message.clone()),
        ),
    };
    sqlx::query!(
        r#"insert into notify_attempt (delivery_id, attempt, duration_ms, outcome, smtp_code, error)
           values ($1, $2, $3, $4, $5, left($6, 2000))"#,
        delivery_id,
        attempt,
        duration_ms,
        outcome,
        smtp_code,
        error,
    )
    .execute(&mut *conn)
    .await?;
    drop(conn);

    match result {
        Ok(()) => {
            let mut tx = ctx.db.begin().await?;
            mark_sent(&mut tx, delivery_id, Some(&email.message_id)).await?;
            outbox::mark_sent(&mut tx, delivery_id).await?;
            job.complete(tx).await?;
            tracing::info!(%delivery_id, message_id = %email.message_id, "notification email sent");
            Ok(())
        }
        Err(e) if e.kind != SendErrorKind::Transient => {
            let mut tx = ctx.db.begin().await?;
            let mut emitted = Vec::new();
            let reason = if e.kind == SendErrorKind::RejectedAddress {
                if suppression::record_rejection(&mut tx, &email.to, e.smtp_code, &e.message)
                    .await?
                {
                    // Tell the user in-app (their email cannot reach them).
                    let event = Event::EmailUndeliverable(EmailUndeliverable {
                        user_id: d.user_id,
                        smtp_code: e.smtp_code,
                        smtp_message: e.message.chars().take(500).collect(),
                    });
                    emitted.push(emit::emit(&mut tx, &ctx.jobs, &ctx.clock, &event).await?);
                }
                // The user's other waiting email would be refused too.
                sqlx::query!(
                    r#"update notify_delivery set status = 'suppressed', reason = 'undeliverable'
                       where user_id = $1 and channel = 'email' and status in ('pending', 'queued')
                         and delivery_id <> $2"#,
                    d.user_id,
                    delivery_id,
                )
                .execute(&mut *tx)
                .await?;
                "rejected_address"
            } else {
                "refused"
            };
            mark_failed(&mut tx, delivery_id, reason, &e.message).await?;
            outbox::mark_failed(&mut tx, delivery_id, &e.message, true).await?;
            job.complete(tx).await?;
            emit::push(&ctx.jobs, &emitted).await;
            tracing::warn!(%delivery_id, error = %e, "notification email refused permanently");
            Ok(())
        }
        Err(e) => {
            let is_final = job.job.attempt >= job.job.max_attempts;
            let mut tx = ctx.db.begin().await?;
            sqlx::query!(
                r#"update notify_delivery set attempts = attempts + 1, last_error = left($2, 2000),
                       status = case when $3 then 'failed' else status end
                   where delivery_id = $1"#,
                delivery_id,
                &e.message,
                is_final,
            )
            .execute(&mut *tx)
            .await?;
            outbox::mark_failed(&mut tx, delivery_id, &e.message, is_final).await?;
            tx.commit().await?;
            Err(JobError::Retry(anyhow::anyhow!(
                "sending notification email {delivery_id}: {}",
                e.message
            )))
        }
    }
}

async fn mark_sent(
    conn: &mut PgConnection,
    delivery_id: Uuid,
    message_id: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"update notify_delivery set status = 'sent', sent_at = now(), attempts = attempts + 1,
               last_error = null, provider_ref = coalesce($2, provider_ref)
           where delivery_id = $1"#,
        delivery_id,
        message_id,
    )
    .execute(conn)
    .await?;
    Ok(())
}

async fn mark_failed(
    conn: &mut PgConnection,
    delivery_id: Uuid,
    reason: &str,
    error: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"update notify_delivery set status = 'failed', reason = $2, attempts = attempts + 1,
               last_error = left($3, 2000)
           where delivery_id = $1"#,
        delivery_id,
        reason,
        error,
    )
    .execute(conn)
    .await?;
    Ok(())
}
