//! Export actions (trades CSV, result JSON, HTML report) of a finished run: a reader, the per-user export
//! rate limit (`EXPORT_RATE_LIMIT_PER_MINUTE`, failing closed) and one of the process's export slots, held
//! until the download ends.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::{
    Actor, Ctx,
    backtest::{Error, export, report},
};

/// Lets one export start: the run is the actor's and done, the user is under the per-minute export limit
/// (counted first, so a refused export counts too), a slot of `slots` is free, and the run's trades fit the
/// plan's rows per export.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::RateLimited`], [`Error::Unavailable`] (Redis down, or every slot
/// taken), [`Error::NotFound`], [`Error::NotFinished`], database errors.
pub async fn admit(
    actor: &Actor,
    ctx: &Ctx,
    slots: &Arc<Semaphore>,
    id: Uuid,
) -> Result<OwnedSemaphorePermit, Error> {
    actor.reader()?;
    super::runs::get(actor, ctx, id).await?;
    super::rate_limit(
        ctx,
        actor,
        "export",
        ctx.settings.backtest.export_rate_per_minute,
    )
    .await?;
    let permit = slots.clone().try_acquire_owned().map_err(|_| {
        metrics::counter!("exports_refused_total", "reason" => "busy").increment(1);
        Error::Unavailable {
            message: "too many exports are being prepared right now; try again in a moment".into(),
            retry_after: 5,
        }
    })?;
    let run = super::runs::finished(actor, ctx, id).await?;
    let limits = crate::plans::limits_for(ctx, actor.reader()?.user_id).await?;
    limits.check(
        crate::plans::Limit::ExportRows,
        i64::from(run.summary.trade_count.unwrap_or(0)),
        0,
    )?;
    Ok(permit)
}

/// A finished run's trades as a CSV stream.
///
/// # Errors
/// As [`admit`].
pub async fn trades_csv(
    actor: &Actor,
    ctx: &Ctx,
    slots: &Arc<Semaphore>,
    id: Uuid,
) -> Result<export::Chunks, Error> {
    let permit = admit(actor, ctx, slots, id).await?;
    export::trades_csv(&ctx.db, actor.reader()?.user_id, id, permit).await
}

/// A finished run's whole result as a JSON stream.
///
/// # Errors
/// As [`admit`].
pub async fn result_json(
    actor: &Actor,
    ctx: &Ctx,
    slots: &Arc<Semaphore>,
    id: Uuid,
) -> Result<export::Chunks, Error> {
    let permit = admit(actor, ctx, slots, id).await?;
    export::result_json(&ctx.db, actor.reader()?.user_id, id, permit).await
}

/// A finished run's self-contained HTML report.
///
/// # Errors
/// As [`admit`].
pub async fn report_html(
    actor: &Actor,
    ctx: &Ctx,
    slots: &Arc<Semaphore>,
    id: Uuid,
) -> Result<String, Error> {
    let _permit = admit(actor, ctx, slots, id).await?;
    report::html(&ctx.db, actor.reader()?.user_id, id).await
}
