//! The memory one run needs, estimated before it starts from the compiled program and the number
//! of bars, so a worker can refuse a run that would not fit its budget instead of being killed.

use crate::strategy::{ColumnPlan, CompiledStrategy};

use super::{RunLimits, Trade};

/// Bytes per bar of the candles: time (i64) and open, high, low, close, volume (f64).
pub const CANDLE_BYTES: u64 = 48;

/// What one run (or one trace) is estimated to hold at its peak, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    pub bars: usize,
    pub plan: ColumnPlan,
    /// The candles the engine reads.
    pub candles: u64,
    /// The columns of the evaluation at its peak, or the kept columns plus the equity curve (and,
    /// for a trace, the position per bar) while simulating, whichever is larger.
    pub columns: u64,
    /// One recorded trade: the trade itself and its rule-reference values.
    pub per_trade: u64,
}

impl MemoryEstimate {
    /// Candles and columns: everything but the trades.
    pub fn total(&self) -> u64 {
        self.candles.saturating_add(self.columns)
    }

    /// The most trades that fit in what `budget` leaves after [`Self::total`] (counting the trade
    /// list's growth by doubling), for [`RunLimits::max_trades`]; at least one.
    pub fn limits(&self, budget: u64) -> RunLimits {
        let room = budget.saturating_sub(self.total());
        let per = self.per_trade.max(1).saturating_mul(2);
        RunLimits {
            max_trades: usize::try_from(room / per).unwrap_or(usize::MAX).max(1),
        }
    }
}

/// Estimates the memory of [`super::run`] (or, with `trace`, of [`super::trace`]) of `strategy`
/// over `bars` candles. Pure and cheap: it walks the compiled program once.
pub fn estimate_memory(strategy: &CompiledStrategy, bars: usize, trace: bool) -> MemoryEstimate {
    let plan = strategy.column_plan();
    let n = bars as u64;
    // While simulating, the equity curve reuses a kept numeric column (not when tracing, which
    // reads the columns afterwards); a trace also records the position at each bar.
    let equity = if trace || plan.kept_numeric == 0 {
        8
    } else {
        0
    };
    let position = u64::from(trace);
    let simulating = plan.kept_bytes_per_bar + equity + position;
    let per_bar = plan.peak_bytes_per_bar.max(simulating);
    let value = std::mem::size_of::<(std::sync::Arc<str>, f64)>() as u64;
    MemoryEstimate {
        bars,
        plan,
        candles: n.saturating_mul(CANDLE_BYTES),
        columns: n.saturating_mul(per_bar),
        per_trade: std::mem::size_of::<Trade>() as u64 + plan.values_per_trade as u64 * value,
    }
}
