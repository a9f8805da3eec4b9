//! `market_update`: the scheduled incremental update. Enqueues a `daily` run (its `market_chunk` jobs) for
//! every tracked series of the configured exchange, from its newest candle up to the source's clock. Scheduled
//! every `MARKET_UPDATE_INTERVAL_SECS` by the workers, at most one pending at a time.

use uuid::Uuid;

use crate::jobs::{JobCtx, JobError, JobKind, MARKET_QUEUE, Schedule};
use crate::{
    Ctx,
    market::{
        Asset, Pair,
        binance::BinanceClient,
        etl::{self, Mode, RunRequest},
        store,
    },
};

pub const KIND: &str = "market_update";

/// Scheduled every `MARKET_UPDATE_INTERVAL_SECS` by the workers that serve the `market` queue; tells the
/// admins when it runs out of attempts ([`super::alerts`]).
pub const JOB: JobKind = JobKind {
    on_gave_up: Some(|ctx, job_id| Box::pin(super::alerts::etl_gave_up(ctx, job_id))),
    schedule: Some(Schedule {
        every: |s| s.market.update_interval,
        enqueue: |ctx| Box::pin(enqueue(ctx, true)),
        at_start: None,
    }),
    ..JobKind::new(KIND, MARKET_QUEUE, |job| Box::pin(run(job)))
};

/// Enqueues an update of every tracked series. With `scheduled`, at most one is pending at a time.
///
/// # Errors
/// Database errors.
pub async fn enqueue(ctx: &Ctx, scheduled: bool) -> sqlx::Result<Option<Uuid>> {
    let mut job = ctx.jobs.new_job(MARKET_QUEUE, KIND, serde_json::json!({}));
    if scheduled {
        job.dedupe_key = Some("market_update:scheduled".into());
    }
    ctx.jobs.enqueue(&job).await
}

pub(crate) async fn run(job: &JobCtx) -> Result<(), JobError> {
    let ctx = &job.ctx;
    let series = store::tracked_series(&ctx.db, &ctx.settings.market.exchange).await?;
    if series.is_empty() {
        return Ok(());
    }
    // Report every tracked series' lag, also those with nothing new to fetch and while the source fails.
    for s in &series {
        if let Some(open) =
            store::last_open_time(&ctx.db, s.instrument.instrument_id, s.timeframe).await?
        {
            crate::market::lag::record(&s.instrument.symbol, s.timeframe, open);
        }
    }
    let client = BinanceClient::new(&ctx.settings.market).map_err(JobError::Retry)?;
    let now = client
        .server_time()
        .await
        .map_err(|e| JobError::Retry(anyhow::Error::new(e)))?;
    let mut enqueued = 0;
    for s in series {
        let (Ok(base), Ok(quote)) = (
            Asset::parse(&s.instrument.base),
            Asset::parse(&s.instrument.quote),
        ) else {
            continue;
        };
        let req = RunRequest {
            pair: Pair::new(base, quote),
            timeframe: s.timeframe,
            mode: Mode::Daily,
            from: None,
            to: None,
        };
        let run = etl::plan_run(ctx, &req, now)
            .await
            .map_err(|e| JobError::Retry(anyhow::Error::new(e)))?;
        enqueued += etl::enqueue_run(ctx, &run, false)
            .await
            .map_err(JobError::Retry)?
            .len();
    }
    tracing::info!(chunks = enqueued, "market update enqueued");
    Ok(())
}
