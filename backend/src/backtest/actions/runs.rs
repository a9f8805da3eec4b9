//! Backtest-run actions: submit (a runner: writer with a confirmed email address; the concurrent-run limit),
//! cancel (a writer), the reads (a reader; another user's run is [`Error::NotFound`]), the finished-only reads
//! (result, trades, chart: [`Error::NotFinished`] before the run is done) and the decision trace (a reader,
//! rate-limited per user).

use uuid::Uuid;

use crate::{
    Actor, Ctx,
    backtest::{
        Error,
        runs::{
            self as data, ChartData, Created, NewRun, RunDetail, RunFilter, RunResult, RunStatus,
            RunSummary, Trace, TradeRow,
        },
    },
};

/// Most runs one comparison shows.
pub const COMPARE_MAX: usize = 10;

/// Validates a submission and queues one run per instrument, all or none; audited as `backtest_started`.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::EmailUnconfirmed`], [`Error::NotFound`]
/// (strategy), [`Error::Invalid`], [`Error::Strategy`], [`Error::Limit`] (runs in flight), database errors.
pub async fn submit(actor: &Actor, ctx: &Ctx, new: &NewRun) -> Result<Created, Error> {
    let user = actor.runner()?.user_id;
    let created = data::create_as(ctx, user, new, actor.request_id.clone(), Some(actor)).await?;
    crate::plans::warn_usage(ctx, user, crate::plans::Limit::BacktestsPerDay).await;
    Ok(created)
}

/// Cancels a queued or running run; audited as `backtest_cancelled`.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], [`Error::Conflict`] (finished),
/// database errors.
pub async fn cancel(actor: &Actor, ctx: &Ctx, id: Uuid) -> Result<RunStatus, Error> {
    let user = actor.writer()?.user_id;
    data::cancel_as(&ctx.db, user, id, Some(actor)).await
}

/// The actor's runs, filtered and sorted.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Invalid`] (status, sort, direction), database errors.
pub async fn list(actor: &Actor, ctx: &Ctx, filter: &RunFilter) -> Result<Vec<RunSummary>, Error> {
    let user = actor.reader()?.user_id;
    data::list(&ctx.db, user, filter).await
}

/// One of the actor's runs.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::NotFound`], database errors.
pub async fn get(actor: &Actor, ctx: &Ctx, id: Uuid) -> Result<RunDetail, Error> {
    let user = actor.reader()?.user_id;
    data::get(&ctx.db, user, id).await
}

/// The live status of one of the actor's runs.
///
/// # Errors
/// As [`get`].
pub async fn status(actor: &Actor, ctx: &Ctx, id: Uuid) -> Result<RunStatus, Error> {
    Ok(RunStatus::from(&get(actor, ctx, id).await?.summary))
}

/// One of the actor's runs, refused unless it is done (the state rule of every result read).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::NotFound`], [`Error::NotFinished`], database errors.
pub async fn finished(actor: &Actor, ctx: &Ctx, id: Uuid) -> Result<RunDetail, Error> {
    let run = get(actor, ctx, id).await?;
    if !run.summary.status.has_result() {
        let status = RunStatus::from(&run.summary);
        return Err(Error::NotFinished(format!(
            "this backtest has no result: it is {} ({})",
            status.status, status.message
        )));
    }
    Ok(run)
}

/// A finished run's result.
///
/// # Errors
/// As [`finished`].
pub async fn result(actor: &Actor, ctx: &Ctx, id: Uuid) -> Result<RunResult, Error> {
    finished(actor, ctx, id).await?;
    data::result(&ctx.db, actor.reader()?.user_id, id).await
}

/// A page of a finished run's trades (sorted) and their total.
///
/// # Errors
/// As [`finished`], and [`Error::Invalid`] for the sort, direction, limit or offset.
pub async fn trades(
    actor: &Actor,
    ctx: &Ctx,
    id: Uuid,
    page: &TradePage,
) -> Result<(Vec<TradeRow>, i64), Error> {
    if !(1..=page.max_limit).contains(&page.limit) {
        return Err(Error::invalid(
            "limit",
            format!("must be between 1 and {}", page.max_limit),
        ));
    }
    if page.offset < 0 {
        return Err(Error::invalid("offset", "must not be negative"));
    }
    finished(actor, ctx, id).await?;
    let user = actor.reader()?.user_id;
    data::trades(
        &ctx.db,
        user,
        id,
        page.sort.as_deref(),
        page.dir.as_deref(),
        page.limit,
        page.offset,
    )
    .await
}

/// Which trades to read: sorted by `sort` (`seq` by default) in `dir`, `limit` from `offset`.
#[derive(Debug, Clone)]
pub struct TradePage {
    pub sort: Option<String>,
    pub dir: Option<String>,
    pub limit: i64,
    pub offset: i64,
    /// The largest page this surface allows.
    pub max_limit: i64,
}

/// The data for a finished run's charts.
///
/// # Errors
/// As [`finished`].
pub async fn chart(actor: &Actor, ctx: &Ctx, id: Uuid) -> Result<ChartData, Error> {
    finished(actor, ctx, id).await?;
    data::chart(&ctx.db, actor.reader()?.user_id, id).await
}

/// Up to [`COMPARE_MAX`] of the actor's runs, each with its result when it is done.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::NotFound`] (any id not the actor's), database errors.
pub async fn compare(
    actor: &Actor,
    ctx: &Ctx,
    ids: &[Uuid],
) -> Result<Vec<(RunDetail, Option<RunResult>)>, Error> {
    let user = actor.reader()?.user_id;
    let mut out = Vec::new();
    for &id in ids.iter().take(COMPARE_MAX) {
        let run = data::get(&ctx.db, user, id).await?;
        let result = if run.summary.status.has_result() {
            Some(data::result(&ctx.db, user, id).await?)
        } else {
            None
        };
        out.push((run, result));
    }
    Ok(out)
}

/// "Why here?": the decision trace of a finished run around `time` (epoch ms), `span` ms wide. Each request
/// re-runs the engine, so it counts against the per-user [`data::TRACE_RATE_PER_MINUTE`] (failing closed).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Invalid`]
/// (`span`), [`Error::RateLimited`], [`Error::Unavailable`], [`Error::NotFound`], [`Error::NotFinished`],
/// database errors.
pub async fn trace(
    actor: &Actor,
    ctx: &Ctx,
    id: Uuid,
    time: i64,
    span: i64,
) -> Result<Trace, Error> {
    let user = actor.reader()?.user_id;
    if span < 0 {
        return Err(Error::invalid("span", "must not be negative"));
    }
    super::rate_limit(ctx, actor, "trace", data::TRACE_RATE_PER_MINUTE).await?;
    data::trace(ctx, user, id, time, span).await
}

/// Whether the actor may submit backtests at all (for a form to say why not before anything is typed).
///
/// # Errors
/// As [`submit`]'s permission check: [`Error::Unauthenticated`], [`Error::Forbidden`],
/// [`Error::EmailUnconfirmed`].
pub fn may_submit(actor: &Actor) -> Result<(), Error> {
    actor.runner().map(|_| ())
}
