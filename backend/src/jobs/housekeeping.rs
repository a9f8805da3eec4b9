//! Housekeeping: prunes finished job rows past their retention and the matching apalis data in Redis.
//! Its effect (rows pruned, recorded in `housekeeping_run`) commits in the same transaction as the job's `done`
//! mark, so it happens exactly once per job even if a worker is killed mid-run.

use apalis_core::backend::Vacuum;
use apalis_redis::RedisStorage;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{DEFAULT_QUEUE, JobCtx, JobError, JobMessage, QUEUES};
use crate::Ctx;

pub const KIND: &str = "housekeeping";

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

    let mut tx = job.ctx.db.begin().await?;
    // Runs whose job failed (or vanished) before they were marked: failed, before their job rows are pruned.
    sqlx::query(
        r#"update backtest_run r set status = 'failed', error = $1, finished_at = now()
           where r.status in ('queued', 'running')
             and not exists (select 1 from job j where j.job_id = r.job_id and j.status in ('queued', 'running', 'done'))"#,
    )
    .bind(super::FAILED_FOR_TRADER)
    .execute(&mut *tx)
    .await?;
    let pruned = sqlx::query(
        r#"delete from job
           where status in ('done', 'failed', 'cancelled')
             and finished_at < now() - make_interval(secs => $1)
             and job_id <> $2"#,
    )
    .bind(retention.as_secs_f64())
    .bind(job.job.job_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("insert into housekeeping_run (job_id, jobs_pruned) values ($1, $2)")
        .bind(job.job.job_id)
        .bind(i64::try_from(pruned).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    job.complete(tx).await?;
    tracing::info!(jobs_pruned = pruned, "housekeeping pruned finished jobs");

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
