//! Worker processes: supervised apalis workers, the reconciler that re-enqueues what Redis lost, and the
//! housekeeping schedule.
//!
//! Rules from RELIABILITY.md §1.4, all applied here:
//! * every apalis worker has a unique name (`{role}-{host}-{pid}-{random}`), new on every restart;
//! * heartbeat and orphan timeouts come from settings, never from apalis defaults;
//! * `worker.run()` returns `Err` when Redis drops, so each worker runs in a loop that rebuilds the connection
//!   with exponential back-off;
//! * on SIGTERM the workers stop taking jobs and finish the ones they run (bounded by a shutdown timeout;
//!   anything unfinished is re-run elsewhere when its lease expires).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use apalis::prelude::{
    BackendExt, BoxDynError, Data, WorkerBuilder, WorkerBuilderExt, WorkerContext,
};
use apalis_redis::RedisStorage;
use secrecy::ExposeSecret;
use tokio::sync::watch;
use tracing::Instrument;

use super::{JobCtx, JobError, JobMessage, QUEUES, store};
use crate::Ctx;

/// A unique worker name for this process and start.
pub fn worker_name(role: &str) -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "host".into());
    let rand = crate::settings::random_token(4);
    format!("{role}-{host}-{}-{rand}", std::process::id())
}

/// Shared by every task of one apalis worker.
#[derive(Clone)]
struct Runner {
    ctx: Ctx,
    queue: Arc<str>,
}

/// Runs every worker role until `shutdown` turns true. Returns once all of them stopped.
pub async fn run(ctx: Ctx, shutdown: watch::Receiver<bool>) {
    tracing::info!(queues = ?QUEUES, concurrency = ctx.settings.jobs.concurrency, "starting workers");
    let mut tasks = tokio::task::JoinSet::new();
    for queue in QUEUES {
        tasks.spawn(supervise(ctx.clone(), (*queue).into(), shutdown.clone()));
    }
    tasks.spawn(reconcile_loop(ctx.clone(), shutdown.clone()));
    tasks.spawn(schedule_loop(ctx.clone(), shutdown.clone()));
    tasks.spawn(market_schedule_loop(ctx.clone(), shutdown.clone()));
    while tasks.join_next().await.is_some() {}
    tracing::info!("workers stopped");
}

