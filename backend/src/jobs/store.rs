//! The `job` table: Postgres is the source of truth for every background job.
//!
//! Life of a job: `queued` → (claimed with a lease) `running` → `done` | `failed` | `cancelled`. A worker claims a
//! row only if it is queued, or running with an expired lease (its worker died). The handler commits its
//! effect and [`complete`] in one transaction, and `complete` only succeeds while the worker still holds the
//! lease, so a job's effect is committed once even when it is executed twice.
//!
//! Delivery and retries are scheduled here too: `run_at` is when a queued job is due (a failed attempt moves
//! it into the future by the kind's back-off), `pushed_at` when its id was last handed to Redis (NULL: not in
//! Redis). A job id is pushed only by whoever flips `pushed_at` from NULL ([`take_for_push`], [`take_due`]), so
//! many reconnecting workers deliver each job once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub request_id: Option<String>,
    /// At most one unfinished job per key (scheduled jobs use it so several schedulers don't pile up runs).
    pub dedupe_key: Option<String>,
    pub max_attempts: i32,
}

/// A job row as operators and the UI see it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct JobRow {
    pub job_id: Uuid,
    pub queue: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
    pub worker: Option<String>,
    pub request_id: Option<String>,
    pub enqueued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When the job is (or was) due: after a failed attempt, when the retry may run.
    pub run_at: DateTime<Utc>,
    /// When the job id was last pushed to Redis (`None`: not in Redis).
    pub pushed_at: Option<DateTime<Utc>>,
}

/// Inserts a queued job. Returns `None` when an unfinished job with the same dedupe key exists.
///
/// # Errors
/// Database errors.
pub async fn insert(
    conn: &mut PgConnection,
    job_id: Uuid,
    new: &NewJob,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        r#"insert into job (job_id, queue, kind, payload, request_id, dedupe_key, max_attempts)
           values ($1, $2, $3, $4, $5, $6, $7)
           on conflict (dedupe_key) where dedupe_key is not null and status in ('queued', 'running')
           do nothing
           returning job_id"#,
        job_id,
        &new.queue,
        &new.kind,
        &new.payload,
        new.request_id.as_deref(),
        new.dedupe_key.as_deref(),
        new.max_attempts,
    )
    .fetch_optional(conn)
    .await
}

/// The outcome of trying to claim a job for execution.
#[derive(Debug)]
pub enum Claim {
    /// This worker now holds the lease; run the job.
    Run(ClaimedJob),
    /// Done, failed or cancelled already (a duplicate delivery): acknowledge and do nothing.
    Finished,
    /// Another live worker holds the lease: try again later.
    HeldElsewhere,
    /// Queued, but its retry is not due yet (a stale delivery): the reconciler pushes it at `run_at`.
    NotDue,
    /// No such job row (e.g. pruned): acknowledge and do nothing.
    Missing,
    /// The attempt budget is spent; the row is now `failed`.
    Exhausted,
}

/// A job this worker holds.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub job_id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    pub attempt: i32,
    pub max_attempts: i32,
    pub request_id: Option<String>,
}

