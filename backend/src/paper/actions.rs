//! Paper-run actions, the policy every surface calls: starting needs a runner (a writer with a confirmed
//! email address) and stays within the active-run limit; pause, resume and stop need a writer; reads need a
//! reader and see only the actor's own runs (another user's run is [`Error::NotFound`]); the parity report is
//! rate-limited per user (it re-runs a backtest).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::control::{self, Command, Controlled};
use super::kill::{self, KillSwitch, Scope};
use super::parity::{self, ParityReport};
use super::query::{self, PaperRunDetail, PaperTrade, Processed, RunFilter};
use super::risk::{self, RiskInput, RiskLimits, RiskLock};
use super::signals;
use super::{Error, Fill, NewPaperRun, PaperRunSummary, Result, Started, start};
use crate::{Actor, Ctx};

/// Whose runs an action touches: the acting user's own, or (`Some(user)`) a named user's, for operators at the
/// command line and administrators (reads need [`Actor::admin`], changes [`Actor::admin_writer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Owner {
    #[default]
    Me,
    User(Uuid),
}

#[derive(Clone, Copy)]
enum Need {
    Read,
    Write,
    Run,
}

fn owner(actor: &Actor, owner: Owner, need: Need) -> Result<Uuid> {
    match owner {
        Owner::Me => Ok(match need {
            Need::Read => actor.reader()?.user_id,
            Need::Write => actor.writer()?.user_id,
            Need::Run => actor.runner()?.user_id,
        }),
        Owner::User(u) => {
            match need {
                Need::Read => actor.admin().map(|_| ())?,
                Need::Write | Need::Run => actor.admin_writer().map(|_| ())?,
            }
            Ok(u)
        }
    }
}

/// The user whose run a read names (the actor, or a named user for administrators).
pub(crate) fn owner_read(actor: &Actor, who: Owner) -> Result<Uuid> {
    owner(actor, who, Need::Read)
}

/// The user whose run a change names (the actor as a writer, or a named user for administrators).
pub(crate) fn owner_write(actor: &Actor, who: Owner) -> Result<Uuid> {
    owner(actor, who, Need::Write)
}

/// Parity reports one user may ask for per minute.
pub const PARITY_RATE_PER_MINUTE: u64 = 10;
/// Most rows one page of fills, trades or candles returns.
pub const MAX_PAGE: i64 = 500;
/// Most points of an equity curve.
pub const MAX_EQUITY_POINTS: usize = 5000;

/// Starts one run per instrument; audited as `paper_started`.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::EmailUnconfirmed`], [`Error::NotFound`]
/// (strategy), [`Error::Invalid`], [`Error::Strategy`], [`Error::Limit`], database errors.
pub async fn start(actor: &Actor, ctx: &Ctx, who: Owner, new: &NewPaperRun) -> Result<Started> {
    let user = owner(actor, who, Need::Run)?;
    let started = start::create(ctx, actor, user, new).await?;
    crate::plans::warn_usage(ctx, user, crate::plans::Limit::ActivePaperRuns).await;
    Ok(started)
}

/// Whether the actor may start paper runs at all (for a form to say why not before anything is typed).
///
/// # Errors
/// As [`start`]'s permission check.
pub fn may_start(actor: &Actor) -> Result<()> {
    actor.runner().map(|_| ())
}

/// The actor's runs, filtered.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Invalid`], database errors.
pub async fn list(
    actor: &Actor,
    ctx: &Ctx,
    who: Owner,
    filter: &RunFilter,
) -> Result<Vec<PaperRunSummary>> {
    query::list(&ctx.db, owner(actor, who, Need::Read)?, filter).await
}

/// One of the actor's runs.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::NotFound`], database errors.
pub async fn get(actor: &Actor, ctx: &Ctx, who: Owner, id: Uuid) -> Result<PaperRunDetail> {
    query::get(&ctx.db, owner(actor, who, Need::Read)?, id).await
}

fn page(limit: i64) -> Result<i64> {
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ))
    }
}

