//! Worker processes: supervised apalis workers for the queues a process serves (`vortex worker --queues`), the
//! reconciler that pushes due jobs to Redis (retries after their back-off, expired leases, lost deliveries),
//! and the housekeeping and market-update schedules.
//!
//! Retries never use apalis' own schedule: a failed attempt acknowledges the delivery and records the next
//! `run_at` (the kind's exponential back-off with jitter) in Postgres; the reconciler pushes the job when due.
//!
//! The rules (see docs/architecture.md, "Jobs"), all applied here:
//! * every apalis worker has a unique name (`{role}-{host}-{pid}-{random}`), new on every restart;
//! * heartbeat and orphan timeouts come from settings, never from apalis defaults;
//! * `worker.run()` returns `Err` when Redis drops, so each worker runs in a loop that rebuilds the connection
//!   with exponential back-off;
//! * on SIGTERM the workers stop taking jobs and finish the ones they run (bounded by a shutdown timeout;
//!   anything unfinished is re-run elsewhere when its lease expires);
//! * a (re)connecting worker does not re-push every unfinished job (N workers restarting would deliver each
//!   job N times); the reconciler pushes only what Postgres says is not in Redis (`job.pushed_at`).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use apalis::prelude::{BoxDynError, Data, WorkerBuilder, WorkerBuilderExt, WorkerContext};
use apalis_core::backend::ext::poll_strategy::{PollWith, Strategy, StreamStrategy};
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

/// One queue a worker process serves and how many of its jobs it runs at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: String,
    pub concurrency: usize,
}

/// Parses `--queues`: `backtest=2,mail=4,market` (a queue without `=n` gets `default_concurrency`).
///
/// # Errors
/// Unknown queue names, duplicate queues, or a concurrency outside 1..=256.
pub fn parse_queues(spec: &str, default_concurrency: usize) -> Result<Vec<QueueSpec>, String> {
    let mut out: Vec<QueueSpec> = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, concurrency) = match item.split_once('=') {
            Some((n, c)) => {
                let c = c
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|c| (1..=256).contains(c))
                    .ok_or_else(|| {
                        format!("`{item}`: concurrency must be a number from 1 to 256")
                    })?;
                (n.trim(), c)
            }
            None => (item, default_concurrency),
        };
        if !QUEUES.contains(&name) {
            return Err(format!(
                "unknown queue `{name}` (queues: {})",
                QUEUES.join(", ")
            ));
        }
        if out.iter().any(|q| q.name == name) {
            return Err(format!("queue `{name}` is named twice"));
        }
        out.push(QueueSpec {
            name: name.to_owned(),
            concurrency,
        });
    }
    if out.is_empty() {
        return Err("name at least one queue".into());
    }
    Ok(out)
}

/// Every queue, each with `WORKER_CONCURRENCY`.
pub fn all_queues(ctx: &Ctx) -> Vec<QueueSpec> {
    QUEUES
        .iter()
        .map(|q| QueueSpec {
            name: (*q).to_owned(),
            concurrency: ctx.settings.jobs.concurrency,
        })
        .collect()
}

/// Shared by every task of one apalis worker.
#[derive(Clone)]
struct Runner {
    ctx: Ctx,
    queue: Arc<str>,
}

/// Runs workers for every queue until `shutdown` turns true. Returns once all of them stopped.
pub async fn run(ctx: Ctx, shutdown: watch::Receiver<bool>) {
    let queues = all_queues(&ctx);
    run_queues(ctx, queues, shutdown).await;
}

