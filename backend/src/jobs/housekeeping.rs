//! Housekeeping: prunes what would otherwise grow forever, each on its own retention (settings, documented in
//! DEPLOYMENT.md): finished job rows (`JOB_RETENTION_DAYS`) and the matching apalis data in Redis, ended
//! sessions, one-time tokens, sign-in challenges and email-change links (`SESSION_RETENTION_DAYS`), the audit
//! log (`AUDIT_RETENTION_DAYS`), failed sign-in records (`FAILED_SIGNIN_RETENTION_DAYS`), sent or failed
//! mail (`MAIL_RETENTION_DAYS`), and processed payment event ids and reconciliation runs
//! (`BILLING_EVENT_RETENTION_DAYS`, never under 35 days: Stripe lists and resends an event for 30).
//! The retention deletes are idempotent and run in bounded batches before the job's transaction; the job
//! row pruning and the `housekeeping_run` record (with every count) commit with the job's `done` mark.

use apalis_core::backend::Vacuum;
use apalis_redis::RedisStorage;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{DEFAULT_QUEUE, JobCtx, JobError, JobKind, JobMessage, QUEUES, Schedule};
use crate::Ctx;

pub const KIND: &str = "housekeeping";

/// Scheduled every `HOUSEKEEPING_INTERVAL_SECS` by the workers that serve the `default` queue.
pub const JOB: JobKind = JobKind {
    schedule: Some(Schedule {
        every: |s| s.jobs.housekeeping_interval,
        enqueue: |ctx| Box::pin(enqueue(ctx, None, true)),
        at_start: None,
    }),
    ..JobKind::new(KIND, DEFAULT_QUEUE, |job| Box::pin(run(job)))
};

/// Payload: how old a finished job must be to be pruned (default: `JOB_RETENTION_DAYS`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Housekeeping {
    #[serde(default)]
    pub retention_secs: Option<u64>,
}

/// Enqueues a housekeeping run. With `scheduled`, at most one is pending at a time.
///
/// # Errors
/// Database errors.
pub async fn enqueue(
    ctx: &Ctx,
    request_id: Option<String>,
    scheduled: bool,
) -> sqlx::Result<Option<Uuid>> {
    let mut job = ctx.jobs.new_job(
        DEFAULT_QUEUE,
        KIND,
        serde_json::to_value(Housekeeping::default()).unwrap_or_default(),
    );
    job.request_id = request_id;
    if scheduled {
        job.dedupe_key = Some("housekeeping:scheduled".into());
    }
    ctx.jobs.enqueue(&job).await
}

