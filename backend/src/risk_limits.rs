//! The definition of a paper run's risk limits (docs/paper-trading.md, "Risk limits"): pure data shared by the
//! settings (`PAPER_RISK_*`, the defaults) and paper trading ([`crate::paper::risk`] evaluates them), so that the
//! settings do not depend on paper trading.

use engine::backtest::Gate;
use serde::{Deserialize, Serialize};

/// Most of a percentage limit.
pub const MAX_PCT: f64 = 100.0;
/// Largest quote-currency amount a limit takes.
pub const MAX_AMOUNT: f64 = 1e15;
/// Most consecutive losses or orders per day a limit takes.
pub const MAX_COUNT: i32 = 100_000;
/// Longest stale-feed timeout (30 days).
pub const MAX_STALE_SECS: i64 = 30 * 86_400;

/// The limits a run has. `None` = no such limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RiskLimits {
    /// What a breach does: `reduce_only`, `halt` or `flatten`.
    #[serde(default = "default_mode")]
    pub mode: Gate,
    /// Equity below its peak by this many percent.
    pub max_drawdown_pct: Option<f64>,
    /// Loss since the start of the UTC day, in the quote currency.
    pub daily_loss: Option<f64>,
    /// Loss since the start of the UTC day, in percent of the equity then.
    pub daily_loss_pct: Option<f64>,
    /// Losing trades in a row.
    pub max_consecutive_losses: Option<i32>,
    /// Value of the open position at a close, in the quote currency.
    pub max_position_value: Option<f64>,
    /// Fills in one UTC day.
    pub max_orders_per_day: Option<i32>,
    /// A candle processed more than this many seconds after it closed (or none for that long).
    pub stale_feed_secs: Option<i64>,
}

fn default_mode() -> Gate {
    Gate::Halt
}

impl Default for RiskLimits {
    fn default() -> Self {
        Self {
            mode: Gate::Halt,
            max_drawdown_pct: None,
            daily_loss: None,
            daily_loss_pct: None,
            max_consecutive_losses: None,
            max_position_value: None,
            max_orders_per_day: None,
            stale_feed_secs: None,
        }
    }
}

/// A breach mode (`reduce_only`, `halt`, `flatten`), or `None`.
pub fn mode(text: &str) -> Option<Gate> {
    match Gate::parse(text) {
        Some(g @ (Gate::ReduceOnly | Gate::Halt | Gate::Flatten)) => Some(g),
        _ => None,
    }
}