/// Runs workers for `queues` (with their concurrency), the reconciler for those queues, and the schedules
/// that belong to them (housekeeping with `default`, the market update with `market`), until `shutdown`.
pub async fn run_queues(ctx: Ctx, queues: Vec<QueueSpec>, shutdown: watch::Receiver<bool>) {
    crate::telemetry::start_upkeep();
    tracing::info!(queues = ?queues, "starting workers");
    let mut tasks = tokio::task::JoinSet::new();
    for q in &queues {
        tasks.spawn(supervise(
            ctx.clone(),
            q.name.as_str().into(),
            q.concurrency,
            shutdown.clone(),
        ));
    }
    let names: Vec<String> = queues.iter().map(|q| q.name.clone()).collect();
    for kind in super::registry::KINDS {
        if let Some(schedule) = kind.schedule
            && names.iter().any(|q| q == kind.queue)
        {
            tasks.spawn(schedule_loop(
                ctx.clone(),
                kind.kind,
                schedule,
                shutdown.clone(),
            ));
        }
    }
    tasks.spawn(reconcile_loop(ctx.clone(), names, shutdown.clone()));
    while tasks.join_next().await.is_some() {}
    tracing::info!("workers stopped");
}

/// Keeps one apalis worker for `queue` running, rebuilding it with back-off whenever it fails.
async fn supervise(
    ctx: Ctx,
    queue: Arc<str>,
    concurrency: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    const MAX_BACKOFF: Duration = Duration::from_secs(30);
    let mut backoff = Duration::from_millis(250);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let started = Instant::now();
        let result = run_once(&ctx, &queue, concurrency, shutdown.clone()).await;
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
    concurrency: usize,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let conn = tokio::time::timeout(
        Duration::from_secs(3),
        super::queue::connect(ctx.settings.redis_url.expose_secret()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("timed out connecting to Redis"))??;
    let storage = RedisStorage::<JobMessage>::new(conn)
        .with_config(ctx.jobs.apalis_config_for(queue, concurrency));
    // Not a re-push of every unfinished job (that multiplied deliveries on every reconnect): the reconciler
    // pushes what is not in Redis (never pushed, due retries, expired leases, a Redis that lost its data).
    ctx.jobs.wake();
    let name = super::worker::worker_name(&format!("worker-{queue}"));
    tracing::info!(worker = %name, %queue, concurrency, "worker connected");
    // Polled when a push publishes a wake-up (within milliseconds), and every 200 ms in any case (a wake-up
    // lost with a Redis connection, a job due for a retry).
    let strategy = Strategy::new()
        .apply(StreamStrategy::new(wake_ups(
            ctx.settings.redis_url.expose_secret().to_owned(),
            ctx.jobs.wake_channel(queue),
        )))
        .interval(Duration::from_millis(200));
    let worker = WorkerBuilder::new(name)
        .backend(PollWith::new(storage, strategy))
        .enable_tracing()
        .concurrency(concurrency)
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

/// A stream that yields when a job is pushed to the queue whose wake channel is `channel` ([`super::JobQueue`]
/// publishes after each push). A task keeps a Redis subscription (reconnecting with back-off) and ends when
/// the stream is dropped; the stream itself never ends, so the worker's polling never stops because of it.
fn wake_ups(
    redis_url: String,
    channel: String,
) -> impl futures::Stream<Item = ()> + Unpin + Send + Sync + 'static {
    use futures::StreamExt;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(250);
        loop {
            let subscribed = async {
                let client = apalis_redis::Client::open(redis_url.as_str())?;
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                Ok::<_, apalis_redis::RedisError>(pubsub.into_on_message())
            };
            let messages = tokio::select! {
                () = tx.closed() => return,
                r = tokio::time::timeout(Duration::from_secs(5), subscribed) => r,
            };
            match messages {
                Ok(Ok(mut messages)) => {
                    backoff = Duration::from_millis(250);
                    loop {
                        tokio::select! {
                            () = tx.closed() => return,
                            m = messages.next() => match m {
                                // A full channel already holds a wake-up: this one adds nothing.
                                Some(_) => { let _ = tx.try_send(()); }
                                None => break,
                            },
                        }
                    }
                    tracing::debug!(%channel, "wake-up subscription ended; resubscribing");
                }
                Ok(Err(e)) => {
                    tracing::debug!(%channel, error = %e, "cannot subscribe to wake-ups; polling")
                }
                Err(_) => tracing::debug!(%channel, "subscribing to wake-ups timed out; polling"),
            }
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    });
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
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
            super::registry::fail_dependents(&ctx, msg.job_id).await;
            return Ok(());
        }
        Ok(other) => {
            // Duplicate or stale delivery: nothing to do (a live holder will finish; a dead one's lease
            // expires and the reconciler re-delivers; a retry not yet due is pushed when it is).
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
    let request_id = job.request_id.clone();
    let (attempt, job_max_attempts) = (job.attempt, job.max_attempts);
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
    let mut result = super::registry::dispatch(&jctx).await;
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
        Err(JobError::Defer(_)) => "deferred",
        Err(_) => "error",
    };
    metrics::counter!("jobs_total", "queue" => queue.to_string(), "kind" => kind.clone(), "status" => outcome)
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
        Err(JobError::Defer(wait)) => {
            match store::defer(&ctx.db, job_id, &worker, wait).await {
                Ok(true) => {
                    tracing::debug!(wait_ms = wait.as_millis() as u64, "job deferred");
                    ctx.jobs.wake();
                }
                Ok(false) => tracing::warn!("job deferred after losing its lease"),
                Err(e) => {
                    tracing::error!(error = %e, "job deferral could not be stored; the lease will expire");
                }
            }
            Ok(())
        }
        Err(e) => {
            let permanent = matches!(e, JobError::Permanent(_));
            let message = format!("{e:#}");
            // The retry is scheduled in Postgres (`run_at`), never by apalis: its hard-coded 1 s, 2 s, 3 s …
            // schedule would spend five attempts in ten seconds. The delivery itself is acknowledged.
            let policy = ctx.settings.jobs.retry.for_kind(&kind);
            let retry_in = match &e {
                JobError::RetryAfter(wait, _) => policy
                    .delay(attempt)
                    .max(*wait)
                    .min(std::time::Duration::from_secs(3600)),
                _ => policy.delay(attempt),
            };
            let status =
                store::record_failure(&ctx.db, job_id, &worker, &message, permanent, retry_in)
                    .await;
            match status {
                Ok(Some(s)) if s == "failed" => {
                    tracing::error!(error = %message, "job failed permanently");
                    crate::error_tracking::job_failed(
                        &kind,
                        &queue,
                        job_id,
                        request_id.as_deref(),
                        &message,
                    );
                    super::registry::gave_up(&ctx, &kind, job_id).await;
                }
                Ok(None) => {
                    tracing::warn!(error = %message, "job attempt failed after losing its lease; the new holder decides");
                }
                Ok(Some(_)) => {
                    metrics::counter!("job_retries_total", "queue" => queue.to_string(), "kind" => kind.clone())
                        .increment(1);
                    tracing::warn!(
                        error = %message,
                        attempt,
                        max_attempts = job_max_attempts,
                        retry_in_ms = retry_in.as_millis() as u64,
                        "job attempt failed; retry scheduled"
                    );
                    ctx.jobs.wake();
                }
                Err(db) => {
                    // The row keeps its lease; when it expires the reconciler delivers the job again.
                    tracing::error!(error = %message, db_error = %db, "job failed and its outcome could not be stored");
                }
            }
            Ok(())
        }
    }
}

