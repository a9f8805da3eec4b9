//! What a backtest produces: the trades, the equity curve, the metrics and the provenance that
//! reproduces it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{BacktestConfig, Fill, Metrics};
use crate::candles::Candles;
use crate::strategy::{CompiledStrategy, PositionSize};

/// Why a trade was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    Signal,
    StopLoss,
    TakeProfit,
    TrailingStop,
    MaxBars,
    EndOfData,
    /// Closed by a kill switch or risk limit in flatten mode (paper trading).
    Flatten,
}

impl ExitReason {
    /// Human label, e.g. "end of data".
    pub fn label(self) -> &'static str {
        match self {
            ExitReason::Signal => "exit signal",
            ExitReason::StopLoss => "stop loss",
            ExitReason::TakeProfit => "take profit",
            ExitReason::TrailingStop => "trailing stop",
            ExitReason::MaxBars => "max bars in trade",
            ExitReason::EndOfData => "end of data",
            ExitReason::Flatten => "flattened (kill switch or risk limit)",
        }
    }
}

/// One round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    /// Bar index of the entry fill and of the exit fill.
    pub entry_index: usize,
    pub exit_index: usize,
    /// Open times (epoch ms UTC) of those bars.
    pub entry_time: i64,
    pub exit_time: i64,
    /// Fill prices (after slippage).
    pub entry_price: f64,
    pub exit_price: f64,
    pub units: f64,
    /// Fees paid on entry and exit, quote currency.
    pub fees: f64,
    /// Net profit in quote currency: exit proceeds − entry cost, fees included.
    pub pnl: f64,
    /// `pnl / entry cost`.
    pub return_pct: f64,
    /// Bars from entry fill to exit fill (`exit_index − entry_index`).
    pub bars_held: usize,
    pub exit_reason: ExitReason,
    /// The entry rule that fired and the values (at the signal bar) of the series it uses.
    pub entry_rule: Arc<str>,
    pub entry_values: Vec<(Arc<str>, f64)>,
    /// The exit rule that fired (for signal exits) and its values.
    pub exit_rule: Option<Arc<str>>,
    pub exit_values: Vec<(Arc<str>, f64)>,
}

/// Where a result came from: enough to reproduce it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub engine_version: String,
    /// SHA-256 of the candles ([`Candles::content_hash`]).
    pub candles_hash: String,
    pub timeframe: String,
    pub bars: usize,
    pub first_time: Option<i64>,
    pub last_time: Option<i64>,
    /// SHA-256 of the strategy source.
    pub strategy_source_hash: String,
    /// Parameter values in effect.
    pub params: Vec<(String, String)>,
    pub fill_model: String,
    pub fee: f64,
    pub slippage_bps: f64,
    pub quantity_step: Option<f64>,
    pub initial_cash: f64,
    pub position_size: String,
    pub days_per_year: f64,
    /// The semantics the numbers were computed under, in plain words.
    pub semantics: Vec<String>,
}

/// A backtest result (serde-serialisable for the API, the worker and `--format json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestResult {
    pub trades: Vec<Trade>,
    /// Mark-to-market equity at each bar's close (`cash + units · close`), aligned with the
    /// candles.
    pub equity: Vec<f64>,
    pub metrics: Metrics,
    pub provenance: Provenance,
    /// Entry signals that could not be filled (e.g. budget below one quantity step).
    pub skipped_entries: usize,
}

fn size_label(s: PositionSize) -> String {
    match s {
        PositionSize::PercentOfEquity(f) => format!("{}% of equity", f * 100.0),
        PositionSize::FixedQuote(q) => format!("{q} quote"),
    }
}

pub(super) fn provenance(
    candles: &Candles,
    strategy: &CompiledStrategy,
    config: &BacktestConfig,
) -> Provenance {
    let size = config
        .position_size
        .or(strategy.risk().size)
        .unwrap_or(PositionSize::PercentOfEquity(1.0));
    let fill = match config.fill {
        Fill::NextOpen => "next_open",
        Fill::SameClose => "same_close",
    };
    let mut semantics = vec![
        match config.fill {
            Fill::NextOpen => "rules are evaluated on bar t's close using data up to t; orders fill at bar t+1's open; no signal is acted on at the last bar".to_string(),
            Fill::SameClose => "rules are evaluated on bar t's close and fill at that same close (optimistic); no signal is acted on at the last bar".to_string(),
        },
        "long-only, one position at a time".to_string(),
        format!("entry buys {} with {} units: units = budget / (price * (1 + fee)); exit proceeds = units * price * (1 - fee)", size_label(size), match config.quantity_step { None => "fractional".to_string(), Some(s) => format!("multiples of {s}") }),
        format!("fee {}% per side; slippage {} bps against the trader on every fill", config.fee * 100.0, config.slippage_bps),
        "crosses_above(a, b) at t means a[t-1] < b[t-1] and a[t] > b[t]; comparisons with NaN (warm-up) are false".to_string(),
        "an open position is closed at the last bar's close (reason: end of data)".to_string(),
        "equity is marked to market at each bar's close; metrics use daily (UTC) mark-to-market returns".to_string(),
    ];
    let r = strategy.risk();
    if r.stop_loss.is_some() || r.take_profit.is_some() || r.trailing_stop.is_some() {
        semantics.push("stops and targets are checked against each bar's high/low after entry; a gap through the level fills at the open; if stop and target are both inside one bar, the stop fills first (pessimistic); a trailing stop trails the highest high of the bars before the current one".to_string());
    }
    if r.max_bars.is_some() {
        semantics.push("max bars: when the position has been held that many bars at a close, it exits like an exit signal".to_string());
    }
    Provenance {
        engine_version: crate::ENGINE_VERSION.to_string(),
        candles_hash: candles.content_hash(),
        timeframe: candles.timeframe.to_string(),
        bars: candles.len(),
        first_time: candles.time.first().copied(),
        last_time: candles.time.last().copied(),
        strategy_source_hash: strategy.source_hash().to_string(),
        params: strategy
            .params()
            .iter()
            .map(|p| (p.name.clone(), p.value.to_string()))
            .collect(),
        fill_model: fill.to_string(),
        fee: config.fee,
        slippage_bps: config.slippage_bps,
        quantity_step: config.quantity_step,
        initial_cash: config.initial_cash,
        position_size: size_label(size),
        days_per_year: config.days_per_year,
        semantics,
    }
}