/// Keeps one apalis worker for `queue` running, rebuilding it with back-off whenever it fails.
async fn supervise(ctx: Ctx, queue: Arc<str>, mut shutdown: watch::Receiver<bool>) {
    const MAX_BACKOFF: Duration = Duration::from_secs(30);
    let mut backoff = Duration::from_millis(250);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let started = Instant::now();
        let result = run_once(&ctx, &queue, shutdown.clone()).await;
        if *shutdown.borrow_and_update() {
            return;
        }
        match result {
            Ok(()) => tracing::warn!(%queue, "worker stopped unexpectedly; restarting"),
            Err(e) => {
                metrics::counter!("worker_restarts_total", "queue" => queue.to_string())
                    .increment(1);
                tracing::warn!(%queue, error = %e, retry_in_ms = backoff.as_millis(), "worker failed; restarting")
            }
        }
        // A worker that ran for a while was healthy: start the back-off again from the bottom.
        if started.elapsed() > MAX_BACKOFF {
            backoff = Duration::from_millis(250);
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Connects, registers a freshly named worker and runs it until shutdown or failure.
async fn run_once(
    ctx: &Ctx,
    queue: &Arc<str>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let conn = tokio::time::timeout(
        Duration::from_secs(3),
        super::queue::connect(ctx.settings.redis_url.expose_secret()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("timed out connecting to Redis"))??;
    let storage = RedisStorage::<JobMessage>::new(conn).with_config(ctx.jobs.apalis_config(queue));
    requeue_unfinished(ctx, queue).await;
    let name = super::worker::worker_name(&format!("worker-{queue}"));
    tracing::info!(worker = %name, %queue, "worker connected");
    let worker = WorkerBuilder::new(name)
        .backend(storage.poll_with_interval(Duration::from_millis(200)))
        .enable_tracing()
        .concurrency(ctx.settings.jobs.concurrency)
        .data(Runner {
            ctx: ctx.clone(),
            queue: queue.clone(),
        })
        .build(handle);
    let mut stop = shutdown;
    let signal = async move {
        let _ = stop.wait_for(|s| *s).await;
        Ok::<(), std::io::Error>(())
    };
    worker
        .run_until(signal)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Pushes every unfinished job of `queue` again. Runs whenever a worker (re)connects, because Redis may have
/// restarted empty (it holds nothing that cannot be rebuilt from Postgres). Duplicates are harmless: only one
/// claim of a row succeeds.
async fn requeue_unfinished(ctx: &Ctx, queue: &str) {
    match store::unfinished(&ctx.db, queue).await {
        Ok(ids) => {
            if !ids.is_empty() {
                tracing::info!(
                    count = ids.len(),
                    queue,
                    "re-enqueueing unfinished jobs from Postgres"
                );
            }
            for id in ids {
                ctx.jobs.push(queue, id).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, queue, "re-enqueue skipped: database unavailable"),
    }
}

/// The apalis handler: claim the row, run the job under its lease, record the outcome.
async fn handle(
    msg: JobMessage,
    runner: Data<Runner>,
    wrk: WorkerContext,
) -> Result<(), BoxDynError> {
    let ctx = runner.ctx.clone();
    let worker = wrk.name().to_owned();
    let lease = ctx.settings.jobs.lease;
    let claim = store::claim(&ctx.db, msg.job_id, &worker, lease).await;
    let job = match claim {
        Ok(store::Claim::Run(job)) => job,
        Ok(store::Claim::Exhausted) => {
            // The last attempt's worker died: the row is failed now; so is what depends on it.
            super::fail_dependents(&ctx.db, msg.job_id).await;
            return Ok(());
        }
        Ok(other) => {
            // Duplicate or stale delivery: nothing to do (a live holder will finish; a dead one's lease
            // expires and the reconciler re-delivers).
            tracing::debug!(job_id = %msg.job_id, outcome = ?other, "job not claimed");
            return Ok(());
        }
        // Postgres unavailable: let apalis retry the delivery later.
        Err(e) => return Err(Box::new(e)),
    };
    let span = tracing::info_span!(
        "job",
        job_id = %job.job_id,
        kind = %job.kind,
        queue = %runner.queue,
        attempt = job.attempt,
        request_id = job.request_id.as_deref().unwrap_or(""),
        worker = %worker,
    );
    run_claimed(ctx, runner.queue.clone(), job, worker)
        .instrument(span)
        .await
}

async fn run_claimed(
    ctx: Ctx,
    queue: Arc<str>,
    job: store::ClaimedJob,
    worker: String,
) -> Result<(), BoxDynError> {
    let started = Instant::now();
    let kind = job.kind.clone();
    let job_id = job.job_id;
    tracing::info!("job started");

    // Renew the lease while the job runs; if it is lost, the job's final commit is refused anyway.
    let lease = ctx.settings.jobs.lease;
    let renewer = {
        let db = ctx.db.clone();
        let worker = worker.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(lease / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                match store::renew_lease(&db, job_id, &worker, lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(%job_id, "lease lost while running");
                        return;
                    }
                    Err(e) => tracing::warn!(%job_id, error = %e, "could not renew lease"),
                }
            }
        })
    };
    let jctx = JobCtx::new(ctx.clone(), job, worker.clone());
    let mut result = super::dispatch(&jctx).await;
    if result.is_ok() && !jctx.is_completed() {
        // The handler had no transactional effect of its own: mark it done now.
        result = match ctx.db.begin().await {
            Ok(tx) => jctx.complete(tx).await,
            Err(e) => Err(e.into()),
        };
    }
    renewer.abort();

    let secs = started.elapsed().as_secs_f64();
    let labels = [("queue", queue.to_string()), ("kind", kind.clone())];
    metrics::histogram!("job_duration_seconds", &labels).record(secs);
    let outcome = match &result {
        Ok(()) => "done",
        Err(JobError::LeaseLost) => "lease_lost",
        Err(_) => "error",
    };
    metrics::counter!("jobs_total", "queue" => queue.to_string(), "kind" => kind, "status" => outcome)
        .increment(1);

    match result {
        Ok(()) => {
            tracing::info!(
                duration_ms = started.elapsed().as_millis() as u64,
                "job done"
            );
            Ok(())
        }
        Err(JobError::LeaseLost) => {
            tracing::warn!("job finished after losing its lease; its work was discarded");
            Ok(())
        }
        Err(e) => {
            let permanent = matches!(e, JobError::Permanent(_));
            let message = format!("{e:#}");
            let status = store::record_failure(&ctx.db, job_id, &worker, &message, permanent).await;
            match status {
                Ok(Some(s)) if s == "failed" => {
                    tracing::error!(error = %message, "job failed permanently");
                    super::fail_dependents(&ctx.db, job_id).await;
                    Ok(())
                }
                Ok(_) => {
                    tracing::warn!(error = %message, "job attempt failed; will retry");
                    // apalis reschedules the delivery with back-off.
                    Err(message.into())
                }
                Err(db) => {
                    tracing::error!(error = %message, db_error = %db, "job failed and its outcome could not be stored");
                    Err(message.into())
                }
            }
        }
    }
}

/// Every `JOB_RECONCILE_SECS`, re-enqueues jobs that Postgres says are pending but that Redis does not deliver
/// (a crashed worker's expired lease, a push that failed). Connecting workers do a full pass, see
/// [`requeue_unfinished`].
async fn reconcile_loop(ctx: Ctx, mut shutdown: watch::Receiver<bool>) {
    let every = ctx.settings.jobs.reconcile_interval;
    // A queued job still waiting after this long has most likely been lost by Redis.
    let stale_after = (every * 4).max(Duration::from_secs(60));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        match store::take_stale(&ctx.db, stale_after, 500).await {
            Ok(jobs) => {
                for (id, queue) in jobs {
                    tracing::info!(job_id = %id, %queue, "re-enqueueing stale job");
                    metrics::counter!("jobs_reenqueued_total", "queue" => queue.clone())
                        .increment(1);
                    ctx.jobs.push(&queue, id).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "reconcile skipped: database unavailable"),
        }
    }
}

/// Enqueues the housekeeping job every `HOUSEKEEPING_INTERVAL_SECS` (deduplicated across workers).
async fn schedule_loop(ctx: Ctx, mut shutdown: watch::Receiver<bool>) {
    let every = ctx.settings.jobs.housekeeping_interval;
    if every.is_zero() {
        return;
    }
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        match super::housekeeping::enqueue(&ctx, None, true).await {
            Ok(Some(id)) => tracing::info!(job_id = %id, "scheduled housekeeping"),
            Ok(None) => tracing::debug!("housekeeping already pending"),
            Err(e) => tracing::warn!(error = %e, "could not schedule housekeeping"),
        }
    }
}

/// Enqueues the market-data update every `MARKET_UPDATE_INTERVAL_SECS` (deduplicated across workers).
async fn market_schedule_loop(ctx: Ctx, mut shutdown: watch::Receiver<bool>) {
    let every = ctx.settings.market.update_interval;
    if every.is_zero() {
        return;
    }
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        match super::market_update::enqueue(&ctx, true).await {
            Ok(Some(id)) => tracing::info!(job_id = %id, "scheduled market update"),
            Ok(None) => tracing::debug!("market update already pending"),
            Err(e) => tracing::warn!(error = %e, "could not schedule the market update"),
        }
    }
}
