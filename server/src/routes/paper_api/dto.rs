//! The request and response types of paper runs.

use std::collections::BTreeMap;

use backend::paper::{self, query};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::routes::backtests_api::dto::ParamInput;
use crate::routes::contract;

fn default_initial_cash() -> f64 {
    10_000.0
}
fn default_fill() -> String {
    "next_open".into()
}

/// A start request: one run per instrument (each needs a live feed), all started or none. The same
/// settings as a backtest except the range: a run starts now and decides from the first candle that closes
/// after the start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartPaperRun {
    pub strategy_id: Uuid,
    /// A saved version; default the newest.
    #[schema(minimum = 1)]
    pub version: Option<i32>,
    /// Parameter overrides by name, e.g. `{"fast": 8}`.
    #[serde(default)]
    pub params: BTreeMap<String, ParamInput>,
    #[serde(default)]
    #[schema(schema_with = contract::instrument_ids_schema, required = true)]
    pub instrument_ids: Vec<i32>,
    /// `1m`, `5m`, `15m`, `30m`, `1h`, `4h`, `1d` or `1w`.
    #[serde(deserialize_with = "contract::de_timeframe_required")]
    #[schema(schema_with = contract::timeframe_schema)]
    pub timeframe: String,
    /// Starting cash in the quote currency (default 10 000; above 0, at most 10¹²).
    #[serde(default = "default_initial_cash")]
    #[schema(exclusive_minimum = 0, maximum = 1_000_000_000_000_f64)]
    pub initial_cash: f64,
    /// Fee per side as a fraction (0.001 = 0.1 %; at least 0, below 0.1). Required: a paper run never
    /// assumes a fee (give 0 for none).
    #[schema(minimum = 0, exclusive_maximum = 0.1, required = true)]
    pub fee: Option<f64>,
    /// Slippage in basis points against every fill (default 0; 0–1000).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1000)]
    pub slippage_bps: f64,
    /// `next_open` (default) or `same_close`.
    #[serde(default = "default_fill", deserialize_with = "contract::de_fill")]
    #[schema(schema_with = contract::fill_schema)]
    pub fill: String,
    /// Candles of history the indicators warm up on (default `PAPER_WARMUP_BARS`, 500; at most
    /// `PAPER_MAX_WARMUP_BARS`, 5000 unless the operator changed it).
    #[schema(minimum = 0, maximum = 5000)]
    pub warmup_bars: Option<i64>,
    /// Risk limits; absent fields take the operator's defaults (`PAPER_RISK_*`), 0 turns a limit off.
    #[serde(default)]
    pub risk: Option<RiskLimitsInput>,
}

/// Risk limits to set: absent fields stay as they are (at start: the operator's defaults), `0` turns a limit
/// off. A breach puts the run in `mode` from its next candle (docs/paper-trading.md, "Risk limits").
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskLimitsInput {
    /// What a breach does: `reduce_only`, `halt` or `flatten`.
    #[schema(pattern = "^(reduce_only|halt|flatten)$")]
    pub mode: Option<String>,
    /// Equity this many percent below its peak (0–100).
    #[schema(minimum = 0, maximum = 100)]
    pub max_drawdown_pct: Option<f64>,
    /// Loss since the start of the UTC day in the quote currency (0–10¹⁵).
    #[schema(minimum = 0, maximum = 1_000_000_000_000_000_f64)]
    pub daily_loss: Option<f64>,
    /// Loss since the start of the UTC day in percent of the equity then (0–100).
    #[schema(minimum = 0, maximum = 100)]
    pub daily_loss_pct: Option<f64>,
    /// Losing trades in a row (0–100000).
    #[schema(minimum = 0, maximum = 100_000)]
    pub max_consecutive_losses: Option<i32>,
    /// Value of the open position at a close, in the quote currency (0–10¹⁵).
    #[schema(minimum = 0, maximum = 1_000_000_000_000_000_f64)]
    pub max_position_value: Option<f64>,
    /// Fills in one UTC day (0–100000).
    #[schema(minimum = 0, maximum = 100_000)]
    pub max_orders_per_day: Option<i32>,
    /// Seconds after which a candle that has not arrived (or arrived late) trips the run (0–2592000).
    #[schema(minimum = 0, maximum = 2_592_000)]
    pub stale_feed_secs: Option<i64>,
}

