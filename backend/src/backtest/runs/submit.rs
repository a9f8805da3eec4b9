//! Submitting backtests: the trading options and the checked, limited, all-or-nothing queueing of one run per
//! instrument.

use engine::backtest::{BacktestConfig, Fill};
use engine::candles::Timeframe;
use uuid::Uuid;

use super::{Created, MAX_INSTRUMENTS, NewRun};
use crate::Ctx;
use crate::backtest::job;
use crate::backtest::{Error, compile, range};
use crate::market::{iso, store, to_datetime};

/// Checks the trading options and turns them into the engine's configuration.
///
/// # Errors
/// [`Error::Invalid`] naming the field.
pub fn config(
    initial_cash: f64,
    fee: f64,
    slippage_bps: f64,
    fill: &str,
) -> Result<BacktestConfig, Error> {
    if !initial_cash.is_finite() || initial_cash <= 0.0 || initial_cash > 1e12 {
        return Err(Error::invalid(
            "initial_cash",
            "must be a positive amount up to 1,000,000,000,000",
        ));
    }
    if !fee.is_finite() || !(0.0..0.1).contains(&fee) {
        return Err(Error::invalid(
            "fee",
            "must be at least 0 and below 10 % per side",
        ));
    }
    if !slippage_bps.is_finite() || !(0.0..=1000.0).contains(&slippage_bps) {
        return Err(Error::invalid(
            "slippage_bps",
            "must be between 0 and 1000 basis points",
        ));
    }
    let fill = Fill::parse(fill).ok_or_else(|| {
        Error::invalid(
            "fill",
            format!("`{fill}` is not a fill model; use next_open or same_close"),
        )
    })?;
    Ok(BacktestConfig {
        initial_cash,
        fee,
        slippage_bps,
        fill,
        ..BacktestConfig::default()
    })
}

/// Validates a submission and queues one run per instrument, all or none.
///
/// # Errors
/// [`Error::NotFound`] (strategy), [`Error::Invalid`] naming the field, [`Error::Strategy`] (bad parameter
/// values), [`Error::Limit`] (too many runs in flight), [`Error::PlanLimit`], [`Error::PlanReadOnly`] (the
/// strategy is read-only over the user's plan), database errors.
pub async fn create(
    ctx: &Ctx,
    user: Uuid,
    new: &NewRun,
    request_id: Option<String>,
) -> Result<Created, Error> {
    create_as(ctx, user, new, request_id, None).await
}

