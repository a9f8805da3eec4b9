//! The `notify_fanout` job: turns one event into its in-app rows and per-channel delivery rows, in the
//! transaction that marks the job done (docs/design/notifications.md §4.1).
//!
//! Exactly once: the event row is locked and marked `fanned_out_at`; every row written has a deterministic id
//! ([`super::ids`]) and is inserted with `on conflict do nothing`, so a worker killed before the commit leaves
//! nothing and a re-run (or a duplicate delivery of the job) writes nothing twice.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{
    PG_CHANNEL,
    catalogue::{self, Category, Channel, EventSpec, Mode},
    channel::{CHANNELS, UNAVAILABLE},
    email,
    event::Event,
    ids::{self, Target},
    prefs,
    release::{self, Candidate, Decision},
    webhook,
};
use crate::{
    clock::Clock,
    jobs::{JobCtx, JobError, JobKind, JobQueue, MAIL_QUEUE, NOTIFY_QUEUE, NewJob},
    settings::NotifySettings,
};

pub const KIND: &str = "notify_fanout";

/// The fan-out job (queue `notify`): no dependents, nothing to sweep.
pub const JOB: JobKind = JobKind::new(KIND, NOTIFY_QUEUE, |job| Box::pin(run(job)));

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    pub event_id: Uuid,
}

/// What one fan-out wrote (rows newly inserted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FanOut {
    pub recipients: usize,
    pub notifications: u64,
    pub deliveries: u64,
    /// Delivery jobs inserted, with their queue: push them after committing (the reconciler does otherwise).
    pub jobs: Vec<(&'static str, Uuid)>,
}

async fn run(job: &JobCtx) -> Result<(), JobError> {
    let p: Payload = job.payload()?;
    let mut tx = job.ctx.db.begin().await?;
    let out = fan_out_with(
        &mut tx,
        &job.ctx.jobs,
        &job.ctx.clock,
        &job.ctx.settings.notify,
        p.event_id,
    )
    .await?;
    job.complete(tx).await?;
    if let Some(out) = out {
        for (queue, job_id) in &out.jobs {
            job.ctx.jobs.push(queue, *job_id).await;
        }
        tracing::debug!(event_id = %p.event_id, ?out, "notification fanned out");
    }
    Ok(())
}

/// What a notification shows, from the event's payload (a payload this version cannot read still gets a
/// plain notification naming its type).
fn content(spec: &EventSpec, payload: serde_json::Value) -> (String, String, Option<String>) {
    match serde_json::from_value::<Event>(payload) {
        Ok(e) => (e.title(), e.body(), e.url()),
        Err(e) => {
            tracing::warn!(error = %e, event_type = spec.name, "notification payload not readable");
            (spec.name.to_owned(), String::new(), None)
        }
    }
}

/// [`fan_out_with`] with the default volume settings (`NOTIFY_*` defaults).
///
/// # Errors
/// As [`fan_out_with`].
pub async fn fan_out(
    conn: &mut PgConnection,
    jobs: &JobQueue,
    clock: &Clock,
    event_id: Uuid,
) -> Result<Option<FanOut>, JobError> {
    fan_out_with(conn, jobs, clock, &NotifySettings::default(), event_id).await
}

