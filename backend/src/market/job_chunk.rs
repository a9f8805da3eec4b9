//! `market_chunk`: fetches one chunk of a series from the market source and stores it. The candles, the
//! chunk record, the run's progress and the job's `done` mark commit in one transaction (see
//! [`crate::market::etl`]), so a retried or duplicated chunk never stores anything twice or half.

use crate::jobs::{JobCtx, JobError, JobKind, MARKET_QUEUE};
use crate::market::{
    binance::BinanceClient,
    etl::{self, Chunk, ChunkJob},
    store,
};

pub const KIND: &str = "market_chunk";

/// Tells the admins when a chunk runs out of attempts ([`super::alerts`]).
pub const JOB: JobKind = JobKind {
    on_gave_up: Some(|ctx, job_id| Box::pin(super::alerts::etl_gave_up(ctx, job_id))),
    ..JobKind::new(KIND, MARKET_QUEUE, |job| Box::pin(run(job)))
};

pub(crate) async fn run(job: &JobCtx) -> Result<(), JobError> {
    let p: ChunkJob = job.payload()?;
    let ctx = &job.ctx;
    let instrument = store::instrument(&ctx.db, p.instrument_id)
        .await?
        .ok_or_else(|| {
            JobError::Permanent(format!("instrument {} no longer exists", p.instrument_id))
        })?;
    let client = BinanceClient::new(&ctx.settings.market).map_err(JobError::Retry)?;
    let chunk = Chunk {
        start: p.start,
        end: p.end,
    };
    match etl::fetch_and_store_chunk(
        &ctx.db,
        &client,
        &instrument,
        p.timeframe,
        chunk,
        Some(p.run_id),
        // Whether the series is tracked was decided when the run was queued (`etl::enqueue_run`).
        false,
    )
    .await
    {
        Ok((mut tx, outcome)) => {
            // New candles reach the paper runs on this series (the job commits with them).
            let advance = if outcome.written > 0 {
                crate::paper::feed::candles_stored(
                    &ctx.jobs,
                    &mut tx,
                    instrument.instrument_id,
                    p.timeframe,
                )
                .await?
            } else {
                None
            };
            job.complete(tx).await?;
            if let Some(id) = advance {
                ctx.jobs.push(crate::jobs::PAPER_QUEUE, id).await;
            }
            Ok(())
        }
        Err(e) if e.is_transient() => Err(JobError::Retry(anyhow::Error::new(e))),
        Err(e) => Err(JobError::Permanent(e.to_string())),
    }
}
