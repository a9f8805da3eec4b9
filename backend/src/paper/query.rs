//! Reads of paper runs, scoped to their owner: another user's run is [`Error::NotFound`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::{Error, Fill, PaperRunSummary, Result, Status};

/// List filters.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct RunFilter {
    /// `active`, `paused`, `stopping`, `stopped`, `failed`, or `live` (the first three).
    pub status: Option<String>,
    pub strategy_id: Option<Uuid>,
    pub instrument_id: Option<i32>,
    pub batch_id: Option<Uuid>,
    /// 1..=200, default 50.
    pub limit: Option<i64>,
}

/// One run with what its page shows besides the summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PaperRunDetail {
    #[serde(flatten)]
    pub summary: PaperRunSummary,
    pub strategy_version_id: Uuid,
    pub params: Vec<(String, String)>,
    pub config: engine::backtest::BacktestConfig,
    pub warmup_from: DateTime<Utc>,
    /// The open position (engine state), if any.
    pub position: Option<serde_json::Value>,
    /// The order decided at the last close (fills at the next open), if any.
    pub pending: Option<serde_json::Value>,
    pub fees_paid: f64,
    pub notice: Option<String>,
    /// Gaps found in the feed.
    pub gaps: Vec<Gap>,
    /// Active kill switches over this run (the platform's, its owner's, its own).
    pub kill_switches: Vec<super::kill::KillSwitch>,
    /// The gate its next candle is processed under: the strictest of the run's own, those switches, its
    /// active risk locks and its plan gate.
    pub effective_gate: String,
    /// The plan gate: reduce-only because its owner is over the plan's `active_paper_runs` past the grace
    /// period and this run is part of the excess (`None`: no plan gate). Not a switch: stopping the run, or
    /// being within the limit again, is what ends it.
    #[serde(default)]
    pub plan_gate: Option<crate::plans::overage::Overage>,
    /// Its risk limits, and its risk locks (newest first; `active` ones gate its next candle).
    pub risk_limits: super::risk::RiskLimits,
    pub risk_locks: Vec<super::risk::RiskLock>,
}

/// Candles missing from the feed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Gap {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub candles: i32,
}

/// A closed round trip.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PaperTrade {
    pub seq: i32,
    pub entry_time: DateTime<Utc>,
    pub exit_time: DateTime<Utc>,
    pub entry_price: f64,
    pub exit_price: f64,
    pub units: f64,
    pub fees: f64,
    pub pnl: f64,
    pub return_pct: f64,
    pub bars_held: i32,
    pub exit_reason: String,
    pub entry_rule: String,
    pub exit_rule: Option<String>,
}

/// One processed candle: prices, gate, state at its close and the decision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Processed {
    pub time: DateTime<Utc>,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub gate: String,
    pub equity: f64,
    pub cash: f64,
    pub units: f64,
    /// The engine's bar trace: rules (true/false), values, actions.
    pub decision: serde_json::Value,
}

macro_rules! summary_row {
    ($r:expr) => {
        PaperRunSummary {
            paper_run_id: $r.paper_run_id,
            batch_id: $r.batch_id,
            strategy_id: $r.strategy_id,
            strategy_name: $r.strategy_name,
            version: $r.version,
            instrument_id: $r.instrument_id,
            symbol: $r.symbol,
            timeframe: $r.timeframe,
            status: Status::parse(&$r.status).unwrap_or(Status::Failed),
            run_gate: $r.run_gate,
            initial_cash: $r.initial_cash,
            cash: $r.cash,
            equity: $r.equity,
            position_units: $r.position_units,
            realised_pnl: $r.realised_pnl,
            trade_count: $r.trade_count,
            candles_processed: $r.candles_processed,
            live_from: $r.live_from,
            last_candle: $r.last_open_time,
            error: $r.error,
            stop_reason: $r.stop_reason,
            created_at: $r.created_at,
            stopped_at: $r.stopped_at,
        }
    };
}