/// [`create`], recording `backtest_started` for `actor` in the queueing transaction.
///
/// # Errors
/// As [`create`].
pub(crate) async fn create_as(
    ctx: &Ctx,
    user: Uuid,
    new: &NewRun,
    request_id: Option<String>,
    actor: Option<&crate::Actor>,
) -> Result<Created, Error> {
    let db = &ctx.db;
    // The strategy first: one that is not the user's is "not found", never "has no version N".
    let archived = sqlx::query_scalar!(
        r#"select archived_at is not null as "archived!" from strategy where strategy_id = $1 and user_id = $2"#,
        new.strategy_id,
        user,
    )
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound)?;
    let version = crate::backtest::strategies::version(db, user, new.strategy_id, new.version)
        .await
        .map_err(|e| match (e, new.version) {
            (Error::NotFound, Some(v)) => {
                Error::invalid("version", format!("this strategy has no version {v}"))
            }
            (e, _) => e,
        })?;
    if archived {
        return Err(Error::invalid(
            "strategy",
            "this strategy is archived; restore it to run it",
        ));
    }
    // Read-only while it is part of the excess of an enforced plan overage (backend::plans::overage): said before
    // anything else is checked, and checked again in the inserting transaction below.
    crate::plans::overage::check_strategy(&mut *db.acquire().await?, new.strategy_id).await?;
    let params = check_params(&version.params, &new.params)?;
    let compiled = compile(&version.source, &params)?;
    let timeframe = Timeframe::parse(new.timeframe.trim())
        .map_err(|e| Error::invalid("timeframe", e.to_string()))?;
    let (from, to) = range::range(&new.from, &new.to)?;
    let config = config(new.initial_cash, new.fee, new.slippage_bps, &new.fill)?;
    if new.instrument_ids.is_empty() {
        return Err(Error::invalid(
            "instrument",
            "choose at least one instrument",
        ));
    }
    if new.instrument_ids.len() > MAX_INSTRUMENTS {
        return Err(Error::invalid(
            "instrument",
            format!("at most {MAX_INSTRUMENTS} instruments per submission"),
        ));
    }
    let mut ids = new.instrument_ids.clone();
    ids.sort_unstable();
    ids.dedup();
    // The user's plan limits (backend::plans): history depth and candles per run here, runs in flight and per
    // day under the lock below.
    let limits = crate::plans::limits_for(ctx, user).await?;
    let days_back = (chrono::Utc::now().timestamp_millis() - from).div_euclid(86_400_000) + 1;
    limits.check(crate::plans::Limit::HistoryDays, days_back.max(0), 0)?;
    for &instrument_id in &ids {
        check_series(ctx, &limits, &compiled, instrument_id, timeframe, from, to).await?;
    }

    let batch_id = Uuid::new_v4();
    let mut tx = db.begin().await?;
    // One submission at a time per user, so two concurrent submissions cannot both pass the limit.
    sqlx::query!(
        "select pg_advisory_xact_lock(hashtextextended('backtest:' || $1::uuid::text, 0))",
        user,
    )
    .execute(&mut *tx)
    .await?;
    check_limit(&limits, &mut tx, user, ids.len()).await?;
    // Read-only while it is part of the excess of an enforced plan overage (backend::plans::overage); checked
    // here, under a key-share lock on the strategy, so a concurrent permanent delete is a 404, never a 500.
    crate::plans::overage::check_strategy_for_use(&mut tx, user, new.strategy_id).await?;
    let mut run_ids = Vec::with_capacity(ids.len());
    let mut jobs = Vec::with_capacity(ids.len());
    for &instrument_id in &ids {
        let run_id = Uuid::new_v4();
        let mut nj = ctx.jobs.new_job(
            job::QUEUE,
            job::KIND,
            serde_json::json!({ "backtest_run_id": run_id }),
        );
        nj.request_id = request_id.clone();
        // A backtest is deterministic: a failure is either permanent (reported on the run) or
        // infrastructure, worth a few retries.
        nj.max_attempts = nj.max_attempts.min(3);
        let job_id = ctx
            .jobs
            .insert(&mut tx, &nj)
            .await?
            .ok_or_else(|| Error::Conflict("duplicate job".into()))?;
        sqlx::query!(
            r#"insert into backtest_run (backtest_run_id, user_id, strategy_id, strategy_version_id, batch_id, job_id,
                   instrument_id, timeframe, range_from, range_to, params, config, request_id)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"#,
            run_id,
            user,
            new.strategy_id,
            version.strategy_version_id,
            batch_id,
            job_id,
            instrument_id,
            timeframe.as_str(),
            to_datetime(from),
            to_datetime(to),
            sqlx::types::Json(&params) as _,
            sqlx::types::Json(&config) as _,
            request_id,
        )
        .execute(&mut *tx)
        .await?;
        run_ids.push(run_id);
        jobs.push(job_id);
    }
    if let Some(actor) = actor {
        actor
            .audit(
                &mut tx,
                "backtest_started",
                None,
                serde_json::json!({ "batch_id": batch_id, "runs": run_ids }),
            )
            .await?;
    }
    tx.commit().await?;
    for job_id in jobs {
        metrics::counter!("jobs_enqueued_total", "queue" => job::QUEUE, "kind" => job::KIND)
            .increment(1);
        ctx.jobs.push(job::QUEUE, job_id).await;
    }
    Ok(Created { batch_id, run_ids })
}

