//! What a backtest is run with: the fill model and options ([`BacktestConfig`]), the caller's limits
//! ([`RunLimits`]), why a run can fail ([`BacktestError`]) and the validation of both inputs.

use serde::{Deserialize, Serialize};

use crate::candles::Candles;
use crate::strategy::PositionSize;

/// When an order triggered at bar t's close is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fill {
    /// At bar t+1's open (default; no look-ahead).
    #[default]
    NextOpen,
    /// At bar t's own close (optimistic: assumes you can trade at the price you just saw).
    SameClose,
}

impl Fill {
    /// Parses `next-open` / `next_open` / `close` / `same-close`.
    pub fn parse(s: &str) -> Option<Fill> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "next-open" | "open" => Some(Fill::NextOpen),
            "close" | "same-close" => Some(Fill::SameClose),
            _ => None,
        }
    }
}

/// Backtest options, recorded with the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestConfig {
    /// Starting cash in quote currency.
    pub initial_cash: f64,
    /// Fee per side as a fraction of traded value (0.001 = 0.1 %).
    pub fee: f64,
    /// Slippage in basis points, against the trader on every fill.
    pub slippage_bps: f64,
    pub fill: Fill,
    /// Units are rounded down to a multiple of this (e.g. 1.0 = whole units); `None` = fractional.
    pub quantity_step: Option<f64>,
    /// Overrides the strategy's `size`; `None` = the strategy's, else 100 % of equity.
    pub position_size: Option<PositionSize>,
    /// Days per year for annualising (365 for crypto, 252 for exchange-traded stocks).
    pub days_per_year: f64,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        Self {
            initial_cash: 10_000.0,
            fee: 0.001,
            slippage_bps: 0.0,
            fill: Fill::NextOpen,
            quantity_step: None,
            position_size: None,
            days_per_year: 365.0,
        }
    }
}

/// Why a backtest did not produce a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum BacktestError {
    #[error("no candles to run on")]
    NoCandles,
    #[error("invalid candles: {0}")]
    Candles(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cancelled")]
    Cancelled,
    /// The run made more trades than its memory budget holds (see [`RunLimits::max_trades`]).
    #[error(
        "the run made more than {0} trades, more than its memory budget holds: shorten the range, use a larger \
         timeframe or a strategy that trades less often"
    )]
    TooManyTrades(usize),
}

/// Bounds on one run's memory that the caller (a worker with a memory budget) sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Most trades the run may record before it stops with [`BacktestError::TooManyTrades`].
    pub max_trades: usize,
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            max_trades: usize::MAX,
        }
    }
}

pub(super) fn check(candles: &Candles, config: &BacktestConfig) -> Result<(), BacktestError> {
    if candles.is_empty() {
        return Err(BacktestError::NoCandles);
    }
    let n = candles.len();
    if [
        &candles.open,
        &candles.high,
        &candles.low,
        &candles.close,
        &candles.volume,
    ]
    .iter()
    .any(|c| c.len() != n)
    {
        return Err(BacktestError::Candles(
            "columns have different lengths".into(),
        ));
    }
    let bad = |m: &str| Err(BacktestError::Config(m.to_string()));
    if !(config.initial_cash.is_finite() && config.initial_cash > 0.0) {
        return bad("initial cash must be a positive number");
    }
    if !(0.0..0.5).contains(&config.fee) {
        return bad("fee must be in [0, 0.5) (a fraction: 0.001 = 0.1 %)");
    }
    if !(0.0..5000.0).contains(&config.slippage_bps) {
        return bad("slippage must be in [0, 5000) basis points");
    }
    if let Some(s) = config.quantity_step
        && !(s.is_finite() && s > 0.0)
    {
        return bad("quantity step must be a positive number");
    }
    if !(config.days_per_year.is_finite()
        && config.days_per_year >= 1.0
        && config.days_per_year <= 366.0)
    {
        return bad("days per year must be in 1..=366");
    }
    match config.position_size {
        Some(PositionSize::PercentOfEquity(f)) if !(f > 0.0 && f <= 1.0) => {
            bad("position size must be in (0, 100 %] of equity")
        }
        Some(PositionSize::FixedQuote(q)) if !(q.is_finite() && q > 0.0) => {
            bad("fixed position size must be a positive amount")
        }
        _ => Ok(()),
    }
}