fn interval(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Claims `job_id` for `worker` with a lease of `lease`.
///
/// # Errors
/// Database errors.
pub async fn claim(
    pool: &PgPool,
    job_id: Uuid,
    worker: &str,
    lease: Duration,
) -> sqlx::Result<Claim> {
    let claimed = sqlx::query!(
        r#"update job
           set status = 'running', attempts = attempts + 1, worker = $2,
               lease_until = now() + make_interval(secs => $3),
               started_at = coalesce(started_at, now())
           where job_id = $1
             and attempts < max_attempts
             and ((status = 'queued' and run_at <= now()) or (status = 'running' and lease_until < now()))
           returning kind, payload, attempts, max_attempts, request_id"#,
        job_id,
        worker,
        interval(lease),
    )
    .fetch_optional(pool)
    .await?;
    if let Some(r) = claimed {
        return Ok(Claim::Run(ClaimedJob {
            job_id,
            kind: r.kind,
            payload: r.payload,
            attempt: r.attempts,
            max_attempts: r.max_attempts,
            request_id: r.request_id,
        }));
    }
    // Comparisons of not-null columns (and a coalesce to false): never null.
    let row = sqlx::query!(
        r#"select status, coalesce(lease_until > now(), false) as "held!",
                  attempts >= max_attempts as "spent!", run_at > now() as "not_due!"
           from job where job_id = $1"#,
        job_id,
    )
    .fetch_optional(pool)
    .await?;
    Ok(match row.map(|r| (r.status, r.held, r.spent, r.not_due)) {
        None => Claim::Missing,
        Some((status, _, _, _)) if matches!(status.as_str(), "done" | "failed" | "cancelled") => {
            Claim::Finished
        }
        Some((_, true, _, _)) => Claim::HeldElsewhere,
        Some((status, _, false, true)) if status == "queued" => Claim::NotDue,
        Some((_, _, true, _)) => {
            sqlx::query!(
                r#"update job set status = 'failed', finished_at = now(), lease_until = null,
                       last_error = coalesce(last_error, 'worker lost') || ' (gave up after ' || attempts || ' attempts)'
                   where job_id = $1 and status in ('queued', 'running')"#,
                job_id,
            )
            .execute(pool)
            .await?;
            Claim::Exhausted
        }
        // Queued/running but not claimable for a reason that changed between the two queries: retry later.
        Some(_) => Claim::HeldElsewhere,
    })
}

/// Extends the lease while the job runs. Returns false when the worker no longer holds the job.
///
/// # Errors
/// Database errors.
pub async fn renew_lease(
    pool: &PgPool,
    job_id: Uuid,
    worker: &str,
    lease: Duration,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        r#"update job set lease_until = now() + make_interval(secs => $3)
           where job_id = $1 and worker = $2 and status = 'running'"#,
        job_id,
        worker,
        interval(lease),
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks the job done, inside the transaction that commits its effect. Returns false (and the caller must
/// roll back) when this worker no longer holds the job.
///
/// # Errors
/// Database errors.
pub async fn complete(conn: &mut PgConnection, job_id: Uuid, worker: &str) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        r#"update job set status = 'done', finished_at = now(), lease_until = null, last_error = null
           where job_id = $1 and worker = $2 and status = 'running'"#,
        job_id,
        worker,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failed attempt: back to `queued`, due again after `retry_in` (and out of Redis until then), or
/// `failed` when attempts are spent (or the error is permanent). Returns the new status.
///
/// # Errors
/// Database errors.
pub async fn record_failure(
    pool: &PgPool,
    job_id: Uuid,
    worker: &str,
    error: &str,
    permanent: bool,
    retry_in: Duration,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        r#"update job
           set status = case when $4 or attempts >= max_attempts then 'failed' else 'queued' end,
               finished_at = case when $4 or attempts >= max_attempts then now() end,
               run_at = now() + make_interval(secs => $5),
               pushed_at = null,
               last_error = left($3, 4000), lease_until = null
           where job_id = $1 and worker = $2 and status = 'running'
           returning status"#,
        job_id,
        worker,
        error,
        permanent,
        interval(retry_in),
    )
    .fetch_optional(pool)
    .await
}

/// Puts a running job back in the queue for `run_in` without spending an attempt (a local rate limit said
/// "later"). Returns false when this worker no longer holds the job.
///
/// # Errors
/// Database errors.
pub async fn defer(
    pool: &PgPool,
    job_id: Uuid,
    worker: &str,
    run_in: Duration,
) -> sqlx::Result<bool> {
    let n = sqlx::query!(
        r#"update job
           set status = 'queued', attempts = greatest(attempts - 1, 0), worker = null, lease_until = null,
               run_at = now() + make_interval(secs => $3), pushed_at = null
           where job_id = $1 and worker = $2 and status = 'running'"#,
        job_id,
        worker,
        interval(run_in),
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Takes the right to push `job_id` to Redis now: succeeds (returning its queue) only if the job is due and not
/// in Redis (`pushed_at` NULL), or running under an expired lease and not re-pushed since. Marks it pushed.
///
/// # Errors
/// Database errors.
pub async fn take_for_push(pool: &PgPool, job_id: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        r#"update job set pushed_at = now()
           where job_id = $1
             and ((status = 'queued' and run_at <= now() and pushed_at is null)
               or (status = 'running' and lease_until < now()
                   and (pushed_at is null or pushed_at < lease_until)))
           returning queue"#,
        job_id,
    )
    .fetch_optional(pool)
    .await
}

/// Undoes [`take_for_push`] after the push to Redis failed, so the next reconciler pass tries again.
///
/// # Errors
/// Database errors.
pub async fn untake(pool: &PgPool, job_ids: &[Uuid]) -> sqlx::Result<()> {
    sqlx::query!(
        "update job set pushed_at = null where job_id = any($1) and status in ('queued', 'running')",
        job_ids,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Jobs of `queues` that must be pushed now, marked pushed: queued ones that are due and not in Redis (new,
/// a retry whose back-off elapsed, a push that failed), and running ones whose lease expired (their worker
/// died) that were not re-pushed since. `for update skip locked` and the `pushed_at` condition make
/// concurrent reconcilers take disjoint sets, so each job is pushed once. Returns `(job_id, queue)`.
///
/// # Errors
/// Database errors.
pub async fn take_due(
    pool: &PgPool,
    queues: &[String],
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, String)>> {
    let rows = sqlx::query!(
        r#"update job set pushed_at = now()
           where job_id in (
               select job_id from job
               where queue = any($1)
                 and ((status = 'queued' and run_at <= now() and pushed_at is null)
                   or (status = 'running' and lease_until < now()
                       and (pushed_at is null or pushed_at < lease_until)))
               order by run_at
               limit $2
               for update skip locked)
           returning job_id, queue"#,
        queues,
        limit,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.job_id, r.queue)).collect())
}

/// Queued jobs of `queue` pushed before `before` that Redis no longer holds (the caller saw the queue's task
/// data missing: Redis restarted empty or was flushed). Marks them pushed again and returns their ids.
///
/// # Errors
/// Database errors.
pub async fn take_lost(
    pool: &PgPool,
    queue: &str,
    before: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"update job set pushed_at = now()
           where job_id in (
               select job_id from job
               where queue = $1 and status = 'queued' and pushed_at < $2
               order by run_at
               limit $3
               for update skip locked)
           returning job_id"#,
        queue,
        before,
        limit,
    )
    .fetch_all(pool)
    .await
}

/// Whether a queued job of `queue` was pushed at or after `since` (a push that may still be on its way).
///
/// # Errors
/// Database errors.
pub async fn pushed_since(pool: &PgPool, queue: &str, since: DateTime<Utc>) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"select exists (select 1 from job where queue = $1 and status = 'queued' and pushed_at >= $2)
                  as "pushed!""#,
        queue,
        since,
    )
    .fetch_one(pool)
    .await
}

/// Earliest moment a job of `queues` needs pushing (a retry's `run_at`, a lease's end), for the reconciler's
/// sleep. `None` when nothing waits.
///
/// # Errors
/// Database errors.
pub async fn next_due_in(pool: &PgPool, queues: &[String]) -> sqlx::Result<Option<Duration>> {
    let secs: Option<f64> = sqlx::query_scalar!(
        r#"select extract(epoch from (least(
               (select min(run_at) from job
                where status = 'queued' and pushed_at is null and queue = any($1)),
               (select min(lease_until) from job
                where status = 'running' and queue = any($1)
                  and (pushed_at is null or pushed_at < lease_until))) - now()))::float8"#,
        queues,
    )
    .fetch_one(pool)
    .await?;
    Ok(secs.map(|s| Duration::from_secs_f64(s.max(0.0))))
}