/// A page of the run's fills, newest first.
///
/// # Errors
/// As [`get`], plus [`Error::Invalid`] for the limit.
pub async fn fills(
    actor: &Actor,
    ctx: &Ctx,
    id: Uuid,
    before: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<Fill>> {
    let limit = page(limit)?;
    query::fills(&ctx.db, actor.reader()?.user_id, id, before, limit).await
}

/// The run's closed trades, newest first.
///
/// # Errors
/// As [`fills`].
pub async fn trades(actor: &Actor, ctx: &Ctx, id: Uuid, limit: i64) -> Result<Vec<PaperTrade>> {
    let limit = page(limit)?;
    query::trades(&ctx.db, actor.reader()?.user_id, id, limit).await
}

/// A page of processed candles with their decisions, newest first.
///
/// # Errors
/// As [`fills`].
pub async fn candles(
    actor: &Actor,
    ctx: &Ctx,
    id: Uuid,
    before: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<Processed>> {
    let limit = page(limit)?;
    query::candles(&ctx.db, actor.reader()?.user_id, id, before, limit).await
}

/// The equity curve (at most `points`, 1..=5000).
///
/// # Errors
/// As [`get`], plus [`Error::Invalid`] for the points.
pub async fn equity(
    actor: &Actor,
    ctx: &Ctx,
    id: Uuid,
    points: usize,
) -> Result<Vec<(DateTime<Utc>, f64)>> {
    if !(1..=MAX_EQUITY_POINTS).contains(&points) {
        return Err(Error::invalid(
            "points",
            format!("must be between 1 and {MAX_EQUITY_POINTS}"),
        ));
    }
    query::equity(&ctx.db, actor.reader()?.user_id, id, points).await
}

/// Pauses, resumes or stops one of the actor's runs; audited.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], [`Error::Conflict`], database
/// errors.
pub async fn control(
    actor: &Actor,
    ctx: &Ctx,
    who: Owner,
    id: Uuid,
    command: Command,
) -> Result<Controlled> {
    let user = owner(actor, who, Need::Write)?;
    control::apply(ctx, actor, user, id, command).await
}

/// The parity report of one of the actor's runs.
///
/// # Errors
/// As [`get`], plus [`Error::RateLimited`], [`Error::Conflict`] (nothing processed yet), [`Error::Limit`]
/// (window too long).
pub async fn parity(actor: &Actor, ctx: &Ctx, who: Owner, id: Uuid) -> Result<ParityReport> {
    let user = owner(actor, who, Need::Read)?;
    query::owned(&ctx.db, user, id).await?;
    if actor.auth_user().is_some() {
        crate::backtest::actions::rate_limit(ctx, actor, "parity", PARITY_RATE_PER_MINUTE).await?;
    }
    parity::report(&ctx.db, user, id, ctx.settings.paper.max_window_bars).await
}

/// Throws a kill switch: over the platform (administrators), a user (administrators, or the user for
/// themselves) or a run (its owner, or administrators); audited, announced to the affected users.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`] (a run or user the actor may not
/// see), [`Error::Invalid`] (`mode`, `reason`), database errors.
pub async fn throw_switch(
    actor: &Actor,
    ctx: &Ctx,
    scope: Scope,
    mode: &str,
    reason: &str,
) -> Result<KillSwitch> {
    kill::throw(ctx, actor, scope, mode, reason).await
}

/// [`throw_switch`] as an administrator (the admin API and console): refused for anyone else, whatever the
/// scope.
///
/// # Errors
/// As [`throw_switch`].
pub async fn throw_switch_as_admin(
    actor: &Actor,
    ctx: &Ctx,
    scope: Scope,
    mode: &str,
    reason: &str,
) -> Result<KillSwitch> {
    actor.admin_writer()?;
    kill::throw(ctx, actor, scope, mode, reason).await
}

/// Releases an active kill switch (one an administrator threw needs an administrator).
///
/// # Errors
/// As [`throw_switch`].
pub async fn release_switch(
    actor: &Actor,
    ctx: &Ctx,
    switch_id: Uuid,
    reason: Option<&str>,
) -> Result<KillSwitch> {
    kill::release(ctx, actor, switch_id, reason).await
}

/// [`release_switch`] as an administrator (the admin console): refused for anyone else, whatever the switch.
///
/// # Errors
/// As [`release_switch`].
pub async fn release_switch_as_admin(
    actor: &Actor,
    ctx: &Ctx,
    switch_id: Uuid,
    reason: Option<&str>,
) -> Result<KillSwitch> {
    actor.admin_writer()?;
    kill::release(ctx, actor, switch_id, reason).await
}

/// The active kill switches that affect the actor (the platform's, theirs, their runs'); administrators
/// with `all` see every active switch.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`] (`all` for a non-admin), database errors.
pub async fn switches(actor: &Actor, ctx: &Ctx, all: bool) -> Result<Vec<KillSwitch>> {
    let mut conn = ctx.db.acquire().await?;
    if all {
        actor.admin()?;
        return Ok(kill::active_all(&mut conn).await?);
    }
    let user = actor.reader()?.user_id;
    Ok(kill::active_for(&mut conn, user).await?)
}

/// Changes one of the actor's runs' risk limits (absent fields unchanged, 0 = no such limit); audited. Applies
/// from the run's next candle.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], [`Error::Conflict`] (not live),
/// [`Error::Invalid`] naming the field, database errors.
pub async fn set_risk_limits(
    actor: &Actor,
    ctx: &Ctx,
    who: Owner,
    id: Uuid,
    input: &RiskInput,
) -> Result<RiskLimits> {
    let user = owner(actor, who, Need::Write)?;
    risk::set_limits(ctx, actor, user, id, input).await
}

/// Releases one of the actor's runs' risk locks (`lock_id`, or all of them); audited. The run trades again
/// from its next candle unless another gate applies; the limits measure again from there.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], [`Error::Conflict`] (not live, or
/// nothing to release), [`Error::Invalid`] (`reason`), database errors.
pub async fn release_risk_locks(
    actor: &Actor,
    ctx: &Ctx,
    who: Owner,
    id: Uuid,
    lock_id: Option<Uuid>,
    reason: Option<&str>,
) -> Result<Vec<RiskLock>> {
    let user = owner(actor, who, Need::Write)?;
    risk::release(ctx, actor, user, id, lock_id, reason).await
}

/// One of the actor's runs' inbound-signal settings (never the secret).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], database errors.
pub async fn signal_settings(
    actor: &Actor,
    ctx: &Ctx,
    who: Owner,
    id: Uuid,
) -> Result<signals::SignalSettings> {
    signals::settings(actor, ctx, who, id).await
}

/// Changes one of the actor's runs' inbound signals (mode, allow-list, a new secret shown once); audited.
///
/// # Errors
/// As [`signals::configure`].
pub async fn configure_signals(
    actor: &Actor,
    ctx: &Ctx,
    who: Owner,
    id: Uuid,
    change: &signals::SignalChange,
) -> Result<signals::SignalsChanged> {
    signals::configure(actor, ctx, who, id, change).await
}

/// The requests one of the actor's runs received on its signal URL, newest first.
///
/// # Errors
/// As [`signals::list`].
pub async fn received_signals(
    actor: &Actor,
    ctx: &Ctx,
    who: Owner,
    id: Uuid,
    before: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<signals::SignalRecord>> {
    signals::list(actor, ctx, who, id, before, limit).await
}