pub(crate) async fn run(job: &JobCtx) -> Result<(), JobError> {
    let payload: Housekeeping = job.payload()?;
    let retention = payload.retention_secs.map_or(
        job.ctx.settings.jobs.job_retention,
        std::time::Duration::from_secs,
    );

    let pruned_other = prune_retained(&job.ctx).await?;

    let mut tx = job.ctx.db.begin().await?;
    // Rows whose job failed (or vanished) before they were marked: each kind's sweep, before the job rows go.
    for sweep in super::registry::KINDS.iter().filter_map(|k| k.sweep) {
        sweep(&job.ctx, &mut tx).await?;
    }
    let pruned = sqlx::query!(
        r#"delete from job
           where status in ('done', 'failed', 'cancelled')
             and finished_at < now() - make_interval(secs => $1)
             and job_id <> $2"#,
        retention.as_secs_f64(),
        job.job.job_id,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let mut counts = serde_json::Map::new();
    counts.insert("jobs".into(), pruned.into());
    for (table, n) in &pruned_other {
        counts.insert((*table).into(), (*n).into());
    }
    sqlx::query!(
        "insert into housekeeping_run (job_id, jobs_pruned, pruned) values ($1, $2, $3)",
        job.job.job_id,
        i64::try_from(pruned).unwrap_or(i64::MAX),
        serde_json::Value::Object(counts.clone()),
    )
    .execute(&mut *tx)
    .await?;
    job.complete(tx).await?;
    tracing::info!(jobs_pruned = pruned, pruned = %serde_json::Value::Object(counts), "housekeeping pruned old rows");

    // Redis side: apalis keeps every finished task's data forever unless vacuumed. Idempotent, so it runs
    // after the commit; a failure here only delays the cleanup to the next run.
    match vacuum_redis(&job.ctx).await {
        Ok(n) => tracing::info!(tasks_vacuumed = n, "vacuumed finished tasks from Redis"),
        Err(e) => tracing::warn!(error = %e, "Redis vacuum skipped"),
    }
    Ok(())
}

async fn vacuum_redis(ctx: &Ctx) -> anyhow::Result<usize> {
    let conn = super::queue::connect(ctx.settings.redis_url.expose_secret()).await?;
    let mut total = 0;
    for queue in QUEUES {
        let config = ctx.jobs.apalis_config(queue);
        let done_set = config.done_jobs_set();
        let mut storage = RedisStorage::<JobMessage>::new(conn.clone()).with_config(config);
        total += storage.vacuum().await?;
        let mut c = conn.clone();
        let _: () = deadpool_redis::redis::cmd("DEL")
            .arg(done_set)
            .query_async(&mut c)
            .await?;
    }
    Ok(total)
}

/// Rows deleted per statement, so a first run over years of history never holds long locks.
const PRUNE_BATCH: i64 = 5_000;

/// Deletes, batch by batch, the rows past their retention. Returns how many were deleted per kind.
async fn prune_retained(ctx: &Ctx) -> Result<Vec<(&'static str, u64)>, JobError> {
    let jobs = &ctx.settings.jobs;
    let mut out = Vec::with_capacity(10);
    // One statement per kind, `$1` = retention in seconds and `$2` = batch size, repeated until a batch
    // deletes fewer rows than it may.
    macro_rules! prune {
        ($what:literal, $retention:expr, $sql:literal) => {{
            let mut total = 0u64;
            loop {
                let n = sqlx::query!($sql, $retention.as_secs_f64(), PRUNE_BATCH)
                    .execute(&ctx.db)
                    .await?
                    .rows_affected();
                total += n;
                if n < PRUNE_BATCH as u64 {
                    break;
                }
            }
            out.push(($what, total));
        }};
    }
    prune!(
        "sessions",
        jobs.session_retention,
        r#"delete from user_session where session_id in (
               select session_id from user_session
               where expires_at < now() - make_interval(secs => $1)
                  or revoked_at < now() - make_interval(secs => $1)
               limit $2)"#
    );
    prune!(
        "one_time_tokens",
        jobs.session_retention,
        r#"delete from user_token where token_hash in (
               select token_hash from user_token
               where expires_at < now() - make_interval(secs => $1)
                  or used_at < now() - make_interval(secs => $1)
               limit $2)"#
    );
    prune!(
        "signin_challenges",
        jobs.session_retention,
        r#"delete from signin_challenge where challenge_hash in (
               select challenge_hash from signin_challenge
               where expires_at < now() - make_interval(secs => $1)
                  or used_at < now() - make_interval(secs => $1)
               limit $2)"#
    );
    prune!(
        "email_changes",
        jobs.session_retention,
        r#"delete from email_change where token_hash in (
               select token_hash from email_change
               where expires_at < now() - make_interval(secs => $1)
                  or used_at < now() - make_interval(secs => $1)
               limit $2)"#
    );
    prune!(
        "failed_signins",
        jobs.failed_signin_retention,
        r#"delete from audit_event where audit_event_id in (
               select audit_event_id from audit_event
               where event = 'signin_failed' and created_at < now() - make_interval(secs => $1)
               limit $2)"#
    );
    // Password-check reservations: at least 30 days, the window in which a client counts as known to
    // an account (`auth::signin`), whatever FAILED_SIGNIN_RETENTION_DAYS says.
    prune!(
        "auth_attempts",
        jobs.failed_signin_retention,
        r#"delete from auth_attempt where auth_attempt_id in (
               select auth_attempt_id from auth_attempt
               where created_at < now() - greatest(make_interval(secs => $1), interval '30 days')
               limit $2)"#
    );
    prune!(
        "audit_events",
        jobs.audit_retention,
        r#"delete from audit_event where audit_event_id in (
               select audit_event_id from audit_event
               where created_at < now() - make_interval(secs => $1)
               limit $2)"#
    );
    prune!(
        "plan_overages",
        jobs.audit_retention,
        r#"delete from plan_overage where overage_id in (
               select overage_id from plan_overage
               where resolved_at < now() - make_interval(secs => $1)
               limit $2)"#
    );
    prune!(
        "emails",
        jobs.mail_retention,
        r#"delete from email_outbox where email_id in (
               select email_id from email_outbox
               where status in ('sent', 'failed') and updated_at < now() - make_interval(secs => $1)
               limit $2)"#
    );
    // Processed billing event ids: at least 35 days (settings refuse less), so an event the provider can still
    // list or resend (30 days) is always recognised as processed.
    prune!(
        "billing_events",
        ctx.settings.billing.event_retention,
        r#"delete from billing_event where event_id in (
               select event_id from billing_event
               where received_at < now() - make_interval(secs => $1)
               limit $2)"#
    );
    prune!(
        "billing_reconcile_runs",
        ctx.settings.billing.event_retention,
        r#"delete from billing_reconcile_run where run_id in (
               select run_id from billing_reconcile_run
               where started_at < now() - make_interval(secs => $1) and outcome <> 'running'
               limit $2)"#
    );
    Ok(out)
}
