//! Tells the admins when the market data ETL gives up (`admin.etl_failing`): the `on_gave_up` hook of the
//! `market_update` and `market_chunk` jobs. One alert per series (or for the whole update) and hour, however
//! many chunks of it fail, so an exchange outage does not flood the admins' mailboxes.

use chrono::{DurationRound, TimeDelta};
use uuid::Uuid;

use crate::{
    Ctx,
    market::{etl::ChunkJob, store},
    notify::{self, Event, event::EtlFailing},
};

/// The `on_gave_up` hook: emits `admin.etl_failing` for the failed job. Errors are logged (the job row keeps
/// its error for the operator either way).
pub async fn etl_gave_up(ctx: &Ctx, job_id: Uuid) {
    if let Err(e) = alert(ctx, job_id).await {
        tracing::warn!(%job_id, error = %e, "could not record the market data failure alert");
    }
}

async fn alert(ctx: &Ctx, job_id: Uuid) -> anyhow::Result<()> {
    let Some(job) = sqlx::query!(
        "select kind, payload, last_error from job where job_id = $1",
        job_id
    )
    .fetch_optional(&ctx.db)
    .await?
    else {
        return Ok(());
    };
    let (mut symbol, mut timeframe) = (None, None);
    if let Ok(chunk) = serde_json::from_value::<ChunkJob>(job.payload) {
        if let Some(i) = store::instrument(&ctx.db, chunk.instrument_id).await? {
            symbol = Some(i.symbol);
        }
        timeframe = Some(chunk.timeframe.to_string());
    }
    let event = Event::EtlFailing(EtlFailing {
        source: ctx.settings.market.exchange.clone(),
        symbol,
        timeframe,
        job_id,
        job_kind: job.kind,
        last_error: notify::event::clip(
            job.last_error.as_deref().unwrap_or("no error recorded"),
            500,
        ),
        hour: ctx.clock.now().duration_trunc(TimeDelta::hours(1))?,
    });
    let mut tx = ctx.db.begin().await?;
    let emitted = notify::emit(&mut tx, &ctx.jobs, &ctx.clock, &event).await?;
    tx.commit().await?;
    notify::push(&ctx.jobs, &[emitted]).await;
    Ok(())
}