impl From<RiskLimitsInput> for paper::risk::RiskInput {
    fn from(b: RiskLimitsInput) -> Self {
        Self {
            mode: b.mode,
            max_drawdown_pct: b.max_drawdown_pct,
            daily_loss: b.daily_loss,
            daily_loss_pct: b.daily_loss_pct,
            max_consecutive_losses: b.max_consecutive_losses,
            max_position_value: b.max_position_value,
            max_orders_per_day: b.max_orders_per_day,
            stale_feed_secs: b.stale_feed_secs,
        }
    }
}

/// A run's risk limits (`null`: no such limit).
#[derive(Debug, Serialize, ToSchema)]
pub struct RiskLimitsDto {
    /// `reduce_only`, `halt` or `flatten`.
    pub mode: String,
    pub max_drawdown_pct: Option<f64>,
    pub daily_loss: Option<f64>,
    pub daily_loss_pct: Option<f64>,
    pub max_consecutive_losses: Option<i32>,
    pub max_position_value: Option<f64>,
    pub max_orders_per_day: Option<i32>,
    pub stale_feed_secs: Option<i64>,
}

impl From<paper::risk::RiskLimits> for RiskLimitsDto {
    fn from(l: paper::risk::RiskLimits) -> Self {
        Self {
            mode: l.mode.as_str().to_owned(),
            max_drawdown_pct: l.max_drawdown_pct,
            daily_loss: l.daily_loss,
            daily_loss_pct: l.daily_loss_pct,
            max_consecutive_losses: l.max_consecutive_losses,
            max_position_value: l.max_position_value,
            max_orders_per_day: l.max_orders_per_day,
            stale_feed_secs: l.stale_feed_secs,
        }
    }
}

/// A risk lock: a breached limit holding the run in `mode`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RiskLockDto {
    pub id: Uuid,
    /// `max_drawdown`, `daily_loss`, `consecutive_losses`, `max_position_value`, `max_orders_per_day`,
    /// `stale_feed`.
    pub limit: String,
    /// `reduce_only`, `halt` or `flatten`.
    pub mode: String,
    /// What was measured, in words.
    pub reason: String,
    pub value: f64,
    pub threshold: f64,
    /// The candle at whose close it was found.
    pub candle_time: DateTime<Utc>,
    /// The first candle it gates; the first it no longer gates (`null`: until released).
    pub applies_from: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
    pub locked_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
    pub release_reason: Option<String>,
    /// It gates the run's next candle.
    pub active: bool,
}

impl From<paper::risk::RiskLock> for RiskLockDto {
    fn from(l: paper::risk::RiskLock) -> Self {
        Self {
            id: l.lock_id,
            limit: l.limit,
            mode: l.mode,
            reason: l.reason,
            value: l.value,
            threshold: l.threshold,
            candle_time: l.candle_time,
            applies_from: l.applies_from,
            until: l.until,
            locked_at: l.locked_at,
            released_at: l.released_at,
            release_reason: l.release_reason,
            active: l.active,
        }
    }
}

/// The run's risk limits after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct RiskLimitsChanged {
    pub paper_run_id: Uuid,
    pub risk_limits: RiskLimitsDto,
}

/// Releasing risk locks: one (`lock_id`) or all of the run's.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRiskLocks {
    pub lock_id: Option<Uuid>,
    /// Why (kept in the audit log; at most 500 characters).
    #[schema(
        max_length = 500,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub reason: Option<String>,
}

/// The run's risk locks after a release (newest first).
#[derive(Debug, Serialize, ToSchema)]
pub struct RiskLockList {
    pub risk_locks: Vec<RiskLockDto>,
}

impl From<StartPaperRun> for paper::NewPaperRun {
    fn from(b: StartPaperRun) -> Self {
        Self {
            strategy_id: b.strategy_id,
            version: b.version,
            params: b
                .params
                .iter()
                .map(|(k, v)| (k.clone(), v.as_text()))
                .collect(),
            instrument_ids: b.instrument_ids,
            timeframe: b.timeframe,
            initial_cash: b.initial_cash,
            fee: b.fee,
            slippage_bps: b.slippage_bps,
            fill: b.fill,
            warmup_bars: b.warmup_bars,
            risk: b.risk.map(Into::into).unwrap_or_default(),
        }
    }
}