/// Fans out `event_id` inside the caller's transaction (which should also mark the job done). `None` when the
/// event is gone (deleted with its user); an empty [`FanOut`] when it was fanned out already. Each new email
/// and webhook delivery goes through the release decision ([`release::decide`]: quiet hours, coalescing, the
/// hourly cap, digests); delivery jobs are inserted for those that go out now ([`FanOut::jobs`]; push them
/// after committing).
///
/// # Errors
/// Database errors ([`JobError::Retry`]); an unknown event type ([`JobError::Permanent`]).
pub async fn fan_out_with(
    conn: &mut PgConnection,
    jobs: &JobQueue,
    clock: &Clock,
    volume: &NotifySettings,
    event_id: Uuid,
) -> Result<Option<FanOut>, JobError> {
    let Some(ev) = sqlx::query!(
        r#"select event_type, critical, audience, user_id, paper_run_id, payload, fanned_out_at,
                  coalesce_key, occurred_at
           from notify_event where event_id = $1 for update"#,
        event_id,
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    if ev.fanned_out_at.is_some() {
        return Ok(Some(FanOut::default()));
    }
    let spec = catalogue::find(&ev.event_type).ok_or_else(|| {
        JobError::Permanent(format!("unknown notification type `{}`", ev.event_type))
    })?;
    // A test of one channel (`system.test` with `channel`) skips the others.
    let only = ev
        .payload
        .get("channel")
        .and_then(|c| c.as_str())
        .and_then(Channel::parse)
        .filter(|_| spec.name == "system.test");
    let (title, body, url) = content(spec, ev.payload.clone());
    let recipients = sqlx::query!(
        r#"select u.user_id,
                  u.email_verified_at is not null as "verified!",
                  exists (select 1 from mail_suppression s where s.address = lower(u.email)) as "undeliverable!"
           from app_user u
           where u.disabled_at is null
             and (($1 = 'user' and u.user_id = $2) or ($1 = 'admins' and u.role = 'admin')
                  -- The sign-up approvers; every administrator while none is marked.
                  or ($1 = 'approvers' and u.role = 'admin'
                      and (u.signup_approver
                           or not exists (select 1 from app_user a where a.role = 'admin'
                                          and a.disabled_at is null and a.signup_approver))))
           order by u.user_id"#,
        ev.audience,
        ev.user_id,
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = FanOut {
        recipients: recipients.len(),
        ..FanOut::default()
    };
    for r in recipients {
        let user_id = r.user_id;
        // Email needs a confirmed address (security mail excepted) the relay has not refused for good.
        let mailable = !r.undeliverable && (r.verified || spec.category == Category::Security);
        let rules = prefs::load(conn, user_id).await?;
        let Some(schedule) = prefs::schedule_of(conn, user_id).await? else {
            continue;
        };
        let at = Release {
            volume,
            schedule: &schedule,
            coalesce_key: ev.coalesce_key.as_deref(),
            occurred_at: ev.occurred_at,
            paper_run_id: ev.paper_run_id,
            payload: &ev.payload,
        };
        for ch in CHANNELS
            .iter()
            .filter(|c| only.is_none_or(|o| o == c.channel))
        {
            let mode = prefs::resolve(spec, ch.channel, ev.paper_run_id, &rules);
            match ch.channel {
                Channel::InApp => {
                    if mode == Mode::Off {
                        continue;
                    }
                    let n = sqlx::query!(
                        r#"insert into notification (notification_id, user_id, event_id, event_type, category,
                               critical, title, body, url)
                           values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                           on conflict do nothing"#,
                        ids::notification(event_id, user_id),
                        user_id,
                        event_id,
                        spec.name,
                        spec.category.as_str(),
                        ev.critical,
                        &title,
                        &body,
                        url.as_deref(),
                    )
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if n > 0 {
                        changed(conn, user_id).await?;
                    }
                    out.notifications += n;
                }
                Channel::Email => {
                    out.deliveries += record(
                        conn,
                        jobs,
                        clock,
                        &at,
                        &mut out.jobs,
                        Delivery {
                            event_id,
                            user_id,
                            channel: ch.channel,
                            target: Target::SelfAddress,
                            spec,
                            critical: ev.critical,
                            mode,
                            delivers: ch.delivers,
                            undeliverable: !mailable,
                        },
                    )
                    .await?;
                }
                Channel::Webhook => {
                    let hooks = sqlx::query_scalar!(
                        r#"select webhook_id from notify_webhook
                           where user_id = $1 and disabled_at is null and $2 = any(categories)
                           order by webhook_id"#,
                        user_id,
                        spec.category.as_str(),
                    )
                    .fetch_all(&mut *conn)
                    .await?;
                    for webhook_id in hooks {
                        out.deliveries += record(
                            conn,
                            jobs,
                            clock,
                            &at,
                            &mut out.jobs,
                            Delivery {
                                event_id,
                                user_id,
                                channel: ch.channel,
                                target: Target::Webhook(webhook_id),
                                spec,
                                critical: ev.critical,
                                mode,
                                delivers: ch.delivers,
                                undeliverable: false,
                            },
                        )
                        .await?;
                    }
                }
            }
        }
    }
    sqlx::query!(
        "update notify_event set fanned_out_at = $2 where event_id = $1",
        event_id,
        clock.now(),
    )
    .execute(&mut *conn)
    .await?;
    metrics::counter!("notify_notifications_total").increment(out.notifications);
    Ok(Some(out))
}

/// Tells the in-app listeners (on commit) that `user_id`'s notifications changed.
pub(crate) async fn changed(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "select pg_notify($1, $2)",
        PG_CHANNEL,
        serde_json::json!({ "u": user_id }).to_string(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

struct Delivery<'a> {
    event_id: Uuid,
    user_id: Uuid,
    channel: Channel,
    target: Target,
    spec: &'a EventSpec,
    critical: bool,
    mode: Mode,
    delivers: bool,
    /// The destination cannot receive anything (an unconfirmed or refused email address).
    undeliverable: bool,
}

/// What the release decision needs besides the delivery (the same for every channel of one recipient).
struct Release<'a> {
    volume: &'a NotifySettings,
    schedule: &'a prefs::UserSchedule,
    coalesce_key: Option<&'a str>,
    occurred_at: chrono::DateTime<chrono::Utc>,
    paper_run_id: Option<Uuid>,
    payload: &'a serde_json::Value,
}

/// The sender job of an email (`notify_email`, queue `mail`) or webhook (`notify_webhook`, queue `notify`)
/// delivery, with its queue.
pub(crate) fn delivery_job(
    jobs: &JobQueue,
    channel: Channel,
    delivery_id: Uuid,
) -> Option<(&'static str, NewJob)> {
    match channel {
        Channel::Email => Some((
            MAIL_QUEUE,
            jobs.new_job(
                MAIL_QUEUE,
                email::KIND,
                serde_json::to_value(email::Payload { delivery_id }).unwrap_or_default(),
            ),
        )),
        Channel::Webhook => {
            let mut job = jobs.new_job(
                NOTIFY_QUEUE,
                webhook::job::KIND,
                serde_json::json!(webhook::job::Payload { delivery_id }),
            );
            job.dedupe_key = Some(format!("{}:{delivery_id}", webhook::job::KIND));
            // The endpoint's budget is counted on the delivery; the spare attempts are for our own failures.
            job.max_attempts += webhook::job::SPARE_ATTEMPTS;
            Some((NOTIFY_QUEUE, job))
        }
        Channel::InApp => None,
    }
}

/// Inserts the sender job of `delivery_id` and records its id on the delivery; returns (queue, job id).
///
/// # Errors
/// Database errors.
pub(crate) async fn insert_delivery_job(
    conn: &mut PgConnection,
    jobs: &JobQueue,
    channel: Channel,
    delivery_id: Uuid,
) -> sqlx::Result<Option<(&'static str, Uuid)>> {
    let Some((queue, job)) = delivery_job(jobs, channel, delivery_id) else {
        return Ok(None);
    };
    let Some(job_id) = jobs.insert(conn, &job).await? else {
        return Ok(None);
    };
    sqlx::query!(
        "update notify_delivery set job_id = $2 where delivery_id = $1",
        delivery_id,
        job_id,
    )
    .execute(&mut *conn)
    .await?;
    Ok(Some((queue, job_id)))
}

/// Records one delivery decision. Returns 1 when the row is new, 0 when a previous run wrote it. A delivery that
/// should go out passes the release decision ([`release::decide`]): out now (`queued`, with its `notify_email`
/// or `notify_webhook` job), waiting in a batch (`pending`, `batch_id`, `not_before`) or `suppressed`. Only a
/// newly inserted row gets a job, so a re-run never creates a second one.
async fn record(
    conn: &mut PgConnection,
    jobs: &JobQueue,
    clock: &Clock,
    at: &Release<'_>,
    new_jobs: &mut Vec<(&'static str, Uuid)>,
    d: Delivery<'_>,
) -> sqlx::Result<u64> {
    let webhook_id = match d.target {
        Target::Webhook(id) => Some(id),
        Target::SelfAddress => None,
    };
    let now = clock.now();
    let delivery_id = ids::delivery(d.event_id, d.user_id, d.channel, d.target);
    // A re-run: the row is there already (and, if it was to go out, its job).
    let exists = sqlx::query_scalar!(
        r#"select exists (select 1 from notify_delivery where delivery_id = $1) as "x!""#,
        delivery_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if exists {
        return Ok(0);
    }
    let decision = match (d.mode, d.delivers) {
        (Mode::Off, _) => Decision::Suppress("off".into()),
        _ if d.undeliverable => Decision::Suppress("undeliverable".into()),
        (_, false) => Decision::Suppress(UNAVAILABLE.into()),
        _ => {
            release::decide(
                conn,
                at.volume,
                now,
                at.schedule,
                &Candidate {
                    user_id: d.user_id,
                    channel: d.channel,
                    webhook_id,
                    spec: d.spec,
                    critical: d.critical,
                    mode: d.mode,
                    event_type: d.spec.name,
                    coalesce_key: at.coalesce_key,
                    occurred_at: at.occurred_at,
                    paper_run_id: at.paper_run_id,
                    payload: Some(at.payload),
                },
            )
            .await?
        }
    };
    let (status, reason, batch_id, not_before, released_at) = match &decision {
        Decision::Queue => ("queued", None, None, None, Some(now)),
        Decision::Suppress(r) => ("suppressed", Some(r.clone()), None, None, None),
        Decision::Batch {
            batch_id,
            kind,
            flush_at,
        } => (
            "pending",
            Some(kind.reason().to_owned()),
            Some(*batch_id),
            Some(*flush_at),
            None,
        ),
    };
    let n = sqlx::query!(
        r#"insert into notify_delivery (delivery_id, user_id, event_id, channel, webhook_id, category, critical,
               status, reason, released_at, batch_id, not_before)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
           on conflict do nothing"#,
        delivery_id,
        d.user_id,
        d.event_id,
        d.channel.as_str(),
        webhook_id,
        d.spec.category.as_str(),
        d.critical,
        status,
        reason,
        released_at,
        batch_id,
        not_before,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n > 0
        && decision == Decision::Queue
        && let Some(job) = insert_delivery_job(conn, jobs, d.channel, delivery_id).await?
    {
        new_jobs.push(job);
    }
    Ok(n)
}
