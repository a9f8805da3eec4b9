//! The backtester: an explicit, documented fill model over a compiled strategy.
//!
//! Default semantics (also stated in every result's [`Provenance::semantics`]):
//! - A rule is evaluated on bar t's close using only data up to t; the order fills at bar
//!   t+1's **open** ([`Fill::NextOpen`]). No signal is acted on at the last bar.
//! - Long-only, one position at a time. Entry spends the sized budget (default: all cash) with
//!   fractional units: `units = budget / (price · (1 + fee))`, `cash −= units · price · (1 + fee)`;
//!   exit: `cash += units · price · (1 − fee)`. Fee default 0.1 % per side.
//! - Slippage (bps) moves every fill price against the trader.
//! - Stops and targets are checked against each bar's high/low after entry; a gap through the
//!   level fills at the open; if stop and target are both inside one bar the stop fills first.
//! - An open position is closed at the last bar's close ("end of data").

mod config;
mod gate;
mod memory;
mod metrics;
mod replay;
mod result;
mod simulate;
mod trace;

pub use config::{BacktestConfig, BacktestError, Fill, RunLimits};
pub use gate::Gate;
pub use memory::{CANDLE_BYTES, MemoryEstimate, estimate_memory};
pub use metrics::{Metric, Metrics};
pub use replay::{OpenPosition, PendingOrder, Refusal, RefusalKind, Replay, replay, run_gated};
pub use result::{BacktestResult, ExitReason, Provenance, Trade};
pub use simulate::MAX_TRADE_VALUES;
pub use trace::{BarTrace, trace, trace_limited};

use config::check;
use result::provenance;
use simulate::simulate;

use crate::candles::Candles;
use crate::strategy::CompiledStrategy;
#[cfg(test)]
use crate::strategy::PositionSize;

/// Runs a backtest.
///
/// # Errors
/// [`BacktestError`] for empty or ragged candles or an invalid configuration.
pub fn run(
    candles: &Candles,
    strategy: &CompiledStrategy,
    config: &BacktestConfig,
) -> Result<BacktestResult, BacktestError> {
    run_with(candles, strategy, config, &mut |_, _| true)
}

/// [`run`] with a progress callback `progress(done_bars, total_bars)`, called a few times per
/// million bars; returning `false` cancels with [`BacktestError::Cancelled`].
///
/// # Errors
/// As [`run`], plus [`BacktestError::Cancelled`].
pub fn run_with(
    candles: &Candles,
    strategy: &CompiledStrategy,
    config: &BacktestConfig,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<BacktestResult, BacktestError> {
    run_limited(candles, strategy, config, RunLimits::default(), progress)
}

/// [`run_with`] within `limits`.
///
/// # Errors
/// As [`run_with`], plus [`BacktestError::TooManyTrades`].
pub fn run_limited(
    candles: &Candles,
    strategy: &CompiledStrategy,
    config: &BacktestConfig,
    limits: RunLimits,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<BacktestResult, BacktestError> {
    check(candles, config)?;
    let n = candles.len();
    if !progress(0, n) {
        return Err(BacktestError::Cancelled);
    }
    let mut ev = strategy.evaluate(candles);
    let sim = simulate(
        candles, strategy, config, &mut ev, progress, false, limits, None,
    )?;
    drop(ev);
    let metrics = metrics::compute(candles, config, &sim.trades, &sim.equity);
    Ok(BacktestResult {
        provenance: provenance(candles, strategy, config),
        trades: sim.trades,
        equity: sim.equity,
        metrics,
        skipped_entries: sim.skipped,
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod replay_tests;
