//! The strategy and backtest ACTIONS: what every surface (form handler, page script, REST handler, server
//! function, CLI) calls. Each takes the [`Actor`] first and itself enforces the policy: who may read
//! ([`Actor::reader`]) or write ([`Actor::writer`]), that starting work needs a confirmed email address
//! ([`Actor::runner`]), per-user quotas and limits, rate limits, and state rules (a run's result, trades,
//! chart and exports exist only once it is done: [`Error::NotFinished`]); and it records the audit entry in
//! the same transaction as its effect. Surfaces only parse their input, call the action and map the result.
//!
//! | Rule | Where |
//! |---|---|
//! | read / write permission | every action here, first line |
//! | confirmed email to run | [`runs::submit`] |
//! | strategy and version quotas | [`strategies::create`], [`strategies::save`], [`strategies::duplicate`] |
//! | concurrent-run limit ([`Error::Limit`]) | [`runs::submit`] (in `runs/submit.rs`) |
//! | trace rate limit | [`runs::trace`] |
//! | export rate limit and slots | [`exports::admit`] |
//! | "done" before results/trades/chart/exports | [`runs::finished`] |
//! | the date-range rule | [`crate::backtest::range`] |
//! | admin-only candle upload | [`upload::import_csv`] |

pub mod exports;
pub mod runs;
pub mod strategies;
pub mod upload;

use crate::{Actor, Ctx, backtest::Error};

/// Maps a strict rate-limit refusal (`redis::rate_limit_strict`) to the action error.
pub(crate) fn refused(r: crate::redis::Refused) -> Error {
    r.into_error()
}

/// Counts one request of `kind` for the actor's user against `per_minute` (fails closed without Redis).
///
/// # Errors
/// [`Error::RateLimited`] over the limit, [`Error::Unavailable`] when Redis cannot count.
pub(crate) async fn rate_limit(
    ctx: &Ctx,
    actor: &Actor,
    kind: &str,
    per_minute: u64,
) -> Result<(), Error> {
    let user = actor.reader()?.user_id;
    crate::redis::rate_limit_strict(
        &ctx.redis,
        &ctx.settings.redis_namespace,
        &format!("{kind}:{user}"),
        per_minute,
    )
    .await
    .map_err(refused)
}
