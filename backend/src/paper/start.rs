//! Starting paper runs: the checked, limited, all-or-nothing creation of one run per instrument.

use engine::candles::Timeframe;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Error, MAX_INSTRUMENTS, NewPaperRun, Result, Started};
use crate::backtest::runs::{check_params, config};
use crate::backtest::{compile, strategies};
use crate::market::{store, to_datetime};
use crate::{Actor, Ctx};

/// Where a run starts: the first candle it decides on is the one open now (it closes after the start, so no
/// decision uses a candle that closed before the run existed), and the warm-up is the `warmup_bars` candles
/// before it.
pub fn window(timeframe: Timeframe, now_ms: i64, warmup_bars: i64) -> (i64, i64) {
    let live_from = timeframe.floor(now_ms);
    (live_from - warmup_bars * timeframe.millis(), live_from)
}

/// Validates a start request and creates one run per instrument, all or none; audited as `paper_started` in
/// the same transaction.
///
/// # Errors
/// [`Error::NotFound`] (strategy), [`Error::Invalid`] naming the field, [`Error::Strategy`] (bad parameter
/// values), [`Error::Limit`] (too many active runs), [`Error::PlanLimit`], [`Error::PlanReadOnly`] (the
/// strategy is read-only over the user's plan), database errors.
pub(crate) async fn create(
    ctx: &Ctx,
    actor: &Actor,
    user: Uuid,
    new: &NewPaperRun,
) -> Result<Started> {
    let db = &ctx.db;
    let archived = sqlx::query_scalar!(
        r#"select archived_at is not null as "archived!" from strategy where strategy_id = $1 and user_id = $2"#,
        new.strategy_id,
        user,
    )
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound)?;
    let version = strategies::version(db, user, new.strategy_id, new.version)
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
            "this strategy is archived; restore it to paper-trade it",
        ));
    }
    // Read-only while it is part of the excess of an enforced plan overage (crate::plans::overage): said before
    // anything else is checked, and checked again in the inserting transaction below.
    crate::plans::overage::check_strategy(&mut *db.acquire().await?, new.strategy_id).await?;
    let params = check_params(&version.params, &new.params)?;
    compile(&version.source, &params)?;
    let timeframe = Timeframe::parse(new.timeframe.trim())
        .map_err(|e| Error::invalid("timeframe", e.to_string()))?;
    let fee = new.fee.ok_or_else(|| {
        Error::invalid(
            "fee",
            "give the fee per side explicitly (0 is allowed): a paper run never assumes one",
        )
    })?;
    let base_config = config(new.initial_cash, fee, new.slippage_bps, &new.fill)?;
    let s = &ctx.settings.paper;
    let warmup = new.warmup_bars.unwrap_or(s.warmup_bars);
    if !(0..=s.max_warmup_bars).contains(&warmup) {
        return Err(Error::invalid(
            "warmup_bars",
            format!("must be between 0 and {}", s.max_warmup_bars),
        ));
    }
    let risk = super::risk::RiskLimits::apply(s.risk, &new.risk)?;
    if new.instrument_ids.is_empty() {
        return Err(Error::invalid(
            "instrument",
            "choose at least one instrument",
        ));
    }
    if new.instrument_ids.len() > MAX_INSTRUMENTS {
        return Err(Error::invalid(
            "instrument",
            format!("at most {MAX_INSTRUMENTS} instruments per start"),
        ));
    }
    let mut ids = new.instrument_ids.clone();
    ids.sort_unstable();
    ids.dedup();
    let mut configs = Vec::with_capacity(ids.len());
    for &instrument_id in &ids {
        let inst = live_series(ctx, instrument_id, timeframe).await?;
        let mut cfg = base_config.clone();
        // The instrument's lot size: orders are whole multiples of it, as on the exchange.
        cfg.quantity_step = inst.quantity_step;
        configs.push((instrument_id, cfg));
    }

    let now = feed_now(ctx).await;
    let (warmup_from, live_from) = window(timeframe, now, warmup);
    let batch_id = Uuid::new_v4();
    let mut tx = db.begin().await?;
    // One start at a time per user, so two concurrent starts cannot both pass the limit.
    sqlx::query!(
        "select pg_advisory_xact_lock(hashtextextended('paper:' || $1::uuid::text, 0))",
        user,
    )
    .execute(&mut *tx)
    .await?;
    let active = crate::plans::active_paper_runs(&mut tx, user).await?;
    // The plan's limit (default PAPER_MAX_ACTIVE_RUNS), read here under the lock.
    crate::plans::limits_in(&mut tx, &ctx.settings, user)
        .await?
        .check(
            crate::plans::Limit::ActivePaperRuns,
            active,
            ids.len() as i64,
        )?;
    // Read-only while it is part of the excess of an enforced plan overage (crate::plans::overage): checked
    // under the lock a reconciliation also takes, and a key-share lock on the strategy (a concurrent permanent
    // delete is a 404, never a foreign-key 500).
    crate::plans::overage::check_strategy_for_use(&mut tx, user, new.strategy_id).await?;
    let mut run_ids = Vec::with_capacity(ids.len());
    for (instrument_id, cfg) in &configs {
        let run_id = Uuid::new_v4();
        sqlx::query!(
            r#"insert into paper_run (paper_run_id, user_id, strategy_id, strategy_version_id, batch_id,
                   instrument_id, timeframe, params, config, warmup_from, live_from, cash, equity, request_id,
                   risk_limits)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14)"#,
            run_id,
            user,
            new.strategy_id,
            version.strategy_version_id,
            batch_id,
            instrument_id,
            timeframe.as_str(),
            Json(&params) as _,
            Json(cfg) as _,
            to_datetime(warmup_from),
            to_datetime(live_from),
            cfg.initial_cash,
            actor.request_id.as_deref(),
            Json(&risk) as _,
        )
        .execute(&mut *tx)
        .await?;
        run_ids.push(run_id);
    }
    actor
        .audit(
            &mut tx,
            "paper_started",
            None,
            serde_json::json!({
                "batch_id": batch_id,
                "runs": run_ids,
                "strategy_id": new.strategy_id,
                "version": version.version,
                "timeframe": timeframe.as_str(),
            }),
        )
        .await?;
    tx.commit().await?;
    metrics::counter!("paper_runs_started_total").increment(run_ids.len() as u64);
    Ok(Started { batch_id, run_ids })
}

