//! Replaying a paper run: the backtest's own simulation over the run's candles (warm-up included) with the gate
//! each candle was processed under, open-ended (the last bar decides; an open position stays open). A paper
//! run's state after candle t is, by construction, what this replay returns for the candles up to t, so a
//! worker that dies mid-candle recomputes exactly the same fills, and a backtest of the same window
//! ([`run_gated`] without live gates) differs only where a gate or the data differ.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::config::check;
use super::metrics;
use super::result::provenance;
use super::simulate::{Live, simulate};
use super::trace::bar_trace;
use super::{
    BacktestConfig, BacktestError, BacktestResult, BarTrace, ExitReason, Gate, RunLimits, Trade,
};
use crate::candles::Candles;
use crate::strategy::CompiledStrategy;

/// A position still open after the last replayed bar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenPosition {
    pub entry_index: usize,
    pub entry_time: i64,
    /// Fill price (after slippage).
    pub entry_price: f64,
    pub units: f64,
    /// Cash spent, fee included.
    pub cost: f64,
    pub entry_fee: f64,
    /// Highest price since entry (the trailing stop's anchor).
    pub peak: f64,
    pub entry_rule: Arc<str>,
    pub entry_values: Vec<(Arc<str>, f64)>,
}

/// The order decided at the last bar's close, to fill at the next bar's open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingOrder {
    pub decided_index: usize,
    /// `true`: buy (entry); `false`: sell (exit).
    pub entry: bool,
    /// Why it exits (exits only).
    pub reason: Option<ExitReason>,
    pub rule: Option<Arc<str>>,
    pub values: Vec<(Arc<str>, f64)>,
}

/// What a gate refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// An entry signal at a close (no order submitted).
    EntrySignal,
    /// An exit signal or max-bars exit at a close (halt).
    ExitSignal,
    /// An entry decided at the previous close, cancelled before its fill.
    PendingEntryCancelled,
}

impl RefusalKind {
    pub fn label(self) -> &'static str {
        match self {
            RefusalKind::EntrySignal => "entry signal refused",
            RefusalKind::ExitSignal => "exit signal refused",
            RefusalKind::PendingEntryCancelled => "pending entry cancelled",
        }
    }
}

/// A decision a gate refused, at bar `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub index: usize,
    pub kind: RefusalKind,
    pub gate: Gate,
}

/// A paper run's state after the last bar of a replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replay {
    /// Closed round trips.
    pub trades: Vec<Trade>,
    /// Mark-to-market equity at each bar's close.
    pub equity: Vec<f64>,
    pub cash: f64,
    pub position: Option<OpenPosition>,
    pub pending: Option<PendingOrder>,
    pub skipped_entries: usize,
    pub refused: Vec<Refusal>,
    /// Every order decided at a close (entries and the strategy's exits, not stops), in order.
    pub signals: Vec<PendingOrder>,
    /// The decision trace (rules, values, what was done) of each bar from `trace_from` on.
    pub decisions: Vec<BarTrace>,
}

/// Replays `candles` with `gates` (one per bar; missing = open), open-ended, with the decision trace of every
/// bar from `trace_from` on.
///
/// # Errors
/// As [`super::run`] (bad candles or configuration, too many trades).
pub fn replay(
    candles: &Candles,
    strategy: &CompiledStrategy,
    config: &BacktestConfig,
    gates: &[Gate],
    limits: RunLimits,
    trace_from: usize,
) -> Result<Replay, BacktestError> {
    check(candles, config)?;
    let mut ev = strategy.evaluate(candles);
    let live = Live {
        gates,
        open_ended: true,
    };
    let sim = simulate(
        candles,
        strategy,
        config,
        &mut ev,
        &mut |_, _| true,
        true,
        limits,
        Some(&live),
    )?;
    let n = candles.len();
    let decisions = (trace_from.min(n)..n)
        .map(|t| bar_trace(candles, strategy, config, &ev, &sim, t, false))
        .collect();
    Ok(Replay {
        trades: sim.trades,
        equity: sim.equity,
        cash: sim.cash,
        position: sim.open,
        pending: sim.pending,
        skipped_entries: sim.skipped,
        refused: sim.refused,
        signals: sim.signals,
        decisions,
    })
}

/// A backtest (end of data closes the position) with a gate per bar: with only warm-up gates before a paper
/// run's first live bar, it is the backtest a paper run is compared with (its parity report).
///
/// # Errors
/// As [`super::run`].
pub fn run_gated(
    candles: &Candles,
    strategy: &CompiledStrategy,
    config: &BacktestConfig,
    gates: &[Gate],
    limits: RunLimits,
) -> Result<BacktestResult, BacktestError> {
    check(candles, config)?;
    let mut ev = strategy.evaluate(candles);
    let live = Live {
        gates,
        open_ended: false,
    };
    let sim = simulate(
        candles,
        strategy,
        config,
        &mut ev,
        &mut |_, _| true,
        false,
        limits,
        Some(&live),
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