/// Queued jobs of `queue` that were pushed more than `stale_after` ago and are still not claimed. The caller
/// calls this only when the queue's Redis list is empty (so they are not simply waiting behind a backlog):
/// their delivery was lost. Marks them pushed again and returns their ids.
///
/// # Errors
/// Database errors.
pub async fn take_stale(
    pool: &PgPool,
    queue: &str,
    stale_after: Duration,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"update job set pushed_at = now()
           where job_id in (
               select job_id from job
               where queue = $1 and status = 'queued' and run_at <= now()
                 and pushed_at < now() - make_interval(secs => $2)
               order by run_at
               limit $3
               for update skip locked)
           returning job_id"#,
        queue,
        interval(stale_after),
        limit,
    )
    .fetch_all(pool)
    .await
}

/// Puts a failed (or cancelled) job back in the queue with a fresh attempt budget. Returns its queue.
///
/// # Errors
/// Database errors.
pub async fn redrive(pool: &PgPool, job_id: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        r#"update job set status = 'queued', attempts = 0, finished_at = null, worker = null,
               lease_until = null, enqueued_at = now(), run_at = now(), pushed_at = null
           where job_id = $1 and status in ('failed', 'cancelled')
           returning queue"#,
        job_id,
    )
    .fetch_optional(pool)
    .await
}

