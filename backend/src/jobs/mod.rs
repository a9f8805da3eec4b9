//! Background jobs: Postgres holds each job's truth, apalis on Redis delivers job ids to workers.
//!
//! Why both: apalis-redis delivers at least once and loses queued work when Redis
//! restarts without persistence. So a job is first a row in `job` (see [`store`]); Redis carries only its id.
//! Workers claim the row with a lease, and a handler commits its effect together with marking the row done,
//! so a job that is delivered twice, or re-run after its worker was killed, takes effect exactly once. Rows that
//! Redis lost are re-enqueued at worker start and periodically ([`worker`]).
//!
//! This module is plumbing and knows no feature: each feature owns its job (`backtest::job`,
//! `mail::delivery`, `market::job_chunk`, `market::job_update`) and describes it with a [`JobKind`] (how to
//! run it, and hooks for what the plumbing cannot know: the rows that wait on a job that gave up, orphans to
//! sweep, a schedule). [`registry`] is the one place every kind is listed; only the worker and housekeeping
//! read it. See docs/architecture.md, "Jobs".
//!
//! Adding a job: in the feature, `pub const KIND`, a payload type, `async fn run(job: &JobCtx) -> Result<(),
//! JobError>` and a `pub const JOB: JobKind`; then one line in [`registry::KINDS`].

pub mod housekeeping;
pub mod queue;
pub mod registry;
pub mod store;
pub mod worker;

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use futures::future::BoxFuture;
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

pub use queue::{JobMessage, JobQueue};
pub use store::{ClaimedJob, NewJob};

use crate::{Ctx, settings::Settings};

/// The queue for short operational jobs (housekeeping).
pub const DEFAULT_QUEUE: &str = "default";

/// The queue for outgoing email (kept apart so mail never waits behind ETL or backtests).
pub const MAIL_QUEUE: &str = "mail";

/// The queue for market-data ETL (network-bound chunks, kept apart from short operational jobs).
pub const MARKET_QUEUE: &str = "market";

/// The queue for backtests, so a burst of long runs never delays mail or housekeeping.
pub const BACKTEST_QUEUE: &str = "backtest";

/// The queue for notifications (fan-out, and later the tick and webhooks), so a burst of events never waits
/// behind backtests or delays account mail.
pub const NOTIFY_QUEUE: &str = "notify";

/// The queue for paper trading (advancing runs on new candles), kept apart so a long backtest never delays a
/// live run's next decision.
pub const PAPER_QUEUE: &str = "paper";

/// Every queue; a worker process serves all of them unless `vortex worker --queues` names some.
pub const QUEUES: &[&str] = &[
    DEFAULT_QUEUE,
    MAIL_QUEUE,
    MARKET_QUEUE,
    BACKTEST_QUEUE,
    NOTIFY_QUEUE,
    PAPER_QUEUE,
];

/// Runs one attempt of a job.
pub type RunFn = for<'a> fn(&'a JobCtx) -> BoxFuture<'a, Result<(), JobError>>;

/// Called once a job of this kind gave up (attempts spent, or a permanent error), with its id: marks what
/// waits on the job failed so it does not stay `queued`/`running` forever. Errors are the hook's to log;
/// the `sweep` hook (run by housekeeping) is the backstop.
pub type GaveUpFn = for<'a> fn(&'a Ctx, Uuid) -> BoxFuture<'a, ()>;

/// Run by housekeeping inside its transaction, before old job rows are pruned: marks rows whose job failed
/// or vanished without the `on_gave_up` hook having run. Returns how many rows it changed. Jobs it inserts
/// (e.g. a notification's fan-out) are pushed by the reconciler.
pub type SweepFn = for<'a> fn(&'a Ctx, &'a mut PgConnection) -> BoxFuture<'a, sqlx::Result<u64>>;

/// Enqueues a scheduled run (deduplicated: at most one pending). `Ok(None)` when one is already pending.
pub type EnqueueFn = for<'a> fn(&'a Ctx) -> BoxFuture<'a, sqlx::Result<Option<Uuid>>>;

/// A job that a worker serving its queue enqueues periodically.
#[derive(Clone, Copy)]
pub struct Schedule {
    /// How often (zero: never), read from settings.
    pub every: fn(&Settings) -> Duration,
    pub enqueue: EnqueueFn,
    /// Run once when the worker starts, before the first period (e.g. exporting a gauge the alerts read,
    /// which a restarted process would otherwise lack for a whole period).
    pub at_start: Option<StartFn>,
}

/// A schedule's start-up step ([`Schedule::at_start`]).
pub type StartFn = for<'a> fn(&'a Ctx) -> BoxFuture<'a, ()>;

/// One kind of job: what the plumbing needs to run it and to clean up after it. Each feature declares its
/// own; [`registry::KINDS`] lists them all.
#[derive(Clone, Copy)]
pub struct JobKind {
    /// The `job.kind` column.
    pub kind: &'static str,
    /// The queue its jobs are pushed to (one of [`QUEUES`]).
    pub queue: &'static str,
    pub run: RunFn,
    pub on_gave_up: Option<GaveUpFn>,
    pub sweep: Option<SweepFn>,
    pub schedule: Option<Schedule>,
}

impl JobKind {
    /// A kind with no hooks and no schedule.
    pub const fn new(kind: &'static str, queue: &'static str, run: RunFn) -> Self {
        Self {
            kind,
            queue,
            run,
            on_gave_up: None,
            sweep: None,
            schedule: None,
        }
    }
}

/// How a job attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Retrying cannot help (bad payload, missing data): the job is marked failed at once.
    #[error("{0}")]
    Permanent(String),
    /// Possibly transient (database or network trouble): retried with back-off until attempts run out.
    #[error(transparent)]
    Retry(#[from] anyhow::Error),
    /// Possibly transient, and the other side said when to come back (HTTP 429 `Retry-After`): retried after
    /// the longer of that and the policy's back-off, at most an hour.
    #[error("{1:#}")]
    RetryAfter(std::time::Duration, anyhow::Error),
    /// Not now, and not a failure: a local limit (a destination's rate window) says to come back after this
    /// long. The attempt is given back (it does not count against `max_attempts`).
    #[error("deferred for {0:?}")]
    Defer(std::time::Duration),
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

    /// As [`JobCtx::complete`], and in the same transaction enqueues `next` (a follow-up such as the rest of
    /// a long series): a worker killed after the commit cannot lose it, and `next` may share this job's
    /// dedupe key (this one is already done when it is inserted). `next` is pushed after the commit.
    ///
    /// # Errors
    /// [`JobError::LeaseLost`] or a database error.
    pub async fn complete_with_followup(
        &self,
        mut tx: Transaction<'static, Postgres>,
        next: Option<&NewJob>,
    ) -> Result<(), JobError> {
        if !store::complete(&mut tx, self.job.job_id, &self.worker).await? {
            tx.rollback().await?;
            return Err(JobError::LeaseLost);
        }
        let id = match next {
            Some(next) => self.ctx.jobs.insert(&mut tx, next).await?,
            None => None,
        };
        tx.commit().await?;
        self.completed.store(true, Ordering::SeqCst);
        if let (Some(next), Some(id)) = (next, id) {
            self.ctx.jobs.push(&next.queue, id).await;
        }
        Ok(())
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