/// The runs a start created.
#[derive(Debug, Serialize, ToSchema)]
pub struct StartedPaperRuns {
    pub batch_id: Uuid,
    pub runs: Vec<StartedRun>,
}

/// One started run.
#[derive(Debug, Serialize, ToSchema)]
pub struct StartedRun {
    pub id: Uuid,
    pub status: String,
    pub links: PaperLinks,
}

/// Where to find a run and what can be done with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaperLinks {
    #[serde(rename = "self")]
    pub self_: String,
    pub fills: String,
    pub trades: String,
    pub equity: String,
    pub candles: String,
    pub parity: String,
    pub pause: String,
    pub resume: String,
    pub stop: String,
    /// The run's page in the browser.
    pub page: String,
}

impl PaperLinks {
    pub fn of(id: Uuid) -> Self {
        let base = format!("/api/v1/paper-runs/{id}");
        Self {
            fills: format!("{base}/fills"),
            trades: format!("{base}/trades"),
            equity: format!("{base}/equity"),
            candles: format!("{base}/candles"),
            parity: format!("{base}/parity"),
            pause: format!("{base}/pause"),
            resume: format!("{base}/resume"),
            stop: format!("{base}/stop"),
            page: format!("/paper/{id}"),
            self_: base,
        }
    }
}

/// A run as lists show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaperRun {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub strategy_id: Uuid,
    pub strategy_name: String,
    pub version: i32,
    pub instrument_id: i32,
    pub symbol: String,
    pub timeframe: String,
    /// `active`, `paused`, `stopping`, `stopped` or `failed`.
    pub status: String,
    /// The run's own gate: `open`, `halt` (paused) or `flatten` (stopping).
    pub run_gate: String,
    pub initial_cash: f64,
    pub cash: f64,
    /// Cash plus the position marked at the last processed close.
    pub equity: f64,
    pub position_units: f64,
    pub realised_pnl: f64,
    pub trade_count: i32,
    pub candles_processed: i32,
    /// Open time of the first candle the run decides on.
    pub live_from: DateTime<Utc>,
    /// Open time of the last candle processed.
    pub last_candle: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub stop_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub links: PaperLinks,
}

impl From<paper::PaperRunSummary> for PaperRun {
    fn from(s: paper::PaperRunSummary) -> Self {
        Self {
            id: s.paper_run_id,
            batch_id: s.batch_id,
            strategy_id: s.strategy_id,
            strategy_name: s.strategy_name,
            version: s.version,
            instrument_id: s.instrument_id,
            symbol: s.symbol,
            timeframe: s.timeframe,
            status: s.status.as_str().into(),
            run_gate: s.run_gate,
            initial_cash: s.initial_cash,
            cash: s.cash,
            equity: s.equity,
            position_units: s.position_units,
            realised_pnl: s.realised_pnl,
            trade_count: s.trade_count,
            candles_processed: s.candles_processed,
            live_from: s.live_from,
            last_candle: s.last_candle,
            error: s.error,
            stop_reason: s.stop_reason,
            created_at: s.created_at,
            stopped_at: s.stopped_at,
            links: PaperLinks::of(s.paper_run_id),
        }
    }
}

/// The caller's runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaperRunList {
    pub runs: Vec<PaperRun>,
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListPaperRunsQuery {
    /// `active`, `paused`, `stopping`, `stopped`, `failed`, or `live` (the first three).
    #[param(pattern = "^(active|paused|stopping|stopped|failed|live)$")]
    pub status: Option<String>,
    pub strategy_id: Option<Uuid>,
    #[param(minimum = 1, maximum = 2147483647)]
    pub instrument_id: Option<i32>,
    pub batch_id: Option<Uuid>,
    /// 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// A gap in the feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct GapDto {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub candles: i32,
}

