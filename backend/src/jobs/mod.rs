//! Background jobs: Postgres holds each job's truth, apalis on Redis delivers job ids to workers.
//!
//! Why both (RELIABILITY.md §1.4): apalis-redis delivers at least once and loses queued work when Redis
//! restarts without persistence. So a job is first a row in `job` (see [`store`]); Redis carries only its id.
//! Workers claim the row with a lease, and a handler commits its effect together with marking the row done,
//! so a job that is delivered twice, or re-run after its worker was killed, takes effect exactly once. Rows that
//! Redis lost are re-enqueued at worker start and periodically ([`worker`]).
//!
//! Adding a job: a module with `pub const KIND`, a payload type and `async fn run(job: &JobCtx) -> Result<(),
//! JobError>`, plus one arm in [`dispatch`].

pub mod backtest;
pub mod housekeeping;
pub mod market_chunk;
pub mod market_update;
pub mod queue;
pub mod send_email;
pub mod store;
pub mod worker;

use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::{Postgres, Transaction};

pub use queue::{JobMessage, JobQueue};
pub use store::{ClaimedJob, NewJob};

use crate::Ctx;

/// The queue for short operational jobs (housekeeping).
pub const DEFAULT_QUEUE: &str = "default";

/// The queue for outgoing email (kept apart so mail never waits behind ETL or backtests).
pub const MAIL_QUEUE: &str = "mail";

/// The queue for market-data ETL (network-bound chunks, kept apart from short operational jobs).
pub const MARKET_QUEUE: &str = "market";

/// Every queue; a worker process serves all of them unless `vortex worker --queues` names some.
pub const QUEUES: &[&str] = &[DEFAULT_QUEUE, MAIL_QUEUE, MARKET_QUEUE, backtest::QUEUE];

/// How a job attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Retrying cannot help (bad payload, missing data): the job is marked failed at once.
    #[error("{0}")]
    Permanent(String),
    /// Possibly transient (database or network trouble): retried with back-off until attempts run out.
    #[error(transparent)]
    Retry(#[from] anyhow::Error),
    /// Another worker took the job over (this worker's lease expired); this attempt's work is discarded.
    #[error("lease lost: another worker owns this job now")]
    LeaseLost,
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        Self::Retry(anyhow::Error::new(e))
    }
}

/// What a running job can see: the shared context, its claimed row and the worker's name.
pub struct JobCtx {
    pub ctx: Ctx,
    pub job: ClaimedJob,
    pub worker: String,
    completed: AtomicBool,
}

impl JobCtx {
    pub(crate) fn new(ctx: Ctx, job: ClaimedJob, worker: String) -> Self {
        Self {
            ctx,
            job,
            worker,
            completed: AtomicBool::new(false),
        }
    }

    /// Marks the job done inside `tx` (which holds the job's effect) and commits. If this worker lost the job
    /// to another one in the meantime, rolls back instead, so the effect is never committed twice.
    ///
    /// # Errors
    /// [`JobError::LeaseLost`] or a database error.
    pub async fn complete(&self, mut tx: Transaction<'static, Postgres>) -> Result<(), JobError> {
        if store::complete(&mut tx, self.job.job_id, &self.worker).await? {
            tx.commit().await?;
            self.completed.store(true, Ordering::SeqCst);
            Ok(())
        } else {
            tx.rollback().await?;
            Err(JobError::LeaseLost)
        }
    }

    pub(crate) fn is_completed(&self) -> bool {
        self.completed.load(Ordering::SeqCst)
    }

    /// Decodes the payload.
    ///
    /// # Errors
    /// [`JobError::Permanent`] when the payload does not match the job's type.
    pub fn payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_value(self.job.payload.clone())
            .map_err(|e| JobError::Permanent(format!("invalid payload for {}: {e}", self.job.kind)))
    }
}

/// What a trader sees when a job behind their row ran out of attempts (the cause is in the logs and on the
/// job row for operators, never shown to traders).
pub const FAILED_FOR_TRADER: &str = "the worker could not finish this run: an infrastructure error repeated on every \
     attempt (it has been logged). Run it again; if it keeps failing, tell your operator.";

/// Marks the rows that wait on a job failed once the job itself is `failed` (attempts spent), so they do not
/// stay `queued`/`running` forever. Today: backtest runs. Errors are logged; housekeeping repeats the sweep.
pub async fn fail_dependents(db: &sqlx::PgPool, job_id: uuid::Uuid) {
    let r = sqlx::query(
        r#"update backtest_run set status = 'failed', error = $2, finished_at = now()
           where job_id = $1 and status in ('queued', 'running')"#,
    )
    .bind(job_id)
    .bind(FAILED_FOR_TRADER)
    .execute(db)
    .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, %job_id, "could not mark the job's dependents failed; housekeeping will");
    }
}

/// Runs the handler for the job's kind.
pub(crate) async fn dispatch(job: &JobCtx) -> Result<(), JobError> {
    match job.job.kind.as_str() {
        housekeeping::KIND => housekeeping::run(job).await,
        send_email::KIND => send_email::run(job).await,
        market_chunk::KIND => market_chunk::run(job).await,
        market_update::KIND => market_update::run(job).await,
        backtest::KIND => backtest::run(job).await,
        crate::backtest::trace::KIND => crate::backtest::trace::run_job(job).await,
        other => Err(JobError::Permanent(format!("unknown job kind `{other}`"))),
    }
}