/// The market source's clock (epoch ms): "now" for the feed, which is what a run's start is measured against
/// (the mock exchange replays history on its own clock). The local clock when the source does not answer
/// within 3 seconds.
async fn feed_now(ctx: &Ctx) -> i64 {
    let source = async {
        let client = crate::market::binance::BinanceClient::new(&ctx.settings.market).ok()?;
        client.server_time().await.ok()
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), source).await {
        Ok(Some(ms)) => ms,
        _ => ctx.clock.now().timestamp_millis(),
    }
}

/// The instrument, if it has a live feed for `timeframe`: active, on the configured exchange, and tracked
/// (the scheduled update keeps it current).
async fn live_series(
    ctx: &Ctx,
    instrument_id: i32,
    timeframe: Timeframe,
) -> Result<store::Instrument> {
    let inst = store::instrument(&ctx.db, instrument_id)
        .await?
        .ok_or_else(|| {
            Error::invalid(
                "instrument",
                format!("there is no instrument {instrument_id}"),
            )
        })?;
    let tracked: Option<bool> = sqlx::query_scalar!(
        "select tracked from market_series where instrument_id = $1 and timeframe = $2",
        instrument_id,
        timeframe.as_str(),
    )
    .fetch_optional(&ctx.db)
    .await?;
    let label = format!("{} {}", inst.pair_label(), timeframe.as_str());
    if !inst.active || inst.exchange != ctx.settings.market.exchange || tracked != Some(true) {
        return Err(Error::invalid(
            "instrument",
            format!(
                "{label} has no live feed: paper runs need a series the scheduled market update keeps current \
                 (an operator starts tracking it by fetching it once with `vortex run-etl`)"
            ),
        ));
    }
    Ok(inst)
}