/// One run in detail.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaperRunDetail {
    #[serde(flatten)]
    pub run: PaperRun,
    pub strategy_version_id: Uuid,
    /// Parameter overrides as typed.
    pub params: BTreeMap<String, String>,
    /// The engine's configuration (fee, slippage, fill model, cash, lot size).
    #[schema(value_type = Object)]
    pub config: Value,
    /// First candle of the warm-up.
    pub warmup_from: DateTime<Utc>,
    /// The open position (entry index and time, price, units, cost, fee, rule and values), if any.
    #[schema(value_type = Option<Object>)]
    pub position: Option<Value>,
    /// The order decided at the last close, filling at the next open, if any.
    #[schema(value_type = Option<Object>)]
    pub pending: Option<Value>,
    pub fees_paid: f64,
    /// The latest notice about the run's data (history revised under it).
    pub notice: Option<String>,
    pub gaps: Vec<GapDto>,
    /// Active kill switches over this run (the platform's, its owner's, its own).
    pub kill_switches: Vec<super::kill::KillSwitchDto>,
    /// The gate its next candle is processed under (`open`, `reduce_only`, `halt`, `flatten`): the strictest
    /// of the run's own, those switches, its active risk locks and its plan gate.
    pub effective_gate: String,
    /// The plan gate (reduce-only), when the owner is over the plan's `active_paper_runs` past the grace period
    /// and this run is part of the excess; absent otherwise. Not a kill switch: it ends when the run stops or
    /// the owner is within the limit again (docs/plans.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_gate: Option<PlanGateDto>,
    pub risk_limits: RiskLimitsDto,
    /// Its risk locks, newest first (at most 100; `active` ones gate its next candle).
    pub risk_locks: Vec<RiskLockDto>,
}

/// A run's plan gate.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanGateDto {
    /// Always `reduce_only`: exits, stops and targets work, no new entries.
    #[schema(example = "reduce_only")]
    pub mode: String,
    /// The limit the owner is over (`active_paper_runs`), their usage and the limit's value.
    #[schema(example = "active_paper_runs")]
    pub limit: String,
    pub usage: i64,
    pub allowed: i64,
    /// The plan's name.
    pub plan: String,
    /// When the gate came on (the grace period's end).
    pub since: DateTime<Utc>,
}

impl From<query::PaperRunDetail> for PaperRunDetail {
    fn from(d: query::PaperRunDetail) -> Self {
        Self {
            strategy_version_id: d.strategy_version_id,
            params: d.params.into_iter().collect(),
            config: serde_json::to_value(&d.config).unwrap_or(Value::Null),
            warmup_from: d.warmup_from,
            position: d.position,
            pending: d.pending,
            fees_paid: d.fees_paid,
            notice: d.notice,
            gaps: d
                .gaps
                .into_iter()
                .map(|g| GapDto {
                    from: g.from,
                    to: g.to,
                    candles: g.candles,
                })
                .collect(),
            kill_switches: d.kill_switches.into_iter().map(Into::into).collect(),
            effective_gate: d.effective_gate,
            plan_gate: d.plan_gate.map(|o| PlanGateDto {
                mode: "reduce_only".into(),
                limit: o.limit.key().to_owned(),
                usage: o.usage,
                allowed: o.allowed,
                plan: o.plan,
                since: o.enforced_at.unwrap_or(o.grace_ends_at),
            }),
            risk_limits: d.risk_limits.into(),
            risk_locks: d.risk_locks.into_iter().map(Into::into).collect(),
            run: d.summary.into(),
        }
    }
}

/// A fill.
#[derive(Debug, Serialize, ToSchema)]
pub struct FillDto {
    /// Open time of the candle it filled in.
    pub time: DateTime<Utc>,
    /// `buy` or `sell`.
    pub side: String,
    pub price: f64,
    pub units: f64,
    pub fee: f64,
    /// `entry`, or the exit reason (`signal`, `stop_loss`, `take_profit`, `trailing_stop`, `max_bars`,
    /// `flatten`).
    pub reason: String,
    pub rule: Option<String>,
    /// The rule's series values at the signal (null while warming up).
    #[schema(value_type = Object)]
    pub values: BTreeMap<String, Option<f64>>,
}

impl From<paper::Fill> for FillDto {
    fn from(f: paper::Fill) -> Self {
        Self {
            time: f.time,
            side: f.side,
            price: f.price,
            units: f.units,
            fee: f.fee,
            reason: f.reason,
            rule: f.rule,
            values: f.values.into_iter().collect(),
        }
    }
}

/// A page of fills, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FillList {
    pub fills: Vec<FillDto>,
}