/// Cancels a job that waits to run. Returns its queue and kind, or `None` when it is not waiting (or not
/// there).
///
/// # Errors
/// Database errors.
pub async fn cancel_waiting(
    conn: &mut PgConnection,
    job_id: Uuid,
) -> sqlx::Result<Option<(String, String)>> {
    Ok(sqlx::query!(
        r#"update job set status = 'cancelled', finished_at = now(), pushed_at = null
           where job_id = $1 and status = 'queued'
           returning queue, kind"#,
        job_id,
    )
    .fetch_optional(conn)
    .await?
    .map(|r| (r.queue, r.kind)))
}

/// Jobs waiting to run, soonest first, at most `limit`.
///
/// # Errors
/// Database errors.
pub async fn waiting(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<JobRow>> {
    sqlx::query_as!(
        JobRow,
        r#"select job_id, queue, kind, payload, status, attempts, max_attempts, last_error, worker, request_id,
                  enqueued_at, started_at, finished_at, run_at, pushed_at
           from job where status = 'queued' order by run_at, enqueued_at limit $1"#,
        limit,
    )
    .fetch_all(pool)
    .await
}

/// One job.
///
/// # Errors
/// Database errors.
pub async fn get(pool: &PgPool, job_id: Uuid) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as!(
        JobRow,
        r#"select job_id, queue, kind, payload, status, attempts, max_attempts, last_error, worker, request_id,
                  enqueued_at, started_at, finished_at, run_at, pushed_at
           from job where job_id = $1"#,
        job_id,
    )
    .fetch_optional(pool)
    .await
}

/// The most recent jobs, optionally with one status.
///
/// # Errors
/// Database errors.
pub async fn list(pool: &PgPool, status: Option<&str>, limit: i64) -> sqlx::Result<Vec<JobRow>> {
    sqlx::query_as!(
        JobRow,
        r#"select job_id, queue, kind, payload, status, attempts, max_attempts, last_error, worker, request_id,
                  enqueued_at, started_at, finished_at, run_at, pushed_at
           from job where ($1::text is null or status = $1)
           order by enqueued_at desc limit $2"#,
        status,
        limit,
    )
    .fetch_all(pool)
    .await
}

/// Job counts by state.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    pub queued: i64,
    pub running: i64,
    pub failed: i64,
}

/// Counts jobs by state (for the status page and metrics).
///
/// # Errors
/// Database errors.
pub async fn counts(pool: &PgPool) -> sqlx::Result<Counts> {
    sqlx::query_as!(
        Counts,
        r#"select count(*) filter (where status = 'queued') as "queued!",
                  count(*) filter (where status = 'running') as "running!",
                  count(*) filter (where status = 'failed') as "failed!"
           from job"#,
    )
    .fetch_one(pool)
    .await
}
