//! The one list of every job kind. Features declare their [`JobKind`] next to their code; the worker and
//! housekeeping read this list, so the rest of the plumbing never names a feature.

use uuid::Uuid;

use super::{JobCtx, JobError, JobKind, housekeeping};
use crate::Ctx;

/// Every kind a worker can run.
pub static KINDS: &[JobKind] = &[
    housekeeping::JOB,
    crate::mail::delivery::JOB,
    crate::market::job_chunk::JOB,
    crate::market::job_update::JOB,
    crate::backtest::job::JOB,
    crate::backtest::job::TRACE_JOB,
    crate::notify::fanout::JOB,
    crate::notify::webhook::job::JOB,
    crate::notify::email::JOB,
    crate::notify::tick::JOB,
    crate::paper::advance::JOB,
    crate::paper::feed::TICK_JOB,
    crate::plans::overage::JOB,
    crate::billing::reconcile::JOB,
];

/// The kind called `kind`, if registered.
pub fn find(kind: &str) -> Option<&'static JobKind> {
    KINDS.iter().find(|k| k.kind == kind)
}

/// Runs the handler for the job's kind.
pub(crate) async fn dispatch(job: &JobCtx) -> Result<(), JobError> {
    match find(&job.job.kind) {
        Some(k) => (k.run)(job).await,
        None => Err(JobError::Permanent(format!(
            "unknown job kind `{}`",
            job.job.kind
        ))),
    }
}

/// Runs the `on_gave_up` hook of the job's kind once the job is `failed` (attempts spent), so what waits on
/// it does not stay `queued`/`running` forever. Errors are logged; housekeeping's sweep repeats the work.
pub async fn fail_dependents(ctx: &Ctx, job_id: Uuid) {
    let kind = sqlx::query_scalar!("select kind from job where job_id = $1", job_id)
        .fetch_optional(&ctx.db)
        .await;
    match kind {
        Ok(Some(kind)) => gave_up(ctx, &kind, job_id).await,
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, %job_id, "could not mark the job's dependents failed; housekeeping will");
        }
    }
}

/// Runs the `on_gave_up` hook of `kind` for `job_id`.
pub(crate) async fn gave_up(ctx: &Ctx, kind: &str, job_id: Uuid) {
    if let Some(hook) = find(kind).and_then(|k| k.on_gave_up) {
        hook(ctx, job_id).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::QUEUES;

    #[test]
    fn every_kind_is_registered_once_on_a_known_queue() {
        for (i, k) in KINDS.iter().enumerate() {
            assert!(
                QUEUES.contains(&k.queue),
                "{} uses unknown queue {}",
                k.kind,
                k.queue
            );
            assert!(
                KINDS[i + 1..].iter().all(|o| o.kind != k.kind),
                "{} registered twice",
                k.kind
            );
        }
        assert!(find("backtest").is_some_and(|k| k.on_gave_up.is_some() && k.sweep.is_some()));
        assert!(find("market_update").is_some_and(|k| k.schedule.is_some()));
        assert!(find("housekeeping").is_some_and(|k| k.schedule.is_some()));
        assert!(find("notify_fanout").is_some_and(|k| k.queue == crate::jobs::NOTIFY_QUEUE));
        assert!(
            find("notify_tick")
                .is_some_and(|k| k.schedule.is_some() && k.queue == crate::jobs::NOTIFY_QUEUE)
        );
        assert!(
            find("billing_reconcile")
                .is_some_and(|k| k.schedule.is_some() && k.queue == crate::jobs::DEFAULT_QUEUE)
        );
        assert!(find("nope").is_none());
    }
}