/// A page of processed candles, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CandleList {
    pub candles: Vec<ProcessedDto>,
}

/// One processed candle and the decision at its close.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessedDto {
    pub time: DateTime<Utc>,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    /// The gate it was processed under (`open`, `reduce_only`, `halt`, `flatten`).
    pub gate: String,
    pub equity: f64,
    pub cash: f64,
    pub units: f64,
    /// The engine's bar trace: each rule and whether it was true, the series values, what was done.
    #[schema(value_type = Object)]
    pub decision: Value,
}

impl From<query::Processed> for ProcessedDto {
    fn from(p: query::Processed) -> Self {
        Self {
            time: p.time,
            open: p.open,
            high: p.high,
            low: p.low,
            close: p.close,
            volume: p.volume,
            gate: p.gate,
            equity: p.equity,
            cash: p.cash,
            units: p.units,
            decision: p.decision,
        }
    }
}

/// A closed round trip.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaperTradeDto {
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

impl From<query::PaperTrade> for PaperTradeDto {
    fn from(t: query::PaperTrade) -> Self {
        Self {
            seq: t.seq,
            entry_time: t.entry_time,
            exit_time: t.exit_time,
            entry_price: t.entry_price,
            exit_price: t.exit_price,
            units: t.units,
            fees: t.fees,
            pnl: t.pnl,
            return_pct: t.return_pct,
            bars_held: t.bars_held,
            exit_reason: t.exit_reason,
            entry_rule: t.entry_rule,
            exit_rule: t.exit_rule,
        }
    }
}

/// Closed trades, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaperTradeList {
    pub trades: Vec<PaperTradeDto>,
}

/// The equity curve: candle open times and equity at each close, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EquityCurve {
    pub time: Vec<DateTime<Utc>>,
    pub equity: Vec<f64>,
}

/// A page query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Older than this candle open time (RFC 3339), for the next page.
    pub before: Option<DateTime<Utc>>,
    /// 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// A page of trades.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TradesQuery {
    /// 1–500 (default 100), newest first.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// An equity query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EquityQuery {
    /// Most points (1–5000, default 1000); longer curves are thinned.
    #[param(minimum = 1, maximum = 5000)]
    pub points: Option<usize>,
}

/// How to stop.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopPaperRun {
    /// Sell the position at the next open first, then stop (default false: stop now and keep the position
    /// as it is, marked at the last close).
    #[serde(default)]
    pub flatten: bool,
}

/// A run's status after a control action.
#[derive(Debug, Serialize, ToSchema)]
pub struct ControlledRun {
    pub id: Uuid,
    pub status: String,
}

/// The parity report (see docs/paper-trading.md): the backtest of the run's window (same version,
/// parameters, settings and warm-up, the candles stored now) diffed trade by trade against the run.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParityDto {
    pub paper_run_id: Uuid,
    pub window_from: DateTime<Utc>,
    pub live_from: DateTime<Utc>,
    pub window_to: Option<DateTime<Utc>>,
    pub candles: usize,
    pub paper_trades: usize,
    pub backtest_trades: usize,
    /// Closed trades equal in entry and exit time, prices, units and fees.
    pub matched: usize,
    /// Each difference: `kind` (`missing_in_paper`, `missing_in_backtest`, `different`), `entry_time`,
    /// `fields`, the `paper` and `backtest` trades, `cause` (`risk action`, `kill switch or pause`, `revised candle`,
    /// `missed candle`, `unexplained`) and `detail`.
    #[schema(value_type = Vec<Object>)]
    pub differences: Value,
    /// Whether the run's open position entered with the backtest's end-of-window trade.
    pub open_position_matches: Option<bool>,
    pub summary: String,
}

impl From<backend::paper::parity::ParityReport> for ParityDto {
    fn from(r: backend::paper::parity::ParityReport) -> Self {
        Self {
            paper_run_id: r.paper_run_id,
            window_from: r.window_from,
            live_from: r.live_from,
            window_to: r.window_to,
            candles: r.candles,
            paper_trades: r.paper_trades,
            backtest_trades: r.backtest_trades,
            matched: r.matched,
            differences: serde_json::to_value(&r.differences).unwrap_or(Value::Null),
            open_position_matches: r.open_position_matches,
            summary: r.summary,
        }
    }
}
