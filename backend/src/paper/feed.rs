//! How stored candles reach paper runs.
//!
//! * [`candles_stored`]: the market ETL calls it in the transaction that stored new candles of a series; if
//!   any run is live on that series it inserts a `paper_advance` job (at most one unfinished per series), so
//!   the job exists if and only if the candles committed.
//! * `paper_tick` (every `PAPER_TICK_SECS`): the backstop. It enqueues `paper_advance` for every series where
//!   a live run is behind the newest stored candle (candles imported from CSV, a job lost with Redis, a
//!   worker that was down), so catch-up after downtime needs nobody.

use engine::candles::Timeframe;
use sqlx::PgConnection;
use uuid::Uuid;

use super::advance;
use crate::Ctx;
use crate::jobs::{JobCtx, JobError, JobKind, JobQueue, PAPER_QUEUE, Schedule};

pub const TICK_KIND: &str = "paper_tick";

/// Scheduled every `PAPER_TICK_SECS` by the workers that serve the `paper` queue.
pub const TICK_JOB: JobKind = JobKind {
    schedule: Some(Schedule {
        every: |s| s.paper.tick,
        enqueue: |ctx| Box::pin(enqueue_tick(ctx)),
        at_start: None,
    }),
    ..JobKind::new(TICK_KIND, PAPER_QUEUE, |job| Box::pin(tick(job)))
};

/// Called in the transaction that stored new candles of a series: enqueues `paper_advance` for it when a run
/// is live on it. Push the returned job after committing (the reconciler pushes it otherwise).
///
/// # Errors
/// Database errors.
pub async fn candles_stored(
    jobs: &JobQueue,
    conn: &mut PgConnection,
    instrument_id: i32,
    timeframe: Timeframe,
) -> sqlx::Result<Option<Uuid>> {
    let live = sqlx::query_scalar!(
        r#"select exists (select 1 from paper_run where instrument_id = $1 and timeframe = $2
                          and status in ('active', 'paused', 'stopping')) as "live!""#,
        instrument_id,
        timeframe.as_str(),
    )
    .fetch_one(&mut *conn)
    .await?;
    if !live {
        return Ok(None);
    }
    jobs.insert(conn, &advance::new_job(jobs, instrument_id, timeframe))
        .await
}

async fn enqueue_tick(ctx: &Ctx) -> sqlx::Result<Option<Uuid>> {
    let mut job = ctx
        .jobs
        .new_job(PAPER_QUEUE, TICK_KIND, serde_json::json!({}));
    job.dedupe_key = Some("paper_tick:scheduled".into());
    ctx.jobs.enqueue(&job).await
}

/// Series with a live run behind the newest stored candle.
///
/// # Errors
/// Database errors.
pub async fn behind(conn: &mut PgConnection) -> sqlx::Result<Vec<(i32, Timeframe)>> {
    let rows = sqlx::query!(
        r#"select distinct r.instrument_id, r.timeframe from paper_run r
           where r.status in ('active', 'paused', 'stopping')
             and exists (select 1 from candle c
                         where c.instrument_id = r.instrument_id and c.timeframe = r.timeframe
                           and c.open_time >= r.live_from
                           and (r.last_open_time is null or c.open_time > r.last_open_time))
             -- a series whose step failed for good lately waits ten minutes (no retry storm; admins are told)
             and not exists (select 1 from job j
                             where j.kind = 'paper_advance' and j.status = 'failed'
                               and (j.payload->>'instrument_id')::int = r.instrument_id
                               and j.payload->>'timeframe' = r.timeframe
                               and j.updated_at > now() - interval '10 minutes')"#,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.instrument_id, Timeframe::parse(&r.timeframe).ok()?)))
        .collect())
}

/// Series with a live run whose stale-feed limit has run out without a candle (its step records the breach):
/// the next candle after the run's last one closed more than the limit ago, and no stale-feed lock holds it.
///
/// # Errors
/// Database errors.
pub async fn stale(
    conn: &mut PgConnection,
    now: chrono::DateTime<chrono::Utc>,
) -> sqlx::Result<Vec<(i32, Timeframe)>> {
    let rows = sqlx::query!(
        r#"select distinct r.instrument_id, r.timeframe, r.last_open_time, r.live_from,
                  (r.risk_limits->>'stale_feed_secs')::bigint as "secs!"
           from paper_run r
           where r.status in ('active', 'paused', 'stopping')
             and jsonb_typeof(r.risk_limits->'stale_feed_secs') = 'number'
             and not exists (select 1 from paper_risk_lock l
                             where l.paper_run_id = r.paper_run_id and l.limit_kind = 'stale_feed'
                               and l.released_at is null)"#,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let tf = Timeframe::parse(&r.timeframe).ok()?;
            let ms = tf.millis();
            // The next candle closes two timeframes after the last one opened (one after the start).
            let due = r
                .last_open_time
                .map_or(r.live_from.timestamp_millis(), |t| {
                    t.timestamp_millis() + ms
                })
                + ms;
            (now.timestamp_millis() - due > r.secs.saturating_mul(1000))
                .then_some((r.instrument_id, tf))
        })
        .collect())
}

async fn tick(job: &JobCtx) -> Result<(), JobError> {
    let ctx = &job.ctx;
    let mut tx = ctx.db.begin().await?;
    let mut ids = Vec::new();
    let mut series = behind(&mut tx).await?;
    for s in stale(&mut tx, ctx.clock.now()).await? {
        if !series.contains(&s) {
            series.push(s);
        }
    }
    for (instrument_id, timeframe) in series {
        if let Some(id) = ctx
            .jobs
            .insert(
                &mut tx,
                &advance::new_job(&ctx.jobs, instrument_id, timeframe),
            )
            .await?
        {
            ids.push(id);
        }
    }
    job.complete(tx).await?;
    for id in ids {
        ctx.jobs.push(PAPER_QUEUE, id).await;
    }
    Ok(())
}