/// Pushes to Redis what Postgres says must be there and is not: due jobs never pushed (a failed push, a retry
/// whose back-off elapsed), jobs whose lease expired (their worker died), and, as a backstop, queued jobs of a
/// queue whose Redis data vanished (Redis restarted empty) or whose Redis list is empty while they wait (a lost
/// delivery). Runs every `JOB_RECONCILE_SECS`, at the next `run_at`/lease end, and when woken (a worker
/// (re)connected, a retry was scheduled). Each job is taken in Postgres before it is pushed, so several
/// reconcilers never push the same job twice.
async fn reconcile_loop(ctx: Ctx, queues: Vec<String>, mut shutdown: watch::Receiver<bool>) {
    let every = ctx.settings.jobs.reconcile_interval;
    // A queued job still not claimed this long after its push, while its Redis list is empty, was lost (when
    // no worker holds a fetched task either, [`DRAINED_GRACE`] after its push is enough: see `RedisQueueState`).
    let stale_after = (every * 4).max(Duration::from_secs(60));
    loop {
        let again = reconcile_pass(&ctx, &queues, stale_after).await;
        let next = match store::next_due_in(&ctx.db, &queues).await {
            Ok(Some(d)) => d.min(every),
            _ => every,
        }
        .min(again.unwrap_or(every))
        .max(Duration::from_millis(20));
        tokio::select! {
            () = tokio::time::sleep(next) => {}
            () = ctx.jobs.woken().notified() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Pushes younger than this may still be on their way to Redis when its queue looks empty.
const PUSH_GRACE: Duration = Duration::from_secs(3);

/// A queued job marked pushed this long ago, while its queue is drained (see `RedisQueueState::Idle`), never
/// reached Redis. Longer than [`PUSH_GRACE`]: a reconciler stamps a batch before pushing it one by one, and its
/// tail may take a few seconds (a duplicate push would be harmless, but is avoided).
const DRAINED_GRACE: Duration = Duration::from_secs(10);

/// One reconciler pass over `queues`. Returns when it wants to look again sooner than usual (a lost queue
/// with pushes too recent to judge).
async fn reconcile_pass(ctx: &Ctx, queues: &[String], stale_after: Duration) -> Option<Duration> {
    const BATCH: i64 = 500;
    let mut again = None;
    // Backstops first: pushing due jobs recreates the queue's Redis keys, which would hide a lost Redis.
    for queue in queues {
        match redis_state(ctx, queue).await {
            Ok(RedisQueueState::Lost) => {
                // Jobs pushed in the last seconds may be on their way; look at them again after the grace.
                let before =
                    chrono::Utc::now() - chrono::Duration::from_std(PUSH_GRACE).unwrap_or_default();
                if store::pushed_since(&ctx.db, queue, before)
                    .await
                    .unwrap_or(false)
                {
                    again = Some(PUSH_GRACE);
                }
                match store::take_lost(&ctx.db, queue, before, 10 * BATCH).await {
                    Ok(ids) if !ids.is_empty() => {
                        tracing::warn!(count = ids.len(), %queue, "Redis lost this queue's jobs; pushing them again from Postgres");
                        metrics::counter!("jobs_reenqueued_total", "queue" => queue.clone())
                            .increment(ids.len() as u64);
                        ctx.jobs.deliver(queue, &ids).await;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, %queue, "reconcile skipped: database unavailable")
                    }
                }
            }
            Ok(RedisQueueState::Idle { drained }) => {
                let after = if drained { DRAINED_GRACE } else { stale_after };
                match store::take_stale(&ctx.db, queue, after, BATCH).await {
                    Ok(ids) if !ids.is_empty() => {
                        tracing::info!(count = ids.len(), %queue, "re-pushing jobs whose delivery was lost");
                        metrics::counter!("jobs_reenqueued_total", "queue" => queue.clone())
                            .increment(ids.len() as u64);
                        ctx.jobs.deliver(queue, &ids).await;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, %queue, "reconcile skipped: database unavailable")
                    }
                }
            }
            Ok(RedisQueueState::Busy) => {}
            Err(e) => {
                tracing::debug!(error = %e, %queue, "Redis unavailable; delivery waits for it");
                return again;
            }
        }
    }
    loop {
        match store::take_due(&ctx.db, queues, BATCH).await {
            Ok(jobs) => {
                let n = jobs.len();
                for queue in queues {
                    let ids: Vec<_> = jobs
                        .iter()
                        .filter(|(_, q)| q == queue)
                        .map(|(id, _)| *id)
                        .collect();
                    if !ids.is_empty() && ctx.jobs.deliver(queue, &ids).await < ids.len() {
                        // Redis refused: what was not pushed was handed back; try again next pass.
                        return again;
                    }
                }
                if n < BATCH as usize {
                    return again;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reconcile skipped: database unavailable");
                return again;
            }
        }
    }
}

/// What Redis holds for one queue.
enum RedisQueueState {
    /// The queue's task data is gone: Redis restarted without its data (or was flushed).
    Lost,
    /// Nothing waits in its list: a queued job pushed long ago was lost on the way. `drained`: no worker holds
    /// a fetched task either, so a queued job pushed more than [`DRAINED_GRACE`] ago is nowhere in Redis (its pusher
    /// died between marking it pushed and pushing it) and is pushed again at once instead of after `stale_after`.
    Idle { drained: bool },
    /// Tasks are waiting: queued jobs are behind a backlog, not lost.
    Busy,
}

/// Workers of a queue whose in-flight sets a reconciler pass reads at most (far more than any deployment runs;
/// beyond it the queue is simply not judged drained).
const MAX_WORKERS_SEEN: isize = 1000;

async fn redis_state(ctx: &Ctx, queue: &str) -> anyhow::Result<RedisQueueState> {
    let config = ctx.jobs.apalis_config(queue);
    let fut = async {
        let mut conn = ctx.redis.get().await?;
        let (data, active, scheduled, workers): (bool, u64, u64, Vec<String>) =
            deadpool_redis::redis::pipe()
                .exists(config.job_data_hash())
                .llen(config.active_jobs_list())
                .zcard(config.scheduled_jobs_set())
                .zrange(config.workers_set(), 0, MAX_WORKERS_SEEN)
                .query_async(&mut *conn)
                .await?;
        if !data {
            return anyhow::Ok(RedisQueueState::Lost);
        }
        if active > 0 || scheduled > 0 {
            return Ok(RedisQueueState::Busy);
        }
        // Each worker's fetched-but-unacknowledged tasks (apalis' in-flight set; a dead worker's set is moved
        // back to the list by a live worker's heartbeat once it missed its heartbeats).
        let drained = if workers.len() > MAX_WORKERS_SEEN as usize {
            tracing::warn!(%queue, "more worker names than a reconciler pass reads; lost pushes wait for the slow check");
            false
        } else {
            // The list again after the in-flight sets: a dead worker's tasks moved back to the list between the
            // two reads are seen.
            let mut pipe = deadpool_redis::redis::pipe();
            for w in &workers {
                pipe.scard(format!("{}:{w}", config.inflight_jobs_set()));
            }
            pipe.llen(config.active_jobs_list());
            let held: Vec<u64> = pipe.query_async(&mut *conn).await?;
            held.iter().all(|&n| n == 0)
        };
        Ok(RedisQueueState::Idle { drained })
    };
    tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .map_err(|_| anyhow::anyhow!("timed out"))?
}

/// Enqueues a job of `kind` every `schedule.every` (deduplicated across workers): housekeeping every
/// `HOUSEKEEPING_INTERVAL_SECS`, the market update every `MARKET_UPDATE_INTERVAL_SECS`.
async fn schedule_loop(
    ctx: Ctx,
    kind: &'static str,
    schedule: super::Schedule,
    mut shutdown: watch::Receiver<bool>,
) {
    if let Some(start) = schedule.at_start {
        start(&ctx).await;
    }
    let every = (schedule.every)(&ctx.settings);
    if every.is_zero() {
        if kind == crate::plans::overage::KIND {
            // Review 47, LOW 9: without the sweep, grace periods that end are never enforced and overages
            // that an ended assignment or a lowered setting opens are never noticed.
            tracing::warn!(
                kind,
                "HOUSEKEEPING_INTERVAL_SECS=0 also turns off the plan overage sweep: grace periods that end are \
                 not enforced until an action of the user reconciles them"
            );
        }
        return;
    }
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        match (schedule.enqueue)(&ctx).await {
            Ok(Some(id)) => tracing::info!(job_id = %id, kind, "scheduled job"),
            Ok(None) => tracing::debug!(kind, "scheduled job already pending"),
            Err(e) => tracing::warn!(error = %e, kind, "could not schedule job"),
        }
    }
}
