//! The jobs view of the admin console and the `/ops` API (one backend for both): queue depths, running jobs
//! with their worker and lease, waiting and failed jobs, re-driving a failed job, cancelling a waiting one and
//! queueing a housekeeping run. Reads need [`Actor::admin`], changes [`Actor::admin_writer`] (the operator token of `/ops`
//! acts as the system actor); re-drives and cancels are audited.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    Actor, Ctx,
    error::{Error, Result},
    jobs::store::{self, JobRow},
};

/// The statuses a job can have.
pub const STATUSES: &[&str] = &["queued", "running", "done", "failed", "cancelled"];
/// Most jobs one list returns.
pub const MAX_LIST: i64 = 500;

/// One queue's depth.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QueueDepth {
    pub queue: String,
    /// Waiting and due now.
    pub queued: i64,
    /// Waiting for a later time (retries after a failure, scheduled work).
    pub scheduled: i64,
    pub running: i64,
    /// Gave up in the last 7 days.
    pub failed: i64,
}

/// A running job with the worker holding it.
#[derive(Debug, Clone, Serialize)]
pub struct Running {
    pub job_id: Uuid,
    pub queue: String,
    pub kind: String,
    pub worker: Option<String>,
    pub attempts: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub lease_until: Option<DateTime<Utc>>,
}

/// Everything the jobs page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub queues: Vec<QueueDepth>,
    pub running: Vec<Running>,
    /// The newest failed jobs (with their error).
    pub failed: Vec<JobRow>,
    /// Jobs waiting to run, soonest first (due now, or scheduled: retries after a failure, later work); these
    /// can be cancelled.
    pub waiting: Vec<JobRow>,
}

/// Queue depths, running jobs and the newest `failed_limit` failed jobs (admins only).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Invalid`] (`limit`), database.
pub async fn overview(actor: &Actor, ctx: &Ctx, failed_limit: i64) -> Result<Overview> {
    actor.admin()?;
    let failed_limit = bounded(failed_limit)?;
    let mut queues: Vec<QueueDepth> = sqlx::query_as!(
        QueueDepth,
        r#"select queue as "queue!",
                  count(*) filter (where status = 'queued' and run_at <= now()) as "queued!",
                  count(*) filter (where status = 'queued' and run_at > now()) as "scheduled!",
                  count(*) filter (where status = 'running') as "running!",
                  count(*) filter (where status = 'failed' and finished_at > now() - interval '7 days')
                    as "failed!"
           from job where status in ('queued', 'running', 'failed')
           group by queue order by queue"#,
    )
    .fetch_all(&ctx.db)
    .await?;
    for q in crate::jobs::QUEUES {
        if !queues.iter().any(|d| d.queue == *q) {
            queues.push(QueueDepth {
                queue: (*q).to_owned(),
                queued: 0,
                scheduled: 0,
                running: 0,
                failed: 0,
            });
        }
    }
    queues.sort_by(|a, b| a.queue.cmp(&b.queue));
    let running = sqlx::query_as!(
        Running,
        "select job_id, queue, kind, worker, attempts, started_at, lease_until from job
         where status = 'running' order by started_at limit 200",
    )
    .fetch_all(&ctx.db)
    .await?;
    let failed = store::list(&ctx.db, Some("failed"), failed_limit).await?;
    let waiting = store::waiting(&ctx.db, failed_limit).await?;
    Ok(Overview {
        queues,
        running,
        failed,
        waiting,
    })
}

fn bounded(limit: i64) -> Result<i64> {
    if (1..=MAX_LIST).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIST}"),
        ))
    }
}