/// The parameter overrides, checked against the declared names (values are checked by compiling): more
/// values than declared parameters is refused at once (each name appears once in `sent`); empty values are
/// dropped (the default applies).
pub(crate) fn check_params(
    declared: &[engine::strategy::ParamInfo],
    sent: &[(String, String)],
) -> Result<Vec<(String, String)>, Error> {
    if sent.len() > declared.len() {
        return Err(Error::invalid(
            "params",
            format!(
                "{} parameter values were sent but this strategy declares {}",
                sent.len(),
                declared.len()
            ),
        ));
    }
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in sent {
        let k = k.trim();
        if !declared.iter().any(|p| p.name == k) {
            let names: Vec<&str> = declared.iter().map(|p| p.name.as_str()).collect();
            return Err(Error::invalid(
                "params",
                format!(
                    "this strategy has no parameter `{k}` (it has: {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
        if !v.trim().is_empty() {
            params.push((k.to_owned(), v.trim().to_owned()));
        }
    }
    Ok(params)
}

/// One instrument's candles in the range: it exists, has at least two candles and at most the plan's candles per backtest, and
/// the run fits the memory budget (checked again by the worker).
async fn check_series(
    ctx: &Ctx,
    limits: &crate::plans::Limits,
    compiled: &engine::strategy::CompiledStrategy,
    instrument_id: i32,
    timeframe: Timeframe,
    from: i64,
    to: i64,
) -> Result<(), Error> {
    let db = &ctx.db;
    let inst = store::instrument(db, instrument_id).await?.ok_or_else(|| {
        Error::invalid(
            "instrument",
            format!("there is no instrument {instrument_id}"),
        )
    })?;
    let count = store::count_candles(db, instrument_id, timeframe, from, to).await?;
    let label = format!("{} {}", inst.pair_label(), timeframe.as_str());
    if count == 0 {
        let stored = sqlx::query!(
            r#"select min(open_time) as "first?", max(open_time) as "last?"
               from candle where instrument_id = $1 and timeframe = $2"#,
            instrument_id,
            timeframe.as_str(),
        )
        .fetch_one(db)
        .await?;
        let have = match (stored.first, stored.last) {
            (Some(a), Some(b)) => format!(
                "stored candles run from {} to {}",
                a.format("%Y-%m-%d"),
                b.format("%Y-%m-%d")
            ),
            _ => "no candles of this timeframe are stored".to_owned(),
        };
        return Err(Error::invalid(
            "range",
            format!(
                "there are no {label} candles between {} and {}; {have}",
                iso(from),
                iso(to)
            ),
        ));
    }
    if count < 2 {
        return Err(Error::invalid(
            "range",
            format!("only one {label} candle in this range; a backtest needs at least two"),
        ));
    }
    limits.check(crate::plans::Limit::CandlesPerBacktest, count, 0)?;
    // The memory the run will need, from the compiled strategy and the bars (checked again by the worker).
    crate::backtest::budget::check(
        &ctx.settings.backtest,
        compiled,
        usize::try_from(count).unwrap_or(usize::MAX),
        false,
    )
    .map_err(|m| Error::invalid("range", format!("{label}: {m}")))?;
    Ok(())
}

/// The plan's limits on runs in flight and runs per day, counted under the caller's lock.
async fn check_limit(
    limits: &crate::plans::Limits,
    tx: &mut sqlx::PgConnection,
    user: Uuid,
    adding: usize,
) -> Result<(), Error> {
    use crate::plans::{self, Limit};
    let adding = i64::try_from(adding).unwrap_or(i64::MAX);
    let active = plans::active_backtests(tx, user).await?;
    limits.check(Limit::ConcurrentBacktests, active, adding)?;
    if limits.get(Limit::BacktestsPerDay).is_some() {
        let today = plans::backtests_today(tx, user).await?;
        limits.check(Limit::BacktestsPerDay, today, adding)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_with_the_field_named() {
        assert!(config(10_000.0, 0.001, 5.0, "next_open").is_ok());
        for (cash, fee, slip, fill, field) in [
            (0.0, 0.001, 0.0, "next_open", "initial_cash"),
            (f64::NAN, 0.001, 0.0, "next_open", "initial_cash"),
            (100.0, 0.2, 0.0, "next_open", "fee"),
            (100.0, -0.1, 0.0, "next_open", "fee"),
            (100.0, 0.001, 5000.0, "next_open", "slippage_bps"),
            (100.0, 0.001, 0.0, "whenever", "fill"),
        ] {
            match config(cash, fee, slip, fill) {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