/// The user's runs, newest first.
///
/// # Errors
/// [`Error::Invalid`] (status, limit), database errors.
pub async fn list(db: &PgPool, user: Uuid, f: &RunFilter) -> Result<Vec<PaperRunSummary>> {
    let statuses: Vec<String> = match f.status.as_deref().map(str::trim) {
        None => Status::ALL.iter().map(|s| s.as_str().to_owned()).collect(),
        Some("live") => vec!["active".into(), "paused".into(), "stopping".into()],
        Some(s) => vec![Status::parse(s)
            .ok_or_else(|| {
                Error::invalid(
                    "status",
                    format!("`{s}` is not a status (active, paused, stopping, stopped, failed or live)"),
                )
            })?
            .as_str()
            .to_owned()],
    };
    if f.instrument_id.is_some_and(|i| i < 1) {
        return Err(Error::invalid(
            "instrument_id",
            "must be a positive instrument id",
        ));
    }
    let limit = f.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Error::invalid("limit", "must be between 1 and 200"));
    }
    let rows = sqlx::query!(
        r#"select r.paper_run_id, r.batch_id, r.strategy_id, s.name as strategy_name, v.version,
                  r.instrument_id, i.symbol, r.timeframe, r.status, r.run_gate,
                  (r.config->>'initial_cash')::float8 as "initial_cash!", r.cash, r.equity,
                  coalesce((r.position->>'units')::float8, 0) as "position_units!", r.realised_pnl,
                  r.trade_count, r.candles_processed, r.live_from, r.last_open_time, r.error, r.stop_reason,
                  r.created_at, r.stopped_at
           from paper_run r
           join strategy s on s.strategy_id = r.strategy_id
           join strategy_version v on v.strategy_version_id = r.strategy_version_id
           join instrument i on i.instrument_id = r.instrument_id
           where r.user_id = $1 and r.status = any($2)
             and ($3::uuid is null or r.strategy_id = $3)
             and ($4::int is null or r.instrument_id = $4)
             and ($5::uuid is null or r.batch_id = $5)
           order by r.created_at desc, r.paper_run_id
           limit $6"#,
        user,
        &statuses,
        f.strategy_id,
        f.instrument_id,
        f.batch_id,
        limit,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| summary_row!(r)).collect())
}

/// One of the user's runs.
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn get(db: &PgPool, user: Uuid, id: Uuid) -> Result<PaperRunDetail> {
    let r = sqlx::query!(
        r#"select r.paper_run_id, r.batch_id, r.strategy_id, s.name as strategy_name, v.version,
                  r.instrument_id, i.symbol, r.timeframe, r.status, r.run_gate,
                  (r.config->>'initial_cash')::float8 as "initial_cash!", r.cash, r.equity,
                  coalesce((r.position->>'units')::float8, 0) as "position_units!", r.realised_pnl,
                  r.trade_count, r.candles_processed, r.live_from, r.last_open_time, r.error, r.stop_reason,
                  r.created_at, r.stopped_at, r.strategy_version_id, r.params, r.config, r.warmup_from,
                  r.position, r.pending, r.fees_paid, r.notice, r.risk_limits
           from paper_run r
           join strategy s on s.strategy_id = r.strategy_id
           join strategy_version v on v.strategy_version_id = r.strategy_version_id
           join instrument i on i.instrument_id = r.instrument_id
           where r.user_id = $1 and r.paper_run_id = $2"#,
        user,
        id,
    )
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound)?;
    let gaps = sqlx::query_as!(
        Gap,
        r#"select gap_from as "from", gap_to as "to", candles from paper_gap
           where paper_run_id = $1 order by gap_from desc limit 100"#,
        id,
    )
    .fetch_all(db)
    .await?;
    let kill_switches = sqlx::query_as!(
        super::kill::KillSwitch,
        "select switch_id, scope, user_id, paper_run_id, mode, reason, thrown_by_admin, thrown_at, released_at,
                release_reason
         from kill_switch
         where released_at is null
           and (scope = 'platform' or (scope = 'user' and user_id = $1) or (scope = 'run' and paper_run_id = $2))
         order by thrown_at",
        user,
        id,
    )
    .fetch_all(db)
    .await?;
    let own = engine::backtest::Gate::parse(&r.run_gate).unwrap_or(engine::backtest::Gate::Halt);
    let tf = engine::candles::Timeframe::parse(&r.timeframe)
        .map_or(0, engine::candles::Timeframe::millis);
    let next = r
        .last_open_time
        .map_or(r.live_from, |t| t + chrono::Duration::milliseconds(tf));
    let mut conn = db.acquire().await?;
    let risk_locks = super::risk::locks(&mut conn, id, next).await?;
    let plan_gate = crate::plans::overage::run_restriction(&mut conn, id).await?;
    drop(conn);
    let risk_limits = serde_json::from_value(r.risk_limits.clone()).unwrap_or_default();
    let effective_gate = kill_switches
        .iter()
        .filter_map(|k| engine::backtest::Gate::parse(&k.mode))
        .chain(
            risk_locks
                .iter()
                .filter(|l| l.active)
                .filter_map(|l| engine::backtest::Gate::parse(&l.mode)),
        )
        .chain(
            plan_gate
                .as_ref()
                .map(|_| engine::backtest::Gate::ReduceOnly),
        )
        .fold(own, engine::backtest::Gate::strictest)
        .as_str()
        .to_owned();
    let params = serde_json::from_value(r.params.clone()).unwrap_or_default();
    let config = serde_json::from_value(r.config.clone())
        .map_err(|e| Error::Internal(anyhow::anyhow!("paper run {id} has a bad config: {e}")))?;
    Ok(PaperRunDetail {
        strategy_version_id: r.strategy_version_id,
        params,
        config,
        warmup_from: r.warmup_from,
        position: r.position.clone(),
        pending: r.pending.clone(),
        fees_paid: r.fees_paid,
        notice: r.notice.clone(),
        gaps,
        kill_switches,
        effective_gate,
        plan_gate,
        risk_limits,
        risk_locks,
        summary: summary_row!(r),
    })
}