/// The newest jobs, optionally of one status (admins and the operator).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Invalid`] (`status`, `limit`), database.
pub async fn list(
    actor: &Actor,
    ctx: &Ctx,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRow>> {
    actor.admin()?;
    if let Some(s) = status
        && !STATUSES.contains(&s)
    {
        return Err(Error::invalid(
            "status",
            format!(
                "`{}` is not one of queued, running, done, failed, cancelled",
                s.chars().take(20).collect::<String>()
            ),
        ));
    }
    Ok(store::list(&ctx.db, status, bounded(limit)?).await?)
}

/// One job (admins and the operator).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], database.
pub async fn get(actor: &Actor, ctx: &Ctx, job_id: Uuid) -> Result<JobRow> {
    actor.admin()?;
    store::get(&ctx.db, job_id).await?.ok_or(Error::NotFound)
}

/// Puts a failed or cancelled job back in its queue with a fresh attempt budget and pushes it; audited as
/// `job_retried`. Returns the queue.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], [`Error::Conflict`] (the job is
/// not failed or cancelled), database.
pub async fn retry(actor: &Actor, ctx: &Ctx, job_id: Uuid) -> Result<String> {
    actor.admin_writer()?;
    let redriven = match store::redrive(&ctx.db, job_id).await {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(Error::Conflict(
                "an unfinished job of the same kind and purpose exists (queued or running); this one is not needed"
                    .into(),
            ));
        }
        r => r?,
    };
    let Some(queue) = redriven else {
        return match store::get(&ctx.db, job_id).await? {
            None => Err(Error::NotFound),
            Some(j) => Err(Error::Conflict(format!(
                "job is {}; only failed or cancelled jobs can be retried",
                j.status
            ))),
        };
    };
    let mut conn = ctx.db.acquire().await?;
    actor
        .audit(
            &mut conn,
            super::event::JOB_RETRIED,
            None,
            json!({ "job_id": job_id, "queue": queue }),
        )
        .await?;
    drop(conn);
    ctx.jobs.push(&queue, job_id).await;
    tracing::info!(%job_id, "job re-driven");
    Ok(queue)
}

/// Cancels a job that waits to run (due now or scheduled for later) and, for a backtest job, its queued runs
/// (the trader sees them cancelled); audited as `job_cancelled` in the same transaction. A running job cannot be cancelled here (it finishes, fails or is cancelled by its owner, e.g.
/// a backtest's cancel button, which the worker checks); a cancelled job can be retried later. Returns the
/// queue.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], [`Error::Conflict`] (the job is
/// not waiting), database.
pub async fn cancel(actor: &Actor, ctx: &Ctx, job_id: Uuid) -> Result<String> {
    actor.admin_writer()?;
    let mut tx = ctx.db.begin().await?;
    let Some((queue, kind)) = store::cancel_waiting(&mut tx, job_id).await? else {
        drop(tx);
        return match store::get(&ctx.db, job_id).await? {
            None => Err(Error::NotFound),
            Some(j) => Err(Error::Conflict(format!(
                "job is {}; only waiting jobs can be cancelled{}",
                j.status,
                if j.status == "running" {
                    " (a running job finishes or fails by itself; a backtest is cancelled from its page)"
                } else {
                    ""
                }
            ))),
        };
    };
    // The work a job carries is cancelled with it: a backtest's queued runs show as cancelled.
    let runs = if kind == crate::backtest::job::KIND {
        crate::backtest::runs::cancel_for_job(&mut tx, job_id).await?
    } else {
        0
    };
    actor
        .audit(
            &mut tx,
            super::event::JOB_CANCELLED,
            None,
            json!({ "job_id": job_id, "queue": queue, "kind": kind, "backtests_cancelled": runs }),
        )
        .await?;
    tx.commit().await?;
    tracing::info!(%job_id, "job cancelled");
    Ok(queue)
}

/// Queues a housekeeping run now. Returns its job id.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Conflict`] (one is already pending), database.
pub async fn housekeeping(actor: &Actor, ctx: &Ctx) -> Result<Uuid> {
    actor.admin_writer()?;
    let id = crate::jobs::housekeeping::enqueue(ctx, actor.request_id.clone(), false)
        .await?
        .ok_or_else(|| Error::Conflict("a housekeeping job is already pending".into()))?;
    tracing::info!(job_id = %id, "housekeeping enqueued");
    Ok(id)
}