/// The run's fills, newest first (`before`: older than that candle; at most `limit`).
///
/// # Errors
/// [`Error::NotFound`] (not the user's run), database errors.
pub async fn fills(
    db: &PgPool,
    user: Uuid,
    id: Uuid,
    before: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<Fill>> {
    owned(db, user, id).await?;
    let rows = sqlx::query!(
        r#"select open_time, side, price, units, fee, reason, rule, rule_values from paper_fill
           where paper_run_id = $1 and ($2::timestamptz is null or open_time < $2)
           order by open_time desc, side desc limit $3"#,
        id,
        before,
        limit + 2,
    )
    .fetch_all(db)
    .await?;
    // A page never splits a candle's fills (the next page starts before the last candle returned): if the
    // row after the page is in the page's last candle, that candle goes to the next page.
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut rows = rows;
    if rows.len() > limit {
        let cut = rows[limit - 1].open_time;
        if rows[limit].open_time == cut && rows.iter().any(|r| r.open_time != cut) {
            rows.retain(|r| r.open_time != cut);
        }
        rows.truncate(limit);
    }
    Ok(rows
        .into_iter()
        .map(|r| Fill {
            time: r.open_time,
            side: r.side,
            price: r.price,
            units: r.units,
            fee: r.fee,
            reason: r.reason,
            rule: r.rule,
            values: serde_json::from_value(r.rule_values).unwrap_or_default(),
        })
        .collect())
}

/// The run's closed trades, newest first.
///
/// # Errors
/// As [`fills`].
pub async fn trades(db: &PgPool, user: Uuid, id: Uuid, limit: i64) -> Result<Vec<PaperTrade>> {
    owned(db, user, id).await?;
    Ok(sqlx::query_as!(
        PaperTrade,
        r#"select seq, entry_time, exit_time, entry_price, exit_price, units, fees, pnl, return_pct, bars_held,
                  exit_reason, entry_rule, exit_rule
           from paper_trade where paper_run_id = $1 order by seq desc limit $2"#,
        id,
        limit,
    )
    .fetch_all(db)
    .await?)
}

/// Processed candles, newest first (`before`: older than that candle).
///
/// # Errors
/// As [`fills`].
pub async fn candles(
    db: &PgPool,
    user: Uuid,
    id: Uuid,
    before: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<Processed>> {
    owned(db, user, id).await?;
    Ok(sqlx::query_as!(
        Processed,
        r#"select open_time as time, open, high, low, close, volume, gate, equity, cash, units, decision
           from paper_candle where paper_run_id = $1 and ($2::timestamptz is null or open_time < $2)
           order by open_time desc limit $3"#,
        id,
        before,
        limit,
    )
    .fetch_all(db)
    .await?)
}

/// The equity curve: (candle open time, equity at its close), oldest first, thinned to at most `points`
/// (every n-th, the last kept).
///
/// # Errors
/// As [`fills`].
pub async fn equity(
    db: &PgPool,
    user: Uuid,
    id: Uuid,
    points: usize,
) -> Result<Vec<(DateTime<Utc>, f64)>> {
    owned(db, user, id).await?;
    let rows = sqlx::query!(
        "select open_time, equity from paper_candle where paper_run_id = $1 order by open_time",
        id,
    )
    .fetch_all(db)
    .await?;
    let all: Vec<(DateTime<Utc>, f64)> =
        rows.into_iter().map(|r| (r.open_time, r.equity)).collect();
    if all.len() <= points || points == 0 {
        return Ok(all);
    }
    // At most `points`: every n-th point, the last one always kept (it replaces the last sampled one).
    let step = all.len().div_ceil(points.max(2) - 1);
    let mut out: Vec<_> = all.iter().step_by(step).copied().collect();
    if let (Some(l), Some(&last)) = (out.last(), all.last())
        && l.0 != last.0
    {
        if out.len() >= points {
            out.pop();
        }
        out.push(last);
    }
    Ok(out)
}

/// `Ok` when the run is the user's.
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn owned(db: &PgPool, user: Uuid, id: Uuid) -> Result<()> {
    sqlx::query_scalar!(
        "select 1 as one from paper_run where paper_run_id = $1 and user_id = $2",
        id,
        user
    )
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound)?;
    Ok(())
}
